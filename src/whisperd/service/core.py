"""The service: one call per use case, shared by the HTTP APIs, the streams, the CLI and jobs.

- :meth:`TranscriptionService.transcribe` (or :meth:`~TranscriptionService.open`, then
  :meth:`Transcription.run <whisperd.service.transcription.Transcription.run>` or
  :meth:`~whisperd.service.transcription.Transcription.events`): admission, model check,
  audio decoding, scheduled transcription, cancellation, release on every exit.
- :meth:`TranscriptionService.stream_capacity` and
  :meth:`~TranscriptionService.stream_session`: a real-time stream's slot and its session.
- :meth:`TranscriptionService.model`: load a model once and check options against it.
- :meth:`TranscriptionService.hold_model`: a lease that keeps a model loaded while held (the
  lifecycle: :mod:`whisperd.engine.manager`; the allow-list: :mod:`whisperd.engine.allowed`).
- :meth:`TranscriptionService.preload` and :attr:`~TranscriptionService.readiness`: the default
  model loaded in the background when a server starts, and whether it is ready.

Front ends translate their wire format into these calls and the results back; none of them
composes admission, decoding and scheduling itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Literal, TypeAlias

from whisperd.audio.decode import DecodeLimits, decode_audio
from whisperd.engine.allowed import ModelAllowList
from whisperd.engine.manager import ModelManager
from whisperd.engine.selection import choose_engine
from whisperd.errors import (
    InvalidOptionError,
    ModelError,
    ModelNotLoadedError,
    ModelUnavailableError,
    UnknownModelError,
    WhisperdError,
)
from whisperd.scheduler.admission import Admission
from whisperd.service.decoding_budget import DecodedAudioBudget
from whisperd.service.held_session import HeldStreamSession
from whisperd.service.loading import model_format, model_hardware, whisper_loader
from whisperd.service.malloc import limit_malloc_arenas
from whisperd.service.metrics import ServiceMetrics
from whisperd.service.pools import Pools
from whisperd.service.speakers import SpeakerModel, decode_references
from whisperd.service.streams import check_stream, stream_decoder, stream_vad, timing_finals
from whisperd.service.transcription import Transcription

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from whisperd.audio.decoded import DecodedAudio
    from whisperd.config import Settings
    from whisperd.diarization import SpeakerEncoder
    from whisperd.engine.base import Engine, ModelInfo, SegmentCallback, Transcript
    from whisperd.engine.lifecycle import ModelLease
    from whisperd.engine.manager import Loader
    from whisperd.engine.options import TranscribeOptions
    from whisperd.service.requests import Cancellation, TranscriptionRequest
    from whisperd.streaming.session import Emit, StreamConfig, StreamSession

logger = logging.getLogger(__name__)

Readiness: TypeAlias = Literal["ready", "loading", "failed"]
"""Whether the service can serve its default model (see :attr:`TranscriptionService.readiness`)."""


class TranscriptionService:
    """Runs every transcription use case; owns the model manager, admission and thread pools."""

    def __init__(
        self,
        settings: Settings,
        models: ModelManager,
        *,
        pools: Pools,
        admission: Admission | None = None,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        """Wire the service to its model manager and pools (closed by :meth:`close`);
        ``metrics`` (default: new ones) count what it does."""
        self.settings = settings
        self.models = models
        self.admission = admission or Admission(
            settings.max_pending_requests,
            max_audio_seconds=settings.max_queued_audio_seconds,
            max_streams=settings.max_streams,
            max_wait_s=settings.max_queue_wait_s,
        )
        self._pools = pools
        self._limits = DecodeLimits(max_duration_s=settings.max_audio_seconds)
        self.decoded_audio = DecodedAudioBudget(settings.max_decoded_audio_seconds)
        """Decoded audio held in memory by every request together (see its module)."""
        self.metrics = metrics or ServiceMetrics()
        """This service's Prometheus metrics (an app registers them for ``/metrics``)."""
        self.metrics.watch(self.admission, models.loaded, lambda: self.decoded_audio.rejections)
        self.allowed = ModelAllowList(tuple(settings.allowed_models), settings.model)
        """The models requests may name besides the default (``allowed_models``)."""
        self._preload: asyncio.Task[Engine] | None = None
        self._default_failure: ModelError | None = None
        self.speakers = SpeakerModel(pools.loading)
        """The speaker model of diarized requests, loaded on first use."""

    @classmethod
    def create(
        cls, settings: Settings, *, loader: Loader | None = None, progress: bool = False
    ) -> TranscriptionService:
        """Build a service with its own pools and model manager from ``settings``.

        ``loader`` builds engines (default: the settings' engine, CTranslate2 or PyTorch);
        ``progress`` shows download progress bars (for the CLI, not for servers). Caps the
        process's malloc arenas first (``malloc_arenas``, :mod:`whisperd.service.malloc`).
        """
        limit_malloc_arenas(settings.malloc_arenas)
        engine = choose_engine(settings.engine, settings.device)
        metrics = ServiceMetrics()
        loader = loader or whisper_loader(settings, engine, observer=metrics.record_batch)
        models = ModelManager(
            metrics.timed(loader),
            models_dir=settings.models_dir,
            offline=settings.offline,
            endpoint=settings.hf_endpoint,
            progress=progress,
            fmt=model_format(engine),
            hardware=model_hardware(engine),
            ttl=settings.model_ttl,
            max_loaded=settings.max_loaded_models,
            pinned=(settings.model,),
        )
        return cls(settings, models, pools=Pools.create(settings), metrics=metrics)

    async def model(
        self, name: str | None = None, options: TranscribeOptions | None = None
    ) -> ModelInfo:
        """Load ``name`` (the default model if None) once; refuse ``options`` it cannot honour.

        For a caller that reports failures itself (the CLI): the model's error is raised as is,
        and nothing is logged.

        Raises:
            ModelError: if the model cannot be had.
            InvalidOptionError: if the options do not suit the model.
        """
        lease = await self._lease(name or self.settings.model)
        try:
            if options is not None:
                lease.engine.check(options)
            return lease.engine.info
        finally:
            lease.release()

    async def hold_model(
        self, name: str | None, device: str | None = None, compute_type: str | None = None
    ) -> ModelLease:
        """Hold a request's model (loaded if need be) until the lease is released.

        ``name`` None, empty or the configured name is the default model; any other must be
        on the allow-list. Failures are logged.

        Raises:
            ModelNotAllowedError: if ``name`` is not on the allow-list (``allowed_models``).
            UnknownModelError: if the request named a model that does not exist.
            ModelUnavailableError: if the model cannot be had; for the default model, whatever
                the cause, naming it and not blaming the request.
        """
        return await self._engine(name, device, compute_type)

    async def unload_model(self, name: str) -> int:
        """Take every engine of ``name`` out of service (:meth:`ModelManager.unload
        <whisperd.engine.manager.ModelManager.unload>`: held ones close when released).

        Returns:
            How many engines were taken out of service.

        Raises:
            ModelNotLoadedError: if no engine of ``name`` is loaded.
        """
        unloaded = await self._pools.loading.run(self.models.unload, name)
        if unloaded == 0:
            raise ModelNotLoadedError(f"The model '{name}' is not loaded.")
        return unloaded

    async def open(self, request: TranscriptionRequest) -> Transcription:
        """Admit ``request``, load and check its model, and decode its audio.

        Every input error surfaces here, before any transcription work: an HTTP front end can
        still answer with an error status. The returned transcription holds the admission
        slot and its decoded audio's share of :attr:`decoded_audio` until it is run or closed.

        Raises:
            QueueFullError: if the server is at capacity (requests, estimated wait, or
                decoded audio in memory).
            ModelError: if the model cannot be had.
            InvalidOptionError: if the options do not suit the model.
            AudioError: if the audio cannot be used.
        """
        held = AsyncExitStack()
        await held.enter_async_context(self.admission.slot(request.priority))
        try:
            request, speakers = await self._diarization(request)
            lease = await self._engine(request.model, request.device, request.compute_type)
            held.callback(lease.release)
            engine = lease.engine
            engine.check(request.options)
            reserve = held.enter_context(self.decoded_audio.reservation())
            audio = await self._pools.audio.run(decode_audio, request.source, self._limits, reserve)
            _check_channel_names(request, audio)
        except BaseException as error:
            self.metrics.record_failure(error)
            await held.aclose()
            raise
        return Transcription(
            request,
            engine,
            audio,
            pool=self._pools.requests,
            admission=self.admission,
            held=held,
            metrics=self.metrics,
            speakers=speakers,
        )

    async def _diarization(
        self, request: TranscriptionRequest
    ) -> tuple[TranscriptionRequest, SpeakerEncoder | None]:
        """The request as diarization needs it (word timings on; channels kept; known
        speakers' clips decoded), and the speaker encoder when voices are told apart.

        Raises:
            DiarizationUnavailableError: voices are to be told apart but the speaker model is
                not installed.
            InvalidOptionError: a known speaker's clip is not usable.
        """
        diarization = request.diarization
        if diarization is None:
            return request, None
        options = request.options.model_copy(update={"word_timestamps": True})
        request = dataclasses.replace(request, options=options)
        if diarization.mode == "channels":  # word timings merge the channels' turns
            source = dataclasses.replace(request.source, keep_channels=True)
            return dataclasses.replace(request, source=source), None
        encoder = await self.speakers.encoder(request.priority)
        return await decode_references(request, self._pools.audio, self._limits), encoder

    async def transcribe(
        self,
        request: TranscriptionRequest,
        *,
        cancel: Cancellation | None = None,
        on_segment: SegmentCallback | None = None,
    ) -> Transcript:
        """:meth:`open` ``request`` and run it to its transcript.

        Raises:
            QueueFullError, ModelError, InvalidOptionError, AudioError: as :meth:`open`.
            TranscriptionError: if decoding fails.
            CancelledError: if ``cancel`` was set while it ran.
        """
        transcription = await self.open(request)
        return await transcription.run(cancel=cancel, on_segment=on_segment)

    def stream_capacity(self) -> AbstractAsyncContextManager[None]:
        """Hold one real-time stream slot for the life of a connection.

        Raises:
            QueueFullError: once ``max_streams`` streams are open.
        """
        return self.admission.stream_slot()

    async def stream_session(
        self, config: StreamConfig, emit: Emit, *, hotwords: str | None = None
    ) -> StreamSession:
        """A new (not yet started) session on the default model, decoding on the stream pool;
        it holds the model until it is closed.

        Raises:
            ModelError: if the default model cannot be had.
            InvalidOptionError: if the model cannot decode as ``config`` asks (a language an
                English-only model does not speak).
        """
        lease = await self._engine(None)
        config = dataclasses.replace(
            config,
            context_s=self.settings.stream_final_context_s,
            latency_target_s=self.settings.stream_final_latency_target_s,
            stable_partials=self.settings.stream_stable_partials,
            merge_queued_finals=self.settings.stream_merge_queued_finals,
            skip_silent_tails=self.settings.stream_skip_silent_tails,
        )
        final_context = self.settings.stream_final_encoder_context
        try:
            check_stream(lease.engine, config, hotwords=hotwords, final_context=final_context)
        except WhisperdError:
            lease.release()
            raise
        decoder = stream_decoder(
            lease.engine,
            config,
            hotwords=hotwords,
            final_context=final_context,
            pool=self._pools.streams,
            admission=self.admission,
        )
        emit = timing_finals(emit, self.metrics.stream_final_latency.observe)
        return HeldStreamSession(config, decoder, stream_vad(self._pools.vad), emit, lease=lease)

    def preload(self) -> None:
        """Start loading the default model in the background; :attr:`readiness` follows it.

        Call it on the event loop that serves the requests (a server's lifespan does, unless
        ``preload_model`` is off); the loading itself runs on the loading pool. Requests for
        the default model that arrive meanwhile wait for this load. A failure is logged and
        kept in :attr:`default_failure`. Calling it again does nothing.
        """
        if self._preload is None:
            logger.info("Loading the default model %s", self.settings.model)
            self._preload = asyncio.create_task(self._preload_default())
            self._preload.add_done_callback(_announce)

    @property
    def readiness(self) -> Readiness:
        """``loading`` while :meth:`preload` runs, ``failed`` if it failed, else ``ready``
        (also when the default model is loaded lazily, by the first request that needs it)."""
        task = self._preload
        if task is None:
            return "ready"
        if not task.done():
            return "loading"
        return "failed" if task.cancelled() or task.exception() is not None else "ready"

    @property
    def default_failure(self) -> ModelError | None:
        """Why the last attempt to load the default model failed; None once one succeeded."""
        return self._default_failure

    def default_info(self) -> ModelInfo | None:
        """What the default model is and can do, once it is loaded (None before). Quick."""
        settings = self.settings
        engine = self.models.peek(
            settings.model, device=settings.device, compute_type=settings.compute_type
        )
        return engine.info if engine is not None else None

    async def _preload_default(self) -> Engine:
        """Load the default model (pinned: it stays loaded without a holder)."""
        lease = await self._default_engine(None, None)
        lease.release()
        return lease.engine

    async def _engine(
        self, name: str | None, device: str | None = None, compute_type: str | None = None
    ) -> ModelLease:
        """A lease on the loaded engine for a request's ``name`` (None, empty or the configured
        name: the default model), logging every failure.

        Raises:
            ModelNotAllowedError: if ``name`` is not on the allow-list.
            UnknownModelError: if the request named a model that does not exist.
            ModelUnavailableError: if the model cannot be had; for the default model, whatever
                the cause, naming it and not blaming the request.
        """
        if name is None or name.strip() in ("", self.settings.model):
            if self._preload is not None and not self._preload.done():
                await asyncio.wait([self._preload])
            return await self._default_engine(device, compute_type)
        try:
            self.allowed.check(name)
            return await self._lease(name, device, compute_type)
        except UnknownModelError as error:
            logger.info("A request asked for an unknown model: %s", error.message)
            raise
        except ModelError as error:
            logger.warning("A request's model %s cannot be had: %s", name, error.message)
            raise

    async def _default_engine(self, device: str | None, compute_type: str | None) -> ModelLease:
        """A lease on the default model's engine; a failure is logged and, on the settings' own
        hardware, kept in :attr:`default_failure`.

        Raises:
            ModelUnavailableError: naming the default model and why it cannot be had.
        """
        settings = self.settings
        own_hardware = device in (None, settings.device) and compute_type in (
            None,
            settings.compute_type,
        )
        try:
            lease = await self._lease(settings.model, device, compute_type)
        except ModelError as error:
            failure = ModelUnavailableError(
                f"The default model '{settings.model}' is not available: {error.message}",
                param=None,
            )
            if own_hardware:
                self._default_failure = failure
            logger.error("%s", failure.message)
            raise failure from error
        if own_hardware:
            self._default_failure = None
        return lease

    async def _lease(
        self, name: str, device: str | None = None, compute_type: str | None = None
    ) -> ModelLease:
        """A lease on the loaded engine for ``name`` on the settings' hardware, or the nearest
        this machine runs to a request's device and compute type.

        Raises:
            ModelError: if the model cannot be had.
        """
        settings = self.settings
        wanted = (device or settings.device, compute_type or settings.compute_type)
        hardware = wanted
        if wanted != (settings.device, settings.compute_type):
            from whisperd.engine.whisper import nearest_supported

            hardware = await self._pools.loading.run(nearest_supported, *wanted)
        return await self._pools.loading.run(
            self.models.acquire, name, device=hardware[0], compute_type=hardware[1]
        )

    def close(self) -> None:
        """Stop the pools and unload every model (a preload still running is cancelled first;
        call this on the preload's event loop, or once that loop has stopped)."""
        if self._preload is not None and not self._preload.done():
            self._preload.cancel()
        self._pools.shutdown()
        self.speakers.close()
        self.models.close()


def _announce(task: asyncio.Task[Engine]) -> None:
    """Log the end of the default model's preload (its failure was logged where it happened)."""
    if task.cancelled() or task.exception() is not None:
        return
    info = task.result().info
    logger.info(
        "The default model %s is ready on %s (%s)", info.name, info.device, info.compute_type
    )


def _check_channel_names(request: TranscriptionRequest, audio: DecodedAudio) -> None:
    """Refuse more channel names (``multichannel``) than the recording has channels: the
    extra names would label nothing.

    Raises:
        InvalidOptionError: naming ``known_speaker_names[]``.
    """
    diarization = request.diarization
    if diarization is None or diarization.mode != "channels":
        return
    channels = len(audio.channels or (audio.samples,))
    if len(diarization.channel_names) > channels:
        raise InvalidOptionError(
            f"{len(diarization.channel_names)} known_speaker_names[] for a recording of "
            f"{channels} channel{'s' if channels > 1 else ''}: multichannel names one speaker "
            "per channel.",
            param="known_speaker_names[]",
        )

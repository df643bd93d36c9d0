"""The service: one call per use case, shared by the HTTP APIs, the streams, the CLI and jobs.

- :meth:`TranscriptionService.transcribe` (or :meth:`~TranscriptionService.open`, then
  :meth:`Transcription.run <whisperd.service.transcription.Transcription.run>` or
  :meth:`~whisperd.service.transcription.Transcription.events`): admission, model check,
  audio decoding, scheduled transcription, cancellation, release on every exit.
- :meth:`TranscriptionService.stream_capacity` and
  :meth:`~TranscriptionService.stream_session`: a real-time stream's slot and its session.
- :meth:`TranscriptionService.model`: load a model once and check options against it.
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
from whisperd.engine.manager import ModelManager
from whisperd.engine.selection import choose_engine
from whisperd.errors import ModelError, ModelUnavailableError, UnknownModelError
from whisperd.scheduler.admission import Admission
from whisperd.service.decoding_budget import DecodedAudioBudget
from whisperd.service.loading import model_format, model_hardware, whisper_loader
from whisperd.service.pools import Pools
from whisperd.service.streams import stream_decoder, stream_vad
from whisperd.service.transcription import Transcription
from whisperd.streaming.session import StreamSession

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from whisperd.config import Settings
    from whisperd.engine.base import Engine, ModelInfo, SegmentCallback, Transcript
    from whisperd.engine.manager import Loader
    from whisperd.engine.options import TranscribeOptions
    from whisperd.service.requests import Cancellation, TranscriptionRequest
    from whisperd.streaming.session import Emit, StreamConfig

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
    ) -> None:
        """Wire the service to its model manager and pools (closed by :meth:`close`)."""
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
        self._preload: asyncio.Task[Engine] | None = None
        self._default_failure: ModelError | None = None

    @classmethod
    def create(
        cls, settings: Settings, *, loader: Loader | None = None, progress: bool = False
    ) -> TranscriptionService:
        """Build a service with its own pools and model manager from ``settings``.

        ``loader`` builds engines (default: the settings' engine, CTranslate2 or PyTorch);
        ``progress`` shows download progress bars (for the CLI, not for servers).
        """
        engine = choose_engine(settings.engine, settings.device)
        models = ModelManager(
            loader or whisper_loader(settings, engine),
            models_dir=settings.models_dir,
            offline=settings.offline,
            endpoint=settings.hf_endpoint,
            progress=progress,
            fmt=model_format(engine),
            hardware=model_hardware(engine),
        )
        return cls(settings, models, pools=Pools.create(settings))

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
        engine = await self._load(name or self.settings.model)
        if options is not None:
            engine.check(options)
        return engine.info

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
            engine = await self._engine(request.model, request.device, request.compute_type)
            engine.check(request.options)
            reserve = held.enter_context(self.decoded_audio.reservation())
            audio = await self._pools.audio.run(decode_audio, request.source, self._limits, reserve)
        except BaseException:
            await held.aclose()
            raise
        return Transcription(
            request,
            engine,
            audio,
            pool=self._pools.requests,
            admission=self.admission,
            held=held,
        )

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
        """A new (not yet started) session on the default model, decoding on the stream pool.

        Raises:
            ModelError: if the default model cannot be had.
        """
        engine = await self._engine(None)
        config = dataclasses.replace(
            config,
            context_s=self.settings.stream_final_context_s,
            stable_partials=self.settings.stream_stable_partials,
        )
        decoder = stream_decoder(
            engine,
            config,
            hotwords=hotwords,
            final_context=self.settings.stream_final_encoder_context,
            pool=self._pools.streams,
            admission=self.admission,
        )
        return StreamSession(config, decoder, stream_vad(self._pools.vad), emit)

    def preload(self) -> None:
        """Start loading the default model in the background; :attr:`readiness` follows it.

        Call it on the event loop that serves the requests (a server's lifespan does, unless
        ``preload_model`` is off); the loading itself runs on the loading pool. Requests for
        the default model that arrive meanwhile wait for this load. A failure is logged and
        kept in :attr:`default_failure`. Calling it again does nothing.
        """
        if self._preload is None:
            logger.info("Loading the default model %s", self.settings.model)
            self._preload = asyncio.create_task(self._default_engine(None, None))
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

    async def _engine(
        self, name: str | None, device: str | None = None, compute_type: str | None = None
    ) -> Engine:
        """The loaded engine for a request's ``name`` (None, empty or the configured name: the
        default model), logging every failure.

        Raises:
            UnknownModelError: if the request named a model that does not exist.
            ModelUnavailableError: if the model cannot be had; for the default model, whatever
                the cause, naming it and not blaming the request.
        """
        if name is None or name.strip() in ("", self.settings.model):
            if self._preload is not None and not self._preload.done():
                await asyncio.wait([self._preload])
            return await self._default_engine(device, compute_type)
        try:
            return await self._load(name, device, compute_type)
        except UnknownModelError as error:
            logger.info("A request asked for an unknown model: %s", error.message)
            raise
        except ModelError as error:
            logger.warning("A request's model %s cannot be had: %s", name, error.message)
            raise

    async def _default_engine(self, device: str | None, compute_type: str | None) -> Engine:
        """The default model's engine; a failure is logged and, on the settings' own hardware,
        kept in :attr:`default_failure`.

        Raises:
            ModelUnavailableError: naming the default model and why it cannot be had.
        """
        settings = self.settings
        own_hardware = device in (None, settings.device) and compute_type in (
            None,
            settings.compute_type,
        )
        try:
            engine = await self._load(settings.model, device, compute_type)
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
        return engine

    async def _load(
        self, name: str, device: str | None = None, compute_type: str | None = None
    ) -> Engine:
        """The loaded engine for ``name`` on the settings' hardware, or the nearest this machine
        runs to a request's device and compute type.

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
            self.models.get, name, device=hardware[0], compute_type=hardware[1]
        )

    def close(self) -> None:
        """Stop the pools and unload every model (a preload still running is cancelled first;
        call this on the preload's event loop, or once that loop has stopped)."""
        if self._preload is not None and not self._preload.done():
            self._preload.cancel()
        self._pools.shutdown()
        self.models.close()


def _announce(task: asyncio.Task[Engine]) -> None:
    """Log the end of the default model's preload (its failure was logged where it happened)."""
    if task.cancelled() or task.exception() is not None:
        return
    info = task.result().info
    logger.info(
        "The default model %s is ready on %s (%s)", info.name, info.device, info.compute_type
    )

"""The service: one call per use case, shared by the HTTP APIs, the streams, the CLI and jobs.

- :meth:`TranscriptionService.transcribe` (or :meth:`~TranscriptionService.open`, then
  :meth:`Transcription.run <whisperd.service.transcription.Transcription.run>` or
  :meth:`~whisperd.service.transcription.Transcription.events`): admission, model check,
  audio decoding, scheduled transcription, cancellation, release on every exit.
- :meth:`TranscriptionService.stream_capacity` and
  :meth:`~TranscriptionService.stream_session`: a real-time stream's slot and its session.
- :meth:`TranscriptionService.model`: load a model once and check options against it.

Front ends translate their wire format into these calls and the results back; none of them
composes admission, decoding and scheduling itself.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from whisperd.audio.decode import DecodeLimits, decode_audio
from whisperd.engine.catalogue import FORMATS
from whisperd.engine.manager import ModelManager
from whisperd.engine.selection import ENGINE_FORMATS, choose_engine
from whisperd.scheduler.admission import Admission
from whisperd.service.loading import whisper_loader
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
        )
        self._pools = pools
        self._limits = DecodeLimits(max_duration_s=settings.max_audio_seconds)

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
            fmt=FORMATS[ENGINE_FORMATS[engine]],
        )
        return cls(settings, models, pools=Pools.create(settings))

    async def model(
        self, name: str | None = None, options: TranscribeOptions | None = None
    ) -> ModelInfo:
        """Load ``name`` (the default model if None) once; refuse ``options`` it cannot honour.

        Raises:
            ModelError: if the model cannot be had.
            InvalidOptionError: if the options do not suit the model.
        """
        engine = await self._engine(name)
        if options is not None:
            engine.check(options)
        return engine.info

    async def open(self, request: TranscriptionRequest) -> Transcription:
        """Admit ``request``, load and check its model, and decode its audio.

        Every input error surfaces here, before any transcription work: an HTTP front end can
        still answer with an error status. The returned transcription holds the admission
        slot until it is run or closed.

        Raises:
            QueueFullError: if the server is at capacity.
            ModelError: if the model cannot be had.
            InvalidOptionError: if the options do not suit the model.
            AudioError: if the audio cannot be used.
        """
        held = AsyncExitStack()
        await held.enter_async_context(self.admission.slot())
        try:
            engine = await self._engine(request.model, request.device, request.compute_type)
            engine.check(request.options)
            audio = await self._pools.audio.run(decode_audio, request.source, self._limits)
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
        decoder = stream_decoder(
            engine,
            config,
            hotwords=hotwords,
            final_context=self.settings.stream_final_encoder_context,
            pool=self._pools.streams,
            admission=self.admission,
        )
        return StreamSession(config, decoder, stream_vad(self._pools.vad), emit)

    async def _engine(
        self, name: str | None, device: str | None = None, compute_type: str | None = None
    ) -> Engine:
        """The loaded engine for ``name``; device and compute-type wishes become the nearest
        this machine runs, and default to the settings'."""
        if device is not None or compute_type is not None:
            from whisperd.engine.whisper import nearest_supported

            device, compute_type = await self._pools.loading.run(
                nearest_supported,
                device or self.settings.device,
                compute_type or self.settings.compute_type,
            )
        return await self._pools.loading.run(
            self.models.get,
            name or self.settings.model,
            device=device or self.settings.device,
            compute_type=compute_type or self.settings.compute_type,
        )

    def close(self) -> None:
        """Stop the pools and unload every model."""
        self._pools.shutdown()
        self.models.close()

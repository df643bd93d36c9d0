"""The transcription use case shared by the CLI, the HTTP APIs and streaming.

``decode -> model -> Transcript``: audio is decoded on the decode pool, the model is loaded (once)
and run on the model executor; nothing blocking runs on the event loop.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from whisperd.audio.decode import AudioSource, DecodedAudio, DecodeLimits, decode_audio
from whisperd.engine.registry import Loader, ModelManager, ResolvedModel
from whisperd.scheduler.executor import ModelExecutor

if TYPE_CHECKING:
    from whisperd.config import Settings
    from whisperd.engine.base import Engine, SegmentCallback, Transcript
    from whisperd.engine.options import TranscribeOptions

logger = logging.getLogger(__name__)


def whisper_loader(settings: Settings) -> Loader:
    """Return a loader that builds faster-whisper engines with the settings' threading."""

    def load(model: ResolvedModel, device: str, compute_type: str) -> Engine:
        from whisperd.engine.whisper import WhisperEngine

        return WhisperEngine(
            model,
            device=device,
            compute_type=compute_type,
            cpu_threads=settings.cpu_threads,
            num_workers=settings.num_workers,
        )

    return load


class TranscriptionService:
    """Decodes audio and runs it through the right model."""

    def __init__(
        self,
        settings: Settings,
        models: ModelManager,
        *,
        model_executor: ModelExecutor,
        decode_executor: ModelExecutor,
    ) -> None:
        """Wire the service to its model manager and executors (all owned by the caller)."""
        self.settings = settings
        self.models = models
        self._model_executor = model_executor
        self._decode_executor = decode_executor
        self._limits = DecodeLimits(max_duration_s=settings.max_audio_seconds)

    @classmethod
    def create(cls, settings: Settings, *, progress: bool = False) -> TranscriptionService:
        """Build a service with its own executors and model manager from ``settings``.

        ``progress`` shows download progress bars (for the CLI, not for servers).
        """
        models = ModelManager(
            whisper_loader(settings),
            models_dir=settings.models_dir,
            offline=settings.offline,
            endpoint=settings.hf_endpoint,
            progress=progress,
        )
        return cls(
            settings,
            models,
            model_executor=ModelExecutor(settings.num_workers),
            decode_executor=ModelExecutor(2, name="whisperd-decode"),
        )

    async def decode(self, source: AudioSource) -> DecodedAudio:
        """Decode ``source`` to 16 kHz mono float32 on the decode pool."""
        return await self._decode_executor.run(decode_audio, source, self._limits)

    async def engine(self, model: str | None = None) -> Engine:
        """Return the loaded engine for ``model`` (the default model if None), loading it once."""
        name = model or self.settings.model
        return await self._decode_executor.run(
            self.models.get,
            name,
            device=self.settings.device,
            compute_type=self.settings.compute_type,
        )

    async def transcribe_audio(
        self,
        audio: DecodedAudio,
        options: TranscribeOptions,
        *,
        model: str | None = None,
        on_segment: SegmentCallback | None = None,
    ) -> Transcript:
        """Transcribe already decoded audio with ``model``."""
        engine = await self.engine(model)
        return await self._model_executor.run(engine.transcribe, audio.samples, options, on_segment)

    async def transcribe(
        self,
        source: AudioSource,
        options: TranscribeOptions,
        *,
        model: str | None = None,
        on_segment: SegmentCallback | None = None,
    ) -> Transcript:
        """Decode ``source`` and transcribe it with ``model``."""
        audio = await self.decode(source)
        return await self.transcribe_audio(audio, options, model=model, on_segment=on_segment)

    def close(self) -> None:
        """Stop the executors and unload every model."""
        self._model_executor.shutdown()
        self._decode_executor.shutdown()
        self.models.close()

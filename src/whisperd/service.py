"""The transcription use case shared by the CLI, the HTTP APIs and streaming.

``model check -> decode -> model -> Transcript``: the model is loaded once and checked against
the options before any audio is decoded; audio is decoded on the decode pool and transcribed on
the model executor; nothing blocking runs on the event loop. A request can be cancelled (its
client went away): the engine stops at the next segment.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from whisperd.audio.decode import AudioSource, DecodedAudio, DecodeLimits, decode_audio
from whisperd.engine.options import DEFAULT_TEMPERATURES, TranscribeOptions
from whisperd.engine.registry import FORMATS, Loader, ModelManager, ResolvedModel
from whisperd.engine.selection import ENGINE_FORMATS, choose_engine
from whisperd.scheduler.admission import Admission
from whisperd.scheduler.batcher import Priority
from whisperd.scheduler.executor import ModelExecutor

if TYPE_CHECKING:
    from whisperd.config import Settings
    from whisperd.engine.base import Engine, SegmentCallback, Transcript
    from whisperd.streaming.session import Decoder, DecodeRequest, StreamConfig, Vad

logger = logging.getLogger(__name__)


def whisper_loader(settings: Settings, engine: str = "ctranslate2") -> Loader:
    """Return a loader that builds ``engine`` engines with the settings' threading."""

    def load(model: ResolvedModel, device: str, compute_type: str) -> Engine:
        from whisperd.engine.whisper import BatchingConfig, WhisperEngine

        batching = BatchingConfig(settings.max_batch_size, settings.max_batch_wait_ms)
        if engine == "torch":
            from whisperd.engine.pytorch.engine import TorchEngine

            return TorchEngine(
                model,
                device=device,
                compute_type=compute_type,
                cpu_threads=settings.cpu_threads,
                batching=batching,
                max_rows=settings.max_decode_rows,
                graph_rows=settings.cuda_graph_rows,
            )
        return WhisperEngine(
            model,
            device=device,
            compute_type=compute_type,
            cpu_threads=settings.cpu_threads,
            num_workers=settings.num_workers,
            batching=batching,
        )

    return load


@dataclass(slots=True)
class Cancellation:
    """Set by the caller's side when the result is no longer wanted."""

    event: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Ask the running work to stop before its next window."""
        self.event.set()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self.event.is_set()


class TranscriptionService:
    """Decodes audio and runs it through the right model."""

    def __init__(
        self,
        settings: Settings,
        models: ModelManager,
        *,
        request_executor: ModelExecutor,
        decode_executor: ModelExecutor,
        admission: Admission | None = None,
    ) -> None:
        """Wire the service to its model manager and executors (all owned by the caller)."""
        self.settings = settings
        self.models = models
        self.admission = admission or Admission(
            settings.max_pending_requests,
            max_audio_seconds=settings.max_queued_audio_seconds,
            max_streams=settings.max_streams,
        )
        self._request_executor = request_executor
        self._decode_executor = decode_executor
        self._limits = DecodeLimits(max_duration_s=settings.max_audio_seconds)

    @classmethod
    def create(cls, settings: Settings, *, progress: bool = False) -> TranscriptionService:
        """Build a service with its own executors and model manager from ``settings``.

        ``progress`` shows download progress bars (for the CLI, not for servers).
        """
        engine = choose_engine(settings.engine, settings.device)
        models = ModelManager(
            whisper_loader(settings, engine),
            models_dir=settings.models_dir,
            offline=settings.offline,
            endpoint=settings.hf_endpoint,
            progress=progress,
            fmt=FORMATS[ENGINE_FORMATS[engine]],
        )
        return cls(
            settings,
            models,
            # One thread per admitted request runs its decoding loop; the model calls themselves
            # run on the engine scheduler's own workers.
            request_executor=ModelExecutor(settings.max_pending_requests, name="whisperd-request"),
            decode_executor=ModelExecutor(2, name="whisperd-decode"),
        )

    async def decode(self, source: AudioSource) -> DecodedAudio:
        """Decode ``source`` to 16 kHz mono float32 on the decode pool."""
        return await self._decode_executor.run(decode_audio, source, self._limits)

    async def engine(
        self,
        model: str | None = None,
        *,
        device: str | None = None,
        compute_type: str | None = None,
    ) -> Engine:
        """Return the loaded engine for ``model`` (the default model if None), loading it once.

        ``device`` and ``compute_type`` default to the settings'.
        """
        return await self._decode_executor.run(
            self.models.get,
            model or self.settings.model,
            device=device or self.settings.device,
            compute_type=compute_type or self.settings.compute_type,
        )

    async def hardware(self, device: str | None, compute_type: str | None) -> tuple[str, str]:
        """The closest device and compute type this machine runs to a request's choice."""
        from whisperd.engine.whisper import nearest_supported

        return await self._decode_executor.run(
            nearest_supported,
            device or self.settings.device,
            compute_type or self.settings.compute_type,
        )

    async def prepare(
        self,
        source: AudioSource,
        options: TranscribeOptions,
        *,
        model: str | None = None,
        device: str | None = None,
        compute_type: str | None = None,
    ) -> tuple[Engine, DecodedAudio]:
        """Load and check the model, then decode ``source``: every input error surfaces here.

        Raises:
            ModelError: if the model cannot be had.
            InvalidOptionError: if the options do not suit the model.
            AudioError: if the audio cannot be used.
        """
        engine = await self.engine(model, device=device, compute_type=compute_type)
        engine.check(options)
        return engine, await self.decode(source)

    async def run(
        self,
        engine: Engine,
        audio: DecodedAudio,
        options: TranscribeOptions,
        *,
        on_segment: SegmentCallback | None = None,
        cancel: Cancellation | None = None,
        priority: Priority = Priority.INTERACTIVE,
    ) -> Transcript:
        """Transcribe decoded audio on a request thread; model calls go through the scheduler.

        Raises:
            TranscriptionError: if decoding fails.
            CancelledError: if ``cancel`` was set while it ran.
        """
        async with self.admission.running_work(audio.duration):
            return await self._request_executor.run(
                engine.transcribe,
                audio.samples,
                options,
                on_segment,
                priority=priority,
                cancel=None if cancel is None else cancel.event,
            )

    async def transcribe_audio(
        self,
        audio: DecodedAudio,
        options: TranscribeOptions,
        *,
        model: str | None = None,
        on_segment: SegmentCallback | None = None,
        priority: Priority = Priority.INTERACTIVE,
    ) -> Transcript:
        """Transcribe already decoded audio with ``model``."""
        engine = await self.engine(model)
        return await self.run(engine, audio, options, on_segment=on_segment, priority=priority)

    async def transcribe(
        self,
        source: AudioSource,
        options: TranscribeOptions,
        *,
        model: str | None = None,
        on_segment: SegmentCallback | None = None,
        cancel: Cancellation | None = None,
    ) -> Transcript:
        """Check the model, decode ``source`` and transcribe it."""
        engine, audio = await self.prepare(source, options, model=model)
        return await self.run(engine, audio, options, on_segment=on_segment, cancel=cancel)

    def stream_vad(self) -> Vad:
        """A fresh per-stream VAD whose scoring runs on the decode pool."""
        from whisperd.engine.vad import StreamingVad

        vad = StreamingVad()

        async def score(audio: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
            return await self._decode_executor.run(vad, audio)

        return score

    def stream_decoder(self, engine: Engine, config: StreamConfig, hotwords: str | None) -> Decoder:
        """Decode stream utterances on ``engine``: finals first, partials greedy with a prefix."""
        final_context = self.settings.stream_final_encoder_context

        async def decode(audio: np.ndarray[Any, Any], request: DecodeRequest) -> Transcript:
            options = TranscribeOptions(
                language=config.language,
                initial_prompt=config.prompt or None,
                hotwords=hotwords or None,
                prefix=request.prefix,
                word_timestamps=config.word_timestamps and request.final,
                vad_filter=False,
                condition_on_previous_text=False,
                beam_size=1,
                temperature=DEFAULT_TEMPERATURES if request.final else (0.0,),
                # Partials encode only the utterance's length; finals the whole window.
                encoder_context=final_context if request.final else "audio",
            )
            priority = Priority.STREAM_FINAL if request.final else Priority.STREAMING
            return await self._request_executor.run(
                engine.transcribe, audio, options, None, priority=priority
            )

        return decode

    def close(self) -> None:
        """Stop the executors and unload every model."""
        self._request_executor.shutdown()
        self._decode_executor.shutdown()
        self.models.close()

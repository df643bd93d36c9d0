"""One admitted transcription: model checked, audio decoded, run once, released on every exit."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from whisperd.audio.decoded import SILENCE_PEAK
from whisperd.diarization import channel_labels, diarize, merge_channels
from whisperd.engine.base import SAMPLE_RATE, Transcript
from whisperd.engine.detection import LanguageDetection, LanguageProbability
from whisperd.service.requests import Cancellation

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from contextlib import AsyncExitStack

    import numpy as np
    import numpy.typing as npt

    from whisperd.audio.decode import DecodedAudio
    from whisperd.diarization import SpeakerEncoder
    from whisperd.engine.base import Engine, ModelInfo, Segment, SegmentCallback
    from whisperd.engine.options import TranscribeOptions
    from whisperd.scheduler.admission import Admission
    from whisperd.service.metrics import ServiceMetrics
    from whisperd.service.pools import WorkerPool
    from whisperd.service.requests import TranscriptionRequest


class Transcription:
    """An admitted request, ready to run: its model is loaded and its audio decoded.

    It holds the request's admission slot from :meth:`TranscriptionService.open
    <whisperd.service.TranscriptionService.open>` until it has run to the end, failed, been
    cancelled, or been closed with :meth:`aclose`; whichever comes first releases it. Run it
    once, with :meth:`run` for the transcript or :meth:`events` for segments as they are
    decoded.
    """

    def __init__(
        self,
        request: TranscriptionRequest,
        engine: Engine,
        audio: DecodedAudio,
        *,
        pool: WorkerPool,
        admission: Admission,
        held: AsyncExitStack,
        metrics: ServiceMetrics | None = None,
        speakers: SpeakerEncoder | None = None,
    ) -> None:
        """Wrap a prepared request; ``held`` releases its admission slot when closed;
        ``metrics`` counts its audio, speed and failure; ``speakers`` labels the speakers of
        a request that asks for them by voice."""
        self.request = request
        self.audio = audio
        self._engine = engine
        self._pool = pool
        self._admission = admission
        self._held = held
        self._metrics = metrics
        self._speakers = speakers

    @property
    def model(self) -> ModelInfo:
        """The model that will transcribe (name, device, compute type, capabilities)."""
        return self._engine.info

    @property
    def duration(self) -> float:
        """Seconds of decoded audio."""
        return self.audio.duration

    async def run(
        self, *, cancel: Cancellation | None = None, on_segment: SegmentCallback | None = None
    ) -> Transcript:
        """Transcribe on a request thread; the model calls go through the engine's scheduler.

        ``on_segment`` is called from that thread with each segment as soon as it is decoded.
        If the awaiting task is cancelled, the engine is told to stop at its next window.
        Digital silence is not given to the model (Whisper hallucinates on it): its transcript
        has no segments and the audio's duration (:func:`silent_transcript`). A request with
        :attr:`~whisperd.service.requests.TranscriptionRequest.diarization` gets speakers:
        each channel transcribed on its own and merged (``channels``; mono audio is its one
        channel), or voices told apart by the speaker model after decoding (``speakers``).

        Raises:
            QueueFullError: if the audio would exceed the server's audio budget.
            TranscriptionError: if decoding fails.
            CancelledError: if ``cancel`` was set while it ran.
        """
        cancel = cancel or Cancellation()
        try:
            if self.audio.is_silent:
                return silent_transcript(self.request.options, self.model, self.audio.duration)
            async with self._admission.running_work(self.audio.duration, self.request.priority):
                started = time.monotonic()
                transcript = await self._transcribe(on_segment, cancel)
            if self._metrics is not None:
                elapsed = time.monotonic() - started
                self._metrics.record_transcribed(self.request.priority, self.duration, elapsed)
            return transcript
        except BaseException as error:
            if self._metrics is not None:
                self._metrics.record_failure(error)
            if isinstance(error, asyncio.CancelledError):
                cancel.cancel()
            raise
        finally:
            await self.aclose()

    async def _transcribe(
        self, on_segment: SegmentCallback | None, cancel: Cancellation
    ) -> Transcript:
        diarization = self.request.diarization
        if diarization is not None and diarization.mode == "channels":
            return await self._per_channel(self.audio.channels or (self.audio.samples,), cancel)
        transcript = await self._decode(self.audio.samples, on_segment, cancel)
        if diarization is not None and diarization.mode == "speakers" and self._speakers:
            samples = self.audio.samples
            return await self._pool.run(diarize, transcript, samples, diarization, self._speakers)
        return transcript

    async def _per_channel(
        self, channels: tuple[npt.NDArray[np.float32], ...], cancel: Cancellation
    ) -> Transcript:
        """Every channel transcribed at once (their model calls batch together in the
        scheduler), merged by time; a silent channel has no segments."""
        assert self.request.diarization is not None
        labels = channel_labels(len(channels), self.request.diarization.channel_names)
        transcripts = await asyncio.gather(
            *(self._channel(samples, cancel) for samples in channels)
        )
        return merge_channels(transcripts, labels)

    async def _channel(self, samples: npt.NDArray[np.float32], cancel: Cancellation) -> Transcript:
        if max(float(samples.max()), -float(samples.min())) < SILENCE_PEAK:
            return silent_transcript(self.request.options, self.model, len(samples) / SAMPLE_RATE)
        return await self._decode(samples, None, cancel)

    async def _decode(
        self,
        samples: npt.NDArray[np.float32],
        on_segment: SegmentCallback | None,
        cancel: Cancellation,
    ) -> Transcript:
        return await self._pool.run(
            self._engine.transcribe,
            samples,
            self.request.options,
            on_segment,
            priority=self.request.priority,
            cancel=cancel.event,
        )

    async def detect_language(self, *, cancel: Cancellation | None = None) -> LanguageDetection:
        """Detect the spoken language instead of transcribing (on a request thread; its model
        calls go through the engine's scheduler), then release the request.

        Digital silence is not given to the model: it has no language to hear, and is
        reported as the request's language, else English, as :func:`silent_transcript` does.

        Raises:
            TranscriptionError: if a model call fails.
            CancelledError: if ``cancel`` was set while it ran.
        """
        cancel = cancel or Cancellation()
        options = self.request.options
        try:
            if self.audio.is_silent:
                silent = silent_transcript(options, self.model, self.audio.duration)
                return LanguageDetection(
                    silent.language,
                    silent.language_probability,
                    (LanguageProbability(silent.language, silent.language_probability),),
                    silent.duration,
                    self.model.name,
                )
            return await self._pool.run(
                self._engine.detect_language,
                self.audio.samples,
                options,
                priority=self.request.priority,
                cancel=cancel.event,
            )
        except asyncio.CancelledError:
            cancel.cancel()
            raise
        finally:
            await self.aclose()

    async def events(
        self, cancel: Cancellation | None = None
    ) -> AsyncIterator[Segment | Transcript]:
        """Yield each segment as soon as it is decoded, then the whole transcript last.

        Leaving the iteration early (the client went away) stops the engine at its next
        window and releases the request.

        Raises:
            TranscriptionError: if decoding fails (after the segments decoded so far).
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Segment] = asyncio.Queue()
        cancel = cancel or Cancellation()

        def on_segment(segment: Segment) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, segment)

        work = asyncio.ensure_future(self.run(cancel=cancel, on_segment=on_segment))
        try:
            while not (work.done() and queue.empty()):
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, work}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield getter.result()
                else:
                    getter.cancel()
            yield work.result()
        finally:
            if not work.done():
                cancel.cancel()
                work.cancel()
            await self.aclose()

    async def aclose(self) -> None:
        """Release the admission slot (idempotent); a transcription never run is dropped."""
        await self._held.aclose()


def silent_transcript(options: TranscribeOptions, model: ModelInfo, duration: float) -> Transcript:
    """The transcript of ``duration`` seconds of digital silence: no segments, no text.

    The language is the requested one, else the first candidate (``options.languages``), else
    English (nothing was heard to detect one from), with probability 1 when it is certain
    (asked for, or an English-only model) and 0 when it was not detected. VAD, when on, leaves
    nothing of silence.
    """
    certain = options.language is not None or not model.multilingual
    guess = "en" if not model.multilingual or not options.languages else options.languages[0]
    return Transcript(
        segments=(),
        language=options.language or guess,
        language_probability=1.0 if certain else 0.0,
        duration=duration,
        task=options.task,
        duration_after_vad=0.0 if options.vad_filter else duration,
        model=model.name,
    )

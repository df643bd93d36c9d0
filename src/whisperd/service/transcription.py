"""One admitted transcription: model checked, audio decoded, run once, released on every exit."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from whisperd.engine.base import Transcript
from whisperd.service.requests import Cancellation

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from contextlib import AsyncExitStack

    from whisperd.audio.decode import DecodedAudio
    from whisperd.engine.base import Engine, ModelInfo, Segment, SegmentCallback
    from whisperd.engine.options import TranscribeOptions
    from whisperd.scheduler.admission import Admission
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
    ) -> None:
        """Wrap a prepared request; ``held`` releases its admission slot when closed."""
        self.request = request
        self.audio = audio
        self._engine = engine
        self._pool = pool
        self._admission = admission
        self._held = held

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
        has no segments and the audio's duration (:func:`silent_transcript`).

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
                return await self._pool.run(
                    self._engine.transcribe,
                    self.audio.samples,
                    self.request.options,
                    on_segment,
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

    The language is the requested one, else English (nothing was heard to detect one from),
    with probability 1 when it is certain (asked for, or an English-only model) and 0 when
    it was not detected. VAD, when on, leaves nothing of silence.
    """
    certain = options.language is not None or not model.multilingual
    return Transcript(
        segments=(),
        language=options.language or "en",
        language_probability=1.0 if certain else 0.0,
        duration=duration,
        task=options.task,
        duration_after_vad=0.0 if options.vad_filter else duration,
        model=model.name,
    )

"""One stream's state machine: VAD endpointing, partial and final decodes, stable text.

Audio (16 kHz mono float32) is fed as it arrives and scored by a per-stream VAD in 32 ms
windows. Speech opens an utterance (with ``speech_pad_ms`` of lead-in); ``min_silence_ms`` of
silence closes it and queues a final of the whole utterance. While speech goes on, a partial of
the utterance so far is due every ``partial_interval_s`` of new audio; at most one partial is
pending per stream (the cadence stretches under load) and finals always go first. Partials are
decoded greedily with the committed words as a forced prefix and stabilised with
LocalAgreement-2; finals are re-decoded from scratch with temperature fallback. An utterance
reaching ``max_utterance_s`` is cut at its last segment boundary and the rest carried on. Audio
never marked as speech is never decoded.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from whisperd.engine.base import SAMPLE_RATE, Transcript
from whisperd.errors import WhisperdError
from whisperd.streaming.stabilizer import LocalAgreement

logger = logging.getLogger(__name__)

WINDOW = 512
_IDLE_KEEP_S = 1.0


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """How one stream is endpointed and decoded."""

    language: str | None = "en"
    prompt: str | None = None
    word_timestamps: bool = False
    partials: bool = False
    partial_interval_s: float = 0.5
    max_utterance_s: float = 30.0
    vad: bool = True
    """False: no automatic endpoints; the client commits (OpenAI ``turn_detection: null``)."""
    vad_threshold: float = 0.5
    min_silence_ms: int = 300
    speech_pad_ms: int = 30


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """VAD heard speech begin (stream time, seconds, pad included)."""

    audio_time: float
    number: int


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    """VAD heard speech end (stream time, seconds)."""

    audio_time: float
    number: int


@dataclass(frozen=True, slots=True)
class Result:
    """A partial or final transcript of one utterance."""

    number: int
    is_final: bool
    start: float
    """Stream time where the decoded audio starts; segment times are relative to it."""
    duration: float
    transcript: Transcript
    stable: str
    unstable: str
    latency: float
    end_of_audio: bool = False


@dataclass(frozen=True, slots=True)
class Failed:
    """A decode of this stream failed; the stream goes on."""

    number: int
    message: str
    code: str


Event = SpeechStarted | SpeechStopped | Result | Failed


@dataclass(frozen=True, slots=True)
class DecodeRequest:
    """What the decoder is asked: a final (fallback, no prefix) or a partial (greedy, prefix)."""

    final: bool
    prefix: str | None


Decoder = Callable[[np.ndarray[Any, Any], DecodeRequest], Awaitable[Transcript]]
Emit = Callable[[Event], Awaitable[None]]
Vad = Callable[[np.ndarray[Any, Any]], Awaitable[np.ndarray[Any, Any]]]


@dataclass
class _Final:
    start: int
    end: int
    cut: bool
    end_of_audio: bool
    queued_at: float = field(default_factory=time.monotonic)


class StreamSession:
    """The state of one stream between the socket and the scheduler."""

    def __init__(self, config: StreamConfig, decode: Decoder, vad: Vad, emit: Emit) -> None:
        """Wire a stream to its decoder, VAD and event sink; :meth:`start` runs its worker."""
        self.config = config
        self._decode, self._vad, self._emit = decode, vad, emit
        self._samples = np.zeros(0, dtype=np.float32)
        self._base = 0  # stream sample index of self._samples[0]
        self._pending = np.zeros(0, dtype=np.float32)  # tail shorter than a VAD window
        self._now = 0  # samples scored so far
        self._utterance = 0  # start of the utterance in progress (lead-in included)
        self._finalized = 0  # audio before this is finalized or dropped
        self._speaking = False
        self._silence_from: int | None = None
        self._last_partial = 0
        self._finals: collections.deque[_Final] = collections.deque()
        self._partial_due: float | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._worker: asyncio.Task[None] | None = None
        self._stability = LocalAgreement()
        self.number = 1
        """Number of the utterance in progress (Baseten's ``transcription_num``)."""

    @property
    def audio_seconds(self) -> float:
        """Audio received so far."""
        return (self._now + len(self._pending)) / SAMPLE_RATE

    def start(self) -> None:
        """Run the decode worker."""
        self._worker = asyncio.create_task(self._work())

    async def close(self) -> None:
        """Stop the worker; queued work is dropped."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    async def feed(self, audio: np.ndarray[Any, Any]) -> None:
        """Take new 16 kHz mono float32 audio."""
        self._samples = np.concatenate([self._samples, audio.astype(np.float32, copy=False)])
        if not self.config.vad:
            self._now += len(audio)
            self._partial_if_due()
            return
        data = np.concatenate([self._pending, audio.astype(np.float32, copy=False)])
        usable = len(data) // WINDOW * WINDOW
        self._pending = data[usable:]
        if usable:
            probabilities = await self._vad(data[:usable])
            for probability in probabilities:
                await self._window(float(probability))
        self._trim()

    async def finalize(self) -> None:
        """Force an endpoint now (Deepgram ``Finalize``, AssemblyAI ``ForceEndpoint``)."""
        if self._speaking or not self.config.vad:
            await self._end_speech(self._now)

    async def commit(self) -> None:
        """Finalize everything received (manual turn detection)."""
        self._now += len(self._pending)
        self._pending = np.zeros(0, dtype=np.float32)
        if self._now > self._finalized:
            self._queue_final(self._now)

    def clear(self) -> None:
        """Drop audio not yet finalized."""
        self._finalized = self._utterance = self._now + len(self._pending)
        self._speaking = False
        self._silence_from = None
        self._stability.reset()
        self._trim()

    async def end_audio(self) -> None:
        """Flush: a last final if speech is open, then wait until every decode is done."""
        self._now += len(self._pending)
        self._pending = np.zeros(0, dtype=np.float32)
        if self._speaking or (not self.config.vad and self._now > self._finalized):
            self._queue_final(self._now, end_of_audio=True)
            self._speaking = False
        await self._idle.wait()

    # -- VAD state machine --------------------------------------------------------------

    async def _window(self, probability: float) -> None:
        start, self._now = self._now, self._now + WINDOW
        threshold = self.config.vad_threshold
        if not self._speaking:
            if probability >= threshold:
                await self._start_speech(start)
            return
        if probability >= threshold - 0.15:
            self._silence_from = None
        elif self._silence_from is None:
            self._silence_from = start
        silence = self._now - self._silence_from if self._silence_from is not None else 0
        if silence >= self.config.min_silence_ms * SAMPLE_RATE // 1000:
            assert self._silence_from is not None
            await self._end_speech(self._silence_from + self._pad)
        elif self._now - max(self._utterance, self._finalized) >= (
            self.config.max_utterance_s * SAMPLE_RATE
        ):
            self._queue_final(self._now, cut=True)
        else:
            self._partial_if_due()

    @property
    def _pad(self) -> int:
        return self.config.speech_pad_ms * SAMPLE_RATE // 1000

    async def _start_speech(self, start: int) -> None:
        self._speaking = True
        self._silence_from = None
        self._utterance = max(self._finalized, start - self._pad, self._base)
        self._last_partial = self._utterance
        await self._emit(SpeechStarted(self._utterance / SAMPLE_RATE, self.number))

    async def _end_speech(self, end: int) -> None:
        end = min(end, self._now)
        self._speaking = False
        self._silence_from = None
        await self._emit(SpeechStopped(end / SAMPLE_RATE, self.number))
        self._queue_final(end)

    def _partial_if_due(self) -> None:
        due = self._now - self._last_partial >= self.config.partial_interval_s * SAMPLE_RATE
        if self.config.partials and due and self._partial_due is None and not self._finals:
            self._last_partial = self._now
            self._partial_due = time.monotonic()
            self._idle.clear()
            self._wake.set()

    def _queue_final(self, end: int, *, cut: bool = False, end_of_audio: bool = False) -> None:
        if cut and self._finals and self._finals[-1].cut:
            return  # one cut at a time; the next window re-checks
        start = self._utterance if self.config.vad else self._finalized
        self._finals.append(_Final(start, end, cut, end_of_audio))
        self._partial_due = None
        self._idle.clear()
        self._wake.set()

    def _trim(self) -> None:
        pending = [job.start for job in self._finals]
        if self._speaking or not self.config.vad:
            pending.append(max(self._utterance, self._finalized))
        keep_from = min(pending, default=self._now - int(_IDLE_KEEP_S * SAMPLE_RATE))
        drop = min(keep_from, self._now) - self._base
        if drop > 0:
            self._samples = self._samples[drop:]
            self._base += drop

    def _audio(self, start: int, end: int) -> np.ndarray[Any, Any]:
        return self._samples[max(start - self._base, 0) : max(end - self._base, 0)]

    # -- decode worker ------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._finals or self._partial_due is not None:
                try:
                    if self._finals:
                        await self._run_final(self._finals.popleft())
                    else:
                        await self._run_partial()
                except Exception as exc:
                    logger.exception("stream decode failed")
                    await self._emit_failure(exc)
            self._idle.set()

    async def _emit_failure(self, exc: Exception) -> None:
        if isinstance(exc, WhisperdError):
            await self._emit(Failed(self.number, exc.message, exc.code))
        else:
            await self._emit(Failed(self.number, "The transcription failed.", "internal_error"))

    async def _run_partial(self) -> None:
        queued, self._partial_due = self._partial_due, None
        start, end = max(self._utterance, self._finalized), self._now
        audio = self._audio(start, end)
        if len(audio) < WINDOW or queued is None:
            return
        prefix = self._stability.prefix or None
        transcript = await self._decode(audio, DecodeRequest(final=False, prefix=prefix))
        if self._finals or start != max(self._utterance, self._finalized):
            return  # a final overtook this partial
        words = transcript.text.split()
        stable, unstable = self._stability.update(words)
        await self._emit(
            Result(
                self.number,
                False,
                start / SAMPLE_RATE,
                len(audio) / SAMPLE_RATE,
                transcript,
                stable,
                unstable,
                time.monotonic() - queued,
            )
        )

    async def _run_final(self, job: _Final) -> None:
        start = max(job.start, self._finalized)
        audio = self._audio(start, job.end)
        if len(audio) == 0:
            return
        transcript = await self._decode(audio, DecodeRequest(final=True, prefix=None))
        consumed = job.end
        if job.cut and len(transcript.segments) > 1:
            last = transcript.segments[-1]
            transcript = Transcript(
                transcript.segments[:-1],
                transcript.language,
                transcript.language_probability,
                transcript.duration,
                transcript.task,
                model=transcript.model,
            )
            consumed = start + int(last.start * SAMPLE_RATE)
        self._finalized = max(self._finalized, consumed)
        self._stability.reset()
        self._last_partial = max(self._last_partial, self._finalized)
        await self._emit(
            Result(
                self.number,
                True,
                start / SAMPLE_RATE,
                (consumed - start) / SAMPLE_RATE,
                transcript,
                transcript.text,
                "",
                time.monotonic() - job.queued_at,
                job.end_of_audio,
            )
        )
        self.number += 1

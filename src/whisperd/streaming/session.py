"""One stream's state machine: VAD endpointing, partial and final decodes, stable text.

Audio (16 kHz mono float32) is fed as it arrives and scored by a per-stream VAD in 32 ms
windows. Speech opens an utterance, numbered in order (every event of an utterance carries its
number); ``min_silence_ms`` of silence closes it and queues its final. While speech goes on, a
partial of the utterance so far is due every ``partial_interval_s`` of new audio; at most one
partial is pending per stream (the cadence stretches under load) and finals always go first.
An utterance reaching ``max_utterance_s`` is cut at its last segment boundary and the rest
carried on as the next utterance. Audio never marked as speech is never decoded.

How decodes keep the batch path's accuracy (the choices of whisper_streaming, Machacek et al.
2023, adapted to utterances):

- every decode starts ``DECODE_LEAD_S`` before the VAD onset (never before the previous
  final's audio) and a final runs ``DECODE_TRAIL_S`` past the speech end when that audio has
  arrived, so a word the VAD caught late is not cut;
- finals are conditioned on the stream's own finals so far (``DecodeRequest.prompt``) and
  decoded over up to ``StreamConfig.context_s`` of the previous finals' audio
  (:mod:`whisperd.streaming.context`), so a sentence cut by a short pause is heard in context,
  as the batch path hears it in its 30 s window; with ``StreamConfig.latency_target_s``, a
  final hears as much of it as its decode can afford within that target, predicted from what
  the stream's earlier finals cost (:mod:`whisperd.streaming.budget`);
- partials are greedy, without the previous finals as prompt (on a few hundred milliseconds of
  audio, greedy decoding repeats its prompt); by default their words are all unstable and an
  utterance's words become stable with its final, which hears the whole utterance with the
  beam (greedy partials guess the newest words wrong, and forcing a guess into the final loses
  it);
- with ``StreamConfig.stable_partials``, a word becomes stable once two consecutive trusted
  partials agree on it and more than ``HELD_BACK_WORDS`` words follow it
  (:mod:`whisperd.streaming.stabilizer`), and is forced as the decoder prefix of later partials
  and of the final: stable text comes sooner, at a cost in words;
- finals use the stream's beam width and temperature fallback, with any stable words forced as
  prefix: nothing shown as stable is ever taken back;
- finals queued behind the one about to be decoded (the stream's decodes fell behind its
  speech) are decoded with it in one window (``StreamConfig.merge_queued_finals``); each
  utterance keeps the words whose middle lies in its own stretch (cut halfway through the
  silence between utterances) and gets its own final.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from whisperd.engine.base import SAMPLE_RATE, Transcript
from whisperd.engine.options import DEFAULT_TEMPERATURES
from whisperd.errors import WhisperdError
from whisperd.streaming.budget import ContextBudget
from whisperd.streaming.context import (
    CONTEXT_S,
    WINDOW_S,
    Committed,
    Context,
    choose_context,
    drop_before,
    drop_leading_text,
    words_between,
)
from whisperd.streaming.stabilizer import LocalAgreement, doubtful

logger = logging.getLogger(__name__)

WINDOW = 512
"""Samples per VAD window (32 ms, Silero's window at 16 kHz)."""
DECODE_LEAD_S = 0.3
"""Audio decoded before the VAD onset, so a word whose start the VAD missed is kept."""
DECODE_TRAIL_S = 0.3
"""Audio decoded after the speech end of a final, when it has arrived."""
PROMPT_CHARACTERS = 200
"""Most characters of the stream's earlier finals given as the prompt (whisper_streaming's
choice: enough context, little decoding cost)."""


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
    beam_size: int = 5
    """Beam width of finals (partials are greedy), as the batch routes' default."""
    temperatures: tuple[float, ...] = DEFAULT_TEMPERATURES
    """Temperature fallback of finals (partials decode at 0 only)."""
    length_penalty: float = 1.0
    """Beam-search length penalty of finals (faster-whisper's)."""
    repetition_penalty: float = 1.0
    """Penalty on tokens already generated, for finals (faster-whisper's; 1 is none)."""
    max_new_tokens: int | None = None
    """Most tokens a final decodes (None: the model's limit)."""
    context_s: float = CONTEXT_S
    """Most seconds of previous finals' audio decoded again before each final."""
    latency_target_s: float = 0.0
    """Seconds from the end of speech to the final that each final's context is chosen to fit
    (:mod:`whisperd.streaming.budget`); 0: every final gets ``context_s``, whatever the load."""
    logprobs: bool = False
    """Finals carry their tokens' log-probabilities (``Segment.logprobs``; partials do not)."""
    merge_queued_finals: bool = True
    """Finals queued behind the one about to be decoded (the stream's finals come slower than
    its speech) are decoded with it as one window, each utterance keeping the words heard in
    its own stretch: one encoding for several utterances, as the batch route hears them."""
    skip_silent_tails: bool = True
    """A final whose words end within its trailing silence leaves the rest undecoded
    (``DecodeRequest.silent_tail_s``; faster-whisper would decode it as a window of its own)."""
    stable_partials: bool = False
    """Partials may make words stable (LocalAgreement-2, :mod:`whisperd.streaming.stabilizer`):
    stable text comes while the person speaks, but greedy guesses forced into the final cost
    words. False: a partial's words are all unstable, and an utterance's words become stable
    with its final, decoded unforced with the beam, as the batch route decodes them."""


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
    """Seconds of audio decoded (from ``start``), earlier audio heard again as context
    included."""
    transcript: Transcript
    stable: str
    unstable: str
    latency: float
    end_of_audio: bool = False
    own_duration: float | None = None
    """Seconds of the utterance's own audio, without the context (None: all of ``duration``)."""

    @property
    def billed_duration(self) -> float:
        """Seconds the utterance is counted for (OpenAI's ``usage.seconds``, Baseten's
        ``audio_length_sec``): its own audio, not the context heard again."""
        return self.duration if self.own_duration is None else self.own_duration


@dataclass(frozen=True, slots=True)
class Failed:
    """A decode of this stream failed; the stream goes on."""

    number: int
    message: str
    code: str


Event = SpeechStarted | SpeechStopped | Result | Failed


@dataclass(frozen=True, slots=True)
class DecodeRequest:
    """What the decoder is asked: a final (beam, fallback) or a partial (greedy)."""

    final: bool
    prefix: str | None
    """Words to force at the start of the decode: the utterance's stable text."""
    prompt: str | None = None
    """The stream's previous finals (their last characters), to condition the decode on."""
    word_timestamps: bool = False
    """Word timings are needed (to cut a forced context off), whatever the client asked."""
    silent_tail_s: float = 0.0
    """Seconds at the end of the audio after the VAD heard the speech stop (0: not known, as
    after a commit): a final's leftover after its words within it is only trailing silence."""


Decoder = Callable[[np.ndarray[Any, Any], DecodeRequest], Awaitable[Transcript]]
Emit = Callable[[Event], Awaitable[None]]
Vad = Callable[[np.ndarray[Any, Any]], Awaitable[np.ndarray[Any, Any]]]


@dataclass
class _Final:
    number: int
    start: int
    end: int
    cut: bool
    end_of_audio: bool
    stable: str
    silent_from: int | None = None
    """Where the VAD heard the speech stop (None: the final was forced or committed)."""
    queued_at: float = field(default_factory=time.monotonic)

    @property
    def silent_tail_s(self) -> float:
        """Seconds of its audio after the speech stopped (0: not known)."""
        if self.silent_from is None:
            return 0.0
        return max(0, self.end - self.silent_from) / SAMPLE_RATE


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
        self._partial: asyncio.Task[Transcript] | None = None  # the partial decode in flight
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._worker: asyncio.Task[None] | None = None
        self._stability = LocalAgreement()
        self._committed: collections.deque[Committed] = collections.deque(maxlen=64)
        self._next_number = 1
        self._last_final = 0  # number of the latest final sent
        self._cut_pending = False  # an utterance cut at its longest awaits its final
        self._queued_to = 0  # end of the latest final queued (its audio is its own)
        self._open: int | None = None  # number of the utterance in progress
        self._budget = self._new_budget(config)

    @property
    def audio_seconds(self) -> float:
        """Audio received so far."""
        return (self._now + len(self._pending)) / SAMPLE_RATE

    @property
    def number(self) -> int:
        """Number of the utterance in progress, or of the next one (``transcription_num``)."""
        return self._open if self._open is not None else self._next_number

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
        await self._hear(audio)
        self._trim()

    async def _hear(self, audio: np.ndarray[Any, Any]) -> None:
        """Score ``audio`` (already in the buffer) with the VAD, window by window."""
        data = np.concatenate([self._pending, audio.astype(np.float32, copy=False)])
        usable = len(data) // WINDOW * WINDOW
        self._pending = data[usable:]
        if usable:
            probabilities = await self._vad(data[:usable])
            for probability in probabilities:
                await self._window(float(probability))

    async def finalize(self) -> None:
        """Force an endpoint now (Deepgram ``Finalize``, AssemblyAI ``ForceEndpoint``)."""
        if not self.config.vad:
            await self.commit()  # no speech was heard start, so none is heard stop
        elif self._speaking:
            await self._end_speech(self._now)

    async def commit(self) -> None:
        """Finalize everything received (manual turn detection)."""
        self._now += len(self._pending)
        self._pending = np.zeros(0, dtype=np.float32)
        if self._unqueued:
            self._queue_final(self._now)

    @property
    def _unqueued(self) -> bool:
        """Audio arrived after every final queued (and after the last clear)."""
        return self._now > max(self._finalized, self._queued_to)

    def clear(self) -> None:
        """Drop audio not yet finalized."""
        self._finalized = self._utterance = self._now + len(self._pending)
        self._speaking = False
        self._silence_from = None
        self._open = None
        self._stability.reset()
        self._trim()

    async def reconfigure(self, successor: StreamSession) -> None:
        """Endpoint and decode with ``successor``'s settings and decoder from now on, keeping
        this stream's audio, speech in progress, queued finals and VAD state (an OpenAI
        ``session.update`` mid-stream); ``successor`` itself is never started. Turning the
        VAD on hears the audio not yet committed with it, as if it had been on all along."""
        hear_again = not self.config.vad and successor.config.vad and self._unqueued
        self.config = successor.config
        self._decode = successor._decode
        if hear_again:
            uncommitted = max(self._finalized, self._queued_to)
            buffered = self._audio(uncommitted, self._now)
            self._now, self._pending = uncommitted, np.zeros(0, dtype=np.float32)
            await self._hear(buffered)
            self._trim()

    @staticmethod
    def _new_budget(config: StreamConfig) -> ContextBudget | None:
        if config.latency_target_s <= 0:
            return None
        return ContextBudget(config.context_s, target_s=config.latency_target_s)

    def _affordable_context_s(self, own: int, queued_at: float) -> float:
        """Seconds of previous finals' audio a final of ``own`` samples, queued at
        ``queued_at``, hears: ``context_s``, or what fits the latency target."""
        if self._budget is None:
            return self.config.context_s
        waited_s = time.monotonic() - queued_at
        return self._budget.affordable(own / SAMPLE_RATE, waited_s=waited_s)

    async def _decode_final(
        self, audio: np.ndarray[Any, Any], request: DecodeRequest
    ) -> Transcript:
        """One decode of a final, its cost (wall time per second of ``audio``) taken into the
        stream's budget."""
        began = time.monotonic()
        transcript = await self._decode(audio, request)
        if self._budget is not None:
            self._budget.observe(len(audio) / SAMPLE_RATE, time.monotonic() - began)
        return transcript

    @property
    def busy(self) -> bool:
        """True while a decode is queued or running (the stream still owes results)."""
        return not self._idle.is_set()

    async def wait_idle(self) -> None:
        """Return once no decode is queued or running: what was fed so far is decoded."""
        await self._idle.wait()

    async def end_audio(self) -> None:
        """Flush: a last final if speech is open, then wait until every decode is done."""
        self._now += len(self._pending)
        self._pending = np.zeros(0, dtype=np.float32)
        if self._speaking or (not self.config.vad and self._unqueued):
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
            await self._end_speech(self._silence_from + self._pad, silent_from=self._silence_from)
        elif not self._cut_pending and self._now - max(self._utterance, self._finalized) >= (
            self.config.max_utterance_s * SAMPLE_RATE
        ):
            await self._cut_utterance()
        else:
            self._partial_if_due()

    @property
    def _pad(self) -> int:
        return self.config.speech_pad_ms * SAMPLE_RATE // 1000

    @property
    def _lead(self) -> int:
        """Samples decoded before an utterance's start, on top of the client's pad."""
        return max(0, round(DECODE_LEAD_S * SAMPLE_RATE) - self._pad)

    def _open_utterance(self) -> int:
        if self._open is None:
            self._open = self._next_number
            self._next_number += 1
        return self._open

    async def _start_speech(self, start: int) -> None:
        self._speaking = True
        self._silence_from = None
        self._utterance = max(self._finalized, self._queued_to, start - self._pad, self._base)
        self._last_partial = self._utterance
        number = self._open_utterance()
        await self._emit(SpeechStarted(self._utterance / SAMPLE_RATE, number))

    async def _end_speech(self, end: int, *, silent_from: int | None = None) -> None:
        """End the utterance at ``end``; ``silent_from``: where the VAD heard the speech
        stop (None: forced, speech may go on to ``end``)."""
        end = min(end, self._now)
        self._speaking = False
        self._silence_from = None
        await self._emit(SpeechStopped(end / SAMPLE_RATE, self._open_utterance()))
        trail = max(end, min(self._now, end - self._pad + round(DECODE_TRAIL_S * SAMPLE_RATE)))
        self._queue_final(trail, silent_from=silent_from)

    async def _cut_utterance(self) -> None:
        """End the utterance at its longest here; the speech goes on as the next utterance
        (which starts where the cut final's last segment ends, known once it is decoded).
        No other cut is made before that final is decoded."""
        await self._emit(SpeechStopped(self._now / SAMPLE_RATE, self._open_utterance()))
        self._queue_final(self._now, cut=True)
        self._cut_pending = True
        await self._emit(SpeechStarted(self._now / SAMPLE_RATE, self._open_utterance()))

    def _partial_if_due(self) -> None:
        due = self._now - self._last_partial >= self.config.partial_interval_s * SAMPLE_RATE
        if self.config.partials and due and self._partial_due is None and not self._finals:
            self._last_partial = self._now
            self._partial_due = time.monotonic()
            self._idle.clear()
            self._wake.set()

    def _queue_final(
        self,
        end: int,
        *,
        cut: bool = False,
        end_of_audio: bool = False,
        silent_from: int | None = None,
    ) -> None:
        start = self._utterance if self.config.vad else self._finalized
        self._queued_to = max(self._queued_to, end)
        number = self._open_utterance()
        stable = self._stability.prefix
        self._finals.append(_Final(number, start, end, cut, end_of_audio, stable, silent_from))
        self._open = None
        if cut:
            self._open_utterance()  # the rest of the speech goes on as the next utterance
        self._stability.reset()
        self._partial_due = None
        if self._partial is not None:
            self._partial.cancel()  # its words are stale: the final goes first
        self._idle.clear()
        self._wake.set()

    def _trim(self) -> None:
        """Drop audio no decode can need: before every pending final and the open utterance,
        less the lead-in and the context of previous finals."""
        pending = [job.start for job in self._finals]
        if self._speaking or not self.config.vad:
            pending.append(max(self._utterance, self._finalized))
        keep = self._lead + round(self.config.context_s * SAMPLE_RATE)
        drop = min(min(pending, default=self._now) - keep, self._now) - self._base
        if drop > 0:
            self._samples = self._samples[drop:]
            self._base += drop

    def _decode_start(self, start: int) -> int:
        """Where a decode of an utterance starting at ``start`` begins (lead-in included)."""
        return max(start - self._lead, self._finalized, self._base)

    def _audio(self, start: int, end: int) -> np.ndarray[Any, Any]:
        return self._samples[max(start - self._base, 0) : max(end - self._base, 0)]

    def _prompt(self, before: int | None = None) -> str | None:
        """The text of the finals before stream sample ``before`` (all if None), its tail."""
        texts = [c.text for c in self._committed if before is None or c.end <= before]
        return " ".join(texts)[-PROMPT_CHARACTERS:].lstrip() or None

    # -- decode worker ------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._finals or self._partial_due is not None:
                jobs = self._take_finals() if self._finals else []
                owed = [job.number for job in jobs] or [self.number]
                try:
                    await (self._run_finals(jobs) if jobs else self._run_partial())
                except Exception as exc:
                    logger.exception("stream decode failed")
                    for number in owed:
                        if not jobs or number > self._last_final:
                            await self._emit_failure(number, exc)
                if any(job.cut for job in jobs):
                    self._cut_pending = False
            self._idle.set()

    async def _emit_failure(self, number: int, exc: Exception) -> None:
        if isinstance(exc, WhisperdError):
            await self._emit(Failed(number, exc.message, exc.code))
        else:
            await self._emit(Failed(number, "The transcription failed.", "internal_error"))

    async def _run_partial(self) -> None:
        queued, self._partial_due = self._partial_due, None
        number = self._open
        utterance = max(self._utterance, self._finalized)
        start, end = self._decode_start(utterance), self._now
        audio = self._audio(start, end)
        if len(audio) < WINDOW or queued is None or number is None:
            return
        request = DecodeRequest(final=False, prefix=self._stability.prefix or None)
        transcript = await self._overtakable(self._decode(audio, request))
        if transcript is None or self._finals or self._open != number:
            return  # a final overtook this partial
        stable, unstable = self._stable_split(transcript, heard_s=len(audio) / SAMPLE_RATE)
        await self._emit(
            Result(
                number,
                False,
                start / SAMPLE_RATE,
                len(audio) / SAMPLE_RATE,
                transcript,
                stable,
                unstable,
                time.monotonic() - queued,
            )
        )

    async def _overtakable(self, decode: Awaitable[Transcript]) -> Transcript | None:
        """A partial's decode, or None if a final was queued meanwhile (:meth:`_queue_final`
        cancels it: under load a partial waits behind other streams' finals, and this stream's
        final would wait for it). Cancelling the worker itself still cancels it."""
        self._partial = asyncio.ensure_future(decode)
        try:
            return await self._partial
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._partial.cancelled() and (current is None or not current.cancelling()):
                return None
            raise
        finally:
            self._partial = None

    def _stable_split(self, transcript: Transcript, *, heard_s: float) -> tuple[str, str]:
        """A partial's (stable, unstable) text: agreed words are stable only with
        :attr:`StreamConfig.stable_partials`; otherwise the words stable so far (none, unless
        the setting was on earlier in the utterance) and the rest."""
        words = transcript.text.split()
        if self.config.stable_partials:
            return self._stability.update(words, trusted=not doubtful(transcript), heard_s=heard_s)
        committed = self._stability.committed
        tail = words[len(committed) :] if words[: len(committed)] == committed else []
        return self._stability.prefix, " ".join(tail)

    def _take_finals(self) -> list[_Final]:
        """The next final, with the finals queued behind it that one window can hold (none
        cut at the longest utterance, none with stable words to force)."""
        jobs = [self._finals.popleft()]
        limit = round(WINDOW_S * SAMPLE_RATE)
        while self.config.merge_queued_finals and self._finals:
            following = self._finals[0]
            mergeable = not (jobs[-1].cut or following.cut or jobs[-1].stable or following.stable)
            if not mergeable or following.end - self._decode_start(jobs[0].start) > limit:
                break
            jobs.append(self._finals.popleft())
        return jobs

    async def _run_finals(self, jobs: list[_Final]) -> None:
        start = self._decode_start(max(jobs[0].start, self._finalized))
        if len(jobs) == 1 or jobs[0].end <= start:
            for job in jobs:
                await self._run_final(job)
            return
        context = choose_context(
            self._committed,
            utterance_start=start,
            utterance_end=jobs[-1].end,
            kept_from=self._base,
            context_s=self._affordable_context_s(jobs[-1].end - start, jobs[0].queued_at),
        )
        begin = start if context is None else context.start
        transcript = await self._decode_final(
            self._audio(begin, jobs[-1].end),
            DecodeRequest(
                final=True,
                prefix=None,
                prompt=self._prompt(before=begin),
                word_timestamps=True,
                silent_tail_s=jobs[-1].silent_tail_s,
            ),
        )
        starts = [start] + [(a.end + b.start) // 2 for a, b in itertools.pairwise(jobs)]
        ends_s = [(cut - begin) / SAMPLE_RATE for cut in starts[1:]] + [math.inf]
        try:
            parts = [
                words_between(
                    transcript,
                    (low - begin) / SAMPLE_RATE,
                    high_s,
                    keep_words=self.config.word_timestamps,
                )
                for low, high_s in zip(starts, ends_s, strict=True)
            ]
        except ValueError:  # a decoder without word timings: each heard on its own
            for job in jobs:
                await self._run_final(job)
            return
        for job, low, part in zip(jobs, starts, parts, strict=True):
            await self._commit_final(job, part, begin, utterance=low, consumed=job.end)

    async def _run_final(self, job: _Final) -> None:
        utterance = self._decode_start(max(job.start, self._finalized))
        if job.end <= utterance:
            # Its audio went into an earlier final (a cut): it still gets its (empty) final.
            empty = Transcript((), self.config.language or "", 0.0, 0.0)
            self._last_final = job.number
            await self._emit(
                Result(
                    job.number,
                    True,
                    utterance / SAMPLE_RATE,
                    0.0,
                    empty,
                    "",
                    "",
                    0.0,
                    job.end_of_audio,
                )
            )
            return
        context = choose_context(
            self._committed,
            utterance_start=utterance,
            utterance_end=job.end,
            kept_from=self._base,
            context_s=self._affordable_context_s(job.end - utterance, job.queued_at),
        )
        start, transcript = await self._final_decode(job, utterance, context)
        if context is not None and not transcript.text:
            # The decoder sometimes ends right after a forced context: hear the utterance alone.
            start, transcript = await self._final_decode(job, utterance, None)
        transcript, consumed = self._cut(job, transcript, start)
        await self._commit_final(job, transcript, start, utterance=utterance, consumed=consumed)

    async def _commit_final(
        self, job: _Final, transcript: Transcript, start: int, *, utterance: int, consumed: int
    ) -> None:
        """Send ``job``'s final: ``transcript`` of the audio decoded from stream sample
        ``start``, for the utterance from ``utterance`` to ``consumed``."""
        self._finalized = max(self._finalized, consumed)
        self._last_partial = max(self._last_partial, self._finalized)
        self._committed.append(Committed(utterance, consumed, transcript.text))
        latency = time.monotonic() - job.queued_at
        self._last_final = job.number
        await self._emit(
            Result(
                job.number,
                True,
                start / SAMPLE_RATE,
                (consumed - start) / SAMPLE_RATE,
                transcript,
                transcript.text,
                "",
                latency,
                job.end_of_audio,
                own_duration=(consumed - utterance) / SAMPLE_RATE,
            )
        )

    async def _final_decode(
        self, job: _Final, utterance: int, context: Context | None
    ) -> tuple[int, Transcript]:
        """Decode a final from ``utterance``, or from its context's start: unforced when the
        utterance has no stable words (the context's words are decoded again and cut off by
        time), else with the context's and the stable words forced (the context's cut off by
        text); returns where the decode began and its transcript."""
        start = utterance if context is None else context.start
        if context is not None and not job.stable:
            try:
                return start, await self._heard_in_context(job, utterance, start)
            except ValueError:  # a decoder without word timings: hear the utterance alone
                return await self._final_decode(job, utterance, None)
        prefix = " ".join(p for p in (context and context.text, job.stable) if p)
        transcript = await self._decode_final(
            self._audio(start, job.end),
            DecodeRequest(
                final=True,
                prefix=prefix or None,
                prompt=self._prompt(before=start),
                word_timestamps=context is not None,
                silent_tail_s=job.silent_tail_s,
            ),
        )
        if context is None:
            return start, transcript
        try:
            kept = drop_leading_text(
                transcript, context.text, keep_words=self.config.word_timestamps
            )
        except ValueError:  # a decoder without word timings: hear the utterance alone
            return await self._final_decode(job, utterance, None)
        return start, kept

    async def _heard_in_context(self, job: _Final, utterance: int, start: int) -> Transcript:
        """Decode the audio from ``start`` (the context's) to the utterance's end as the batch
        route would, unforced, and keep the words heard after ``utterance`` began."""
        transcript = await self._decode_final(
            self._audio(start, job.end),
            DecodeRequest(
                final=True,
                prefix=None,
                prompt=self._prompt(before=start),
                word_timestamps=True,
                silent_tail_s=job.silent_tail_s,
            ),
        )
        keep_words = self.config.word_timestamps
        return drop_before(transcript, (utterance - start) / SAMPLE_RATE, keep_words=keep_words)

    @staticmethod
    def _cut(job: _Final, transcript: Transcript, start: int) -> tuple[Transcript, int]:
        """A cut utterance keeps all but its last segment (carried on), unless that would drop
        stable words; returns the transcript kept and the stream sample consumed."""
        if not job.cut or len(transcript.segments) < 2:
            return transcript, job.end
        kept, rest = transcript.segments[:-1], transcript.segments[-1]
        if len("".join(s.text for s in kept).split()) < len(job.stable.split()):
            return transcript, job.end
        return dataclasses.replace(transcript, segments=kept), start + int(rest.start * SAMPLE_RATE)

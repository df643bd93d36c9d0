"""A fake engine: deterministic transcripts computed from the audio's length, without a model.

Tests of what surrounds the model (HTTP status codes, envelopes, headers, form parsing, SSE and
WebSocket framing, admission) need an engine that keeps the :class:`~whisperd.engine.base.Engine`
contract, not one that decodes speech. :class:`FakeEngine` cuts the audio into windows of
``chunk_length`` seconds (Whisper's 30 by default) and gives each window one segment whose
words are spread evenly over it, at :data:`WORDS_PER_SECOND`: the text depends on nothing but
the audio's length and the options. It honours the options a caller can see in the result
(task, language, word timestamps, timestamps or not), stops between windows when cancelled,
calls ``on_segment`` with each segment, and refuses what an English-only model refuses.
:func:`fake_loader` builds it wherever the service loads models, so model names still resolve
as they do for real engines. The real scripted models stay for tests where the transcript or
parity with faster-whisper matters.
"""

from __future__ import annotations

import json
import math
import threading
from typing import TYPE_CHECKING

from whisperd.engine.base import (
    SAMPLE_RATE,
    ModelInfo,
    Segment,
    Transcript,
    Word,
    check_english_only,
)
from whisperd.engine.detection import LanguageDetection, LanguageProbability, restrict
from whisperd.errors import CancelledError, TranscriptionError
from whisperd.languages import LANGUAGES
from whisperd.scheduler.batcher import Priority

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from whisperd.engine.base import SegmentCallback
    from whisperd.engine.hub import ResolvedModel
    from whisperd.engine.manager import Loader
    from whisperd.engine.options import TranscribeOptions

WINDOW_SECONDS = 30
"""Window length when the options give no ``chunk_length`` (Whisper's)."""
WORDS_PER_SECOND = 2.5
"""Words per second of audio, about the rate of speech."""
WORDS = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")
"""The words of a transcript decoded with timestamps, in turn."""
PLAIN_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")
"""The words of a transcript decoded without timestamps (as the scripted test models do, so a
test can tell which decoding a server asked for)."""

LANGUAGE_SHARES = (0.6, 0.2, 0.1)
"""Probabilities the fake gives the first languages of its model (English, Chinese, German
on a multilingual one), in order; the rest share what is left equally."""

_TIME_STEP = 0.02
"""Whisper's timestamp resolution; every time the fake gives is a multiple of it."""
_FRAMES_PER_SECOND = 100
"""Mel frames per second (Whisper's 10 ms hop), the unit of a segment's ``seek``."""
_FIRST_WORD_TOKEN = 1000
_TIMESTAMP_BEGIN = 50364
"""Token id of ``<|0.00|>`` in a multilingual Whisper vocabulary."""


def _steps(seconds: float) -> float:
    """``seconds`` rounded down to Whisper's timestamp resolution."""
    return round(math.floor(round(seconds / _TIME_STEP, 6)) * _TIME_STEP, 2)


class FakeEngine:
    """An engine that transcribes by the clock of the audio alone. Thread-safe.

    ``gate``, when given, holds every window after the first until it is set (for tests of
    work in progress: a request that stays on the model, a stream of segments that has begun
    and not ended); a gate left closed for ``gate_timeout_s`` fails the transcription instead
    of hanging the test. Cancellation is seen when a window is let through.
    """

    def __init__(
        self,
        info: ModelInfo | None = None,
        *,
        gate: threading.Event | None = None,
        gate_timeout_s: float = 60.0,
    ) -> None:
        """Pretend to be the model ``info`` describes (by default a multilingual ``fake``)."""
        self._info = info or ModelInfo(
            name="fake",
            path="",
            multilingual=True,
            languages=tuple(LANGUAGES),
            device="cpu",
            compute_type="int8",
            extra={"engine": "fake"},
        )
        self._gate = gate
        self._gate_timeout_s = gate_timeout_s
        self.closed = False

    @property
    def info(self) -> ModelInfo:
        """What this model is and can do."""
        return self._info

    def check(self, options: TranscribeOptions) -> None:
        """Refuse what an English-only model refuses, naming the option as real engines do.

        Raises:
            InvalidOptionError: on translation, multilingual decoding or a non-English
                language asked of an English-only model.
        """
        if self._info.multilingual:
            return
        check_english_only(self._info.name, options)

    def transcribe(
        self,
        audio: npt.NDArray[np.float32],
        options: TranscribeOptions,
        on_segment: SegmentCallback | None = None,
        *,
        priority: Priority = Priority.INTERACTIVE,
        cancel: threading.Event | None = None,
    ) -> Transcript:
        """One segment per window of ``options.chunk_length`` seconds (30 by default).

        ``priority`` is accepted for the contract and has no effect (there is no scheduler).

        Raises:
            InvalidOptionError: if the options do not suit this model.
            TranscriptionError: if the engine is closed, or its gate stayed closed too long.
            CancelledError: if ``cancel`` was set before the last window.
        """
        self.check(options)
        if self.closed:
            raise TranscriptionError("The fake engine is closed.")
        duration = len(audio) / SAMPLE_RATE
        window = options.chunk_length or WINDOW_SECONDS
        segments: list[Segment] = []
        for index in range(math.ceil(duration / window)):
            if index:
                self._wait_at_gate()
            if cancel is not None and cancel.is_set():
                raise CancelledError("The request was cancelled; its remaining audio was skipped.")
            start, end = _steps(index * window), _steps(min((index + 1) * window, duration))
            if end <= start:
                continue
            segment = self._segment(len(segments), start, end, options)
            segments.append(segment)
            if on_segment is not None:
                on_segment(segment)
        detected = self._detect(duration, options)
        return Transcript(
            segments=tuple(segments),
            language=options.language or detected.language,
            language_probability=1.0 if options.language else detected.probability,
            duration=duration,
            task=options.task,
            duration_after_vad=duration,
            model=self._info.name,
        )

    def detect_language(
        self,
        audio: npt.NDArray[np.float32],
        options: TranscribeOptions,
        *,
        priority: Priority = Priority.INTERACTIVE,
        cancel: threading.Event | None = None,
    ) -> LanguageDetection:
        """The fake's fixed ranking of its languages (:data:`LANGUAGE_SHARES`), restricted to
        ``options.languages`` when given; English with probability 1 on an English-only model.

        Raises:
            InvalidOptionError: if the options do not suit this model.
            TranscriptionError: if the engine is closed.
            CancelledError: if ``cancel`` was set.
        """
        self.check(options)
        if self.closed:
            raise TranscriptionError("The fake engine is closed.")
        if cancel is not None and cancel.is_set():
            raise CancelledError("The request was cancelled.")
        return self._detect(len(audio) / SAMPLE_RATE, options)

    def _detect(self, duration: float, options: TranscribeOptions) -> LanguageDetection:
        name = self._info.name
        if not self._info.multilingual:
            return LanguageDetection.certain("en", duration=duration, model=name)
        languages = self._info.languages
        rest = (1.0 - sum(LANGUAGE_SHARES)) / max(len(languages) - len(LANGUAGE_SHARES), 1)
        ranking = [
            (code, LANGUAGE_SHARES[i] if i < len(LANGUAGE_SHARES) else rest)
            for i, code in enumerate(languages)
        ]
        if options.languages:
            ranking = restrict(ranking, options.languages) or ranking
        language, probability = ranking[0]
        candidates = tuple(LanguageProbability(code, p) for code, p in ranking)
        return LanguageDetection(language, probability, candidates, duration, name)

    def _wait_at_gate(self) -> None:
        if self._gate is not None and not self._gate.wait(self._gate_timeout_s):
            raise TranscriptionError(
                f"The fake engine's gate stayed closed for {self._gate_timeout_s:g} s."
            )

    def _segment(
        self, number: int, start: float, end: float, options: TranscribeOptions
    ) -> Segment:
        first = round(start * WORDS_PER_SECOND)
        count = max(1, round(end * WORDS_PER_SECOND) - first)
        plain = options.without_timestamps
        vocabulary = PLAIN_WORDS if plain else WORDS
        indices = [(first + i) % len(vocabulary) for i in range(count)]
        first_token = _FIRST_WORD_TOKEN + (len(WORDS) if plain else 0)
        tokens = tuple(first_token + i for i in indices)
        if not plain:
            tokens = (_timestamp_token(0.0), *tokens, _timestamp_token(end - start))
        words = None
        if options.word_timestamps:
            bounds = [_steps(start + (end - start) * i / count) for i in range(count)] + [end]
            words = tuple(
                Word(bounds[i], bounds[i + 1], " " + vocabulary[index], 0.9)
                for i, index in enumerate(indices)
            )
        return Segment(
            id=number,
            seek=round(start * _FRAMES_PER_SECOND),
            start=start,
            end=end,
            text="".join(" " + vocabulary[i] for i in indices),
            tokens=tokens,
            temperature=options.temperature[0],
            avg_logprob=-0.2,
            compression_ratio=1.2,
            no_speech_prob=0.01,
            words=words,
        )

    def close(self) -> None:
        """Refuse further work (there is no memory to release)."""
        self.closed = True


def _timestamp_token(seconds: float) -> int:
    return _TIMESTAMP_BEGIN + round(seconds / _TIME_STEP)


def fake_info(model: ResolvedModel, device: str, compute_type: str) -> ModelInfo:
    """What a real engine would say about ``model``: a known model's table entry decides
    whether it is English-only; a local CTranslate2 directory, its vocabulary (multilingual
    ones hold the empty token, as CTranslate2 checks)."""
    multilingual = _multilingual(model)
    if device == "auto":
        device = "cpu"
    if compute_type in ("auto", "default"):
        compute_type = "float16" if device == "cuda" else "int8"
    return ModelInfo(
        name=model.name,
        path=str(model.path),
        multilingual=multilingual,
        languages=tuple(LANGUAGES) if multilingual else ("en",),
        device=device,
        compute_type=compute_type,
        extra={"engine": "fake"},
    )


def _multilingual(model: ResolvedModel) -> bool:
    if model.known is not None:
        return not model.known.english_only
    vocabulary = model.path / "vocabulary.json"
    if vocabulary.is_file():
        return "" in json.loads(vocabulary.read_text(encoding="utf-8"))
    return True


def fake_loader(*, gate: threading.Event | None = None, gate_timeout_s: float = 60.0) -> Loader:
    """A loader for :class:`~whisperd.engine.manager.ModelManager` (and so for
    ``TranscriptionService.create(settings, loader=...)``) that builds fake engines; every
    engine it builds shares ``gate``."""

    def load(model: ResolvedModel, device: str, compute_type: str) -> FakeEngine:
        return FakeEngine(
            fake_info(model, device, compute_type), gate=gate, gate_timeout_s=gate_timeout_s
        )

    return load

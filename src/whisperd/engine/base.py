"""The engine contract: result types and the :class:`Engine` protocol every engine implements.

Engines are synchronous and blocking; callers run them on the scheduler's executor, never on
the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from whisperd.errors import InvalidOptionError

if TYPE_CHECKING:
    import threading

    import numpy as np
    import numpy.typing as npt

    from whisperd.engine.detection import LanguageDetection
    from whisperd.engine.options import TranscribeOptions
    from whisperd.scheduler.batcher import Priority

SAMPLE_RATE = 16_000
"""Every engine takes 16 kHz mono float32 audio."""


@dataclass(frozen=True, slots=True)
class Word:
    """One word with its timing, as word-level alignment gives it (leading space kept)."""

    start: float
    end: float
    word: str
    probability: float
    speaker: str | None = None
    """Who said it, when diarization is on (a known speaker's name, ``A``, ``B``, ..., or a
    channel's label)."""


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One text token and its log-probability, as OpenAI's ``logprobs`` entries have them."""

    token: str
    """The token's text (bytes that are part of a longer UTF-8 character show as U+FFFD)."""
    logprob: float
    """Natural log of the token's probability (at most 0)."""
    bytes: tuple[int, ...]
    """The token's UTF-8 bytes."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One decoded segment, with the fields of OpenAI's verbose_json segment plus words."""

    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: tuple[int, ...]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: tuple[Word, ...] | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None
    """Each text token's log-probability, when asked for (``TranscribeOptions.logprobs``;
    :mod:`whisperd.engine.token_logprobs` says what the number is)."""
    speaker: str | None = None
    """Who said the segment, when diarization is on (a segment is one speaker's)."""


@dataclass(frozen=True, slots=True)
class Transcript:
    """The result of one transcription."""

    segments: tuple[Segment, ...]
    language: str
    """ISO code of the detected (or given) language."""
    language_probability: float
    duration: float
    """Duration of the input audio in seconds."""
    task: str = "transcribe"
    duration_after_vad: float | None = None
    model: str = ""
    """Name of the model that produced the transcript."""

    @property
    def text(self) -> str:
        """The full transcript: segment texts joined and trimmed."""
        return "".join(segment.text for segment in self.segments).strip()

    @property
    def words(self) -> tuple[Word, ...]:
        """Every word of every segment, in order (empty without word timestamps)."""
        return tuple(word for segment in self.segments for word in segment.words or ())

    @property
    def logprobs(self) -> tuple[TokenLogprob, ...]:
        """Every text token's log-probability, in order (empty when not asked for)."""
        return tuple(entry for segment in self.segments for entry in segment.logprobs or ())


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What a loaded model is and can do."""

    name: str
    """The name the model was asked for (e.g. ``large-v3-turbo`` or a directory)."""
    path: str
    """Local directory the weights were loaded from."""
    multilingual: bool
    languages: tuple[str, ...]
    device: str
    compute_type: str
    n_mels: int = 80
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def supports_translation(self) -> bool:
        """Only multilingual models can translate."""
        return self.multilingual


def check_english_only(name: str, options: TranscribeOptions) -> None:
    """Refuse what the English-only model ``name`` cannot do.

    Raises:
        InvalidOptionError: on translation, a language other than English, multilingual
            decoding, or candidate languages without English (``languages[]``, OpenAI's
            spelling of the only field that carries them), naming the field at fault.
    """
    if options.task == "translate":
        raise InvalidOptionError(
            f"Model {name!r} is English-only and cannot translate; use a multilingual "
            "model such as large-v3 or small.",
            param="task",
        )
    if options.language not in (None, "en"):
        raise InvalidOptionError(
            f"Model {name!r} is English-only; language {options.language!r} is not supported.",
            param="language",
        )
    if options.multilingual:
        raise InvalidOptionError(
            f"Model {name!r} is English-only; multilingual decoding needs a multilingual model.",
            param="multilingual",
        )
    if options.languages and options.language is None and "en" not in options.languages:
        raise InvalidOptionError(
            f"Model {name!r} is English-only; none of the candidate languages "
            f"{', '.join(options.languages)} is English.",
            param="languages[]",
        )


SegmentCallback = Callable[[Segment], None]
"""Called with each segment as soon as it is decoded (progress, streaming)."""


class Engine(Protocol):
    """A loaded speech-to-text model."""

    @property
    def info(self) -> ModelInfo:
        """What this model is and can do."""
        ...

    def check(self, options: TranscribeOptions) -> None:
        """Refuse options this model cannot honour (e.g. translation on an English-only model).

        Raises:
            InvalidOptionError: naming the option at fault.
        """
        ...

    def transcribe(
        self,
        audio: npt.NDArray[np.float32],
        options: TranscribeOptions,
        on_segment: SegmentCallback | None = None,
        *,
        priority: Priority = ...,
        cancel: threading.Event | None = None,
    ) -> Transcript:
        """Transcribe 16 kHz mono float32 audio. Blocking; run it on a request thread.

        Every model call goes through the engine's scheduler at ``priority``; setting
        ``cancel`` drops the remaining windows.

        Raises:
            InvalidOptionError: if the options do not suit this model.
            TranscriptionError: if decoding fails.
            CancelledError: if ``cancel`` was set before the last window.
        """
        ...

    def detect_language(
        self,
        audio: npt.NDArray[np.float32],
        options: TranscribeOptions,
        *,
        priority: Priority = ...,
        cancel: threading.Event | None = None,
    ) -> LanguageDetection:
        """Detect the spoken language of 16 kHz mono float32 audio. Blocking.

        One encoder pass per window considered (``options.language_detection_segments``,
        after VAD when ``options.vad_filter``), through the engine's scheduler at
        ``priority``; only ``options.languages`` are considered when given. An English-only
        model answers English with probability 1 without a model call.

        Raises:
            InvalidOptionError: if the options do not suit this model.
            TranscriptionError: if the model call fails.
            CancelledError: if ``cancel`` was set before it ran.
        """
        ...

    def close(self) -> None:
        """Release the model's memory."""
        ...

"""Decoding options: every control Whisper has, validated with the ranges users are told.

One :class:`TranscribeOptions` value travels from every entry point (CLI flags, HTTP form fields,
stream metadata) to the engine. Strings as HTTP forms send them (``"0,0.2,0.4"``,
``"-1"``, ``"0.5,12.3"``, a JSON object for ``vad_parameters``) are parsed here, so every API
accepts the same spellings and reports the same errors.

Every number must be finite: ``inf``, ``-inf``, ``nan`` and values that overflow to infinity
(``1e309``), alone or in a list, fail validation at the field ("Input should be a finite
number", pydantic's ``allow_inf_nan=False``), as the decoder cannot use them (faster-whisper
turns ``clip_timestamps=inf`` into an ``OverflowError``).
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from whisperd.languages import language_or_detect, normalize_language

Task = Literal["transcribe", "translate"]

DEFAULT_TEMPERATURES: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)

MAX_TIME_S = 10_000_000
"""Largest time, in seconds, an option may name (about 116 days: past the end of any audio a
server takes). A larger one means nothing more, and near ``1e306`` it overflows the decoder's
frame arithmetic (faster-whisper rounds ``seconds * 100`` to an int)."""
MAX_TIME_MS = MAX_TIME_S * 1000
""":data:`MAX_TIME_S` in milliseconds, the bound of the VAD's durations (Silero's arithmetic
turns them into sample counts through floats)."""
MAX_TOKEN_ID = 2**31 - 1
"""Largest token id accepted (CTranslate2 takes 32-bit ids; Whisper's are below 51866)."""

WINDOW_S = 30
"""Seconds of audio in one Whisper window (``chunk_length`` unless set)."""

DEFAULT_BATCH_SIZE = 8
"""VAD chunks per model call when ``batch_size`` is unset and the engine says nothing
(faster-whisper's batched pipeline is documented with 8 to 16)."""

DEFAULT_PREPEND_PUNCTUATIONS = "\"'“¿([{-"
DEFAULT_APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"


def _split_csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class VadParameters(BaseModel):
    """Silero VAD settings (faster-whisper's ``VadOptions``)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False
    )

    threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    """Speech probability above which a frame counts as speech."""
    neg_threshold: Annotated[float | None, Field(ge=0.0, le=1.0)] = None
    """Probability below which speech ends (default: threshold - 0.15)."""
    min_speech_duration_ms: Annotated[int, Field(ge=0, le=MAX_TIME_MS)] = 0
    """Speech chunks shorter than this are dropped."""
    max_speech_duration_s: Annotated[float, Field(gt=0.0)] = math.inf
    """Speech chunks longer than this are split; leave it out for no limit (a number sent must
    be finite)."""
    min_silence_duration_ms: Annotated[int, Field(ge=0, le=MAX_TIME_MS)] = 2000
    """Silence needed to end a speech chunk."""
    speech_pad_ms: Annotated[int, Field(ge=0, le=MAX_TIME_MS)] = 400
    """Padding added on each side of a speech chunk."""


class TranscribeOptions(BaseModel):
    """Every decoding control of a transcription, with seed-documented ranges and defaults."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False
    )

    language: str | None = None
    """ISO 639-1 code (or English name) of the spoken language; None detects it."""
    languages: tuple[str, ...] = ()
    """Candidate languages (OpenAI's ``languages[]``): detection picks the most probable of
    these, its probability renormalised among them. Empty: any language. Ignored when
    ``language`` is given."""
    task: Task = "transcribe"
    """``transcribe`` keeps the spoken language; ``translate`` translates to English."""
    beam_size: Annotated[int, Field(ge=1, le=32)] = 5
    """Beam search width, used when the temperature is 0."""
    best_of: Annotated[int, Field(ge=1, le=32)] = 5
    """Candidates sampled when the temperature is above 0."""
    patience: Annotated[float, Field(gt=0.0, le=10.0)] = 1.0
    """Beam search patience factor."""
    length_penalty: Annotated[float, Field(ge=-10.0, le=10.0)] = 1.0
    """Exponential length penalty."""
    repetition_penalty: Annotated[float, Field(ge=0.1, le=5.0)] = 1.0
    """Penalty on already generated tokens (>1 discourages repetition)."""
    no_repeat_ngram_size: Annotated[int, Field(ge=0, le=20)] = 0
    """Forbid repeating n-grams of this size (0 disables)."""
    temperature: tuple[Annotated[float, Field(ge=0.0, le=1.0)], ...] = DEFAULT_TEMPERATURES
    """Temperature fallback ladder; the next one is tried when a window fails the thresholds."""
    compression_ratio_threshold: Annotated[float | None, Field(gt=0.0)] = 2.4
    """A window whose gzip compression ratio is above this is retried."""
    log_prob_threshold: float | None = -1.0
    """A window whose average log-probability is below this is retried."""
    no_speech_threshold: Annotated[float | None, Field(ge=0.0, le=1.0)] = 0.6
    """A window is silent when no-speech probability is above this and log-prob is low."""
    condition_on_previous_text: bool | None = None
    """Prompt each window with the text of the previous ones. Unset: on in sequential decoding
    (faster-whisper's default), off in batched decoding, which has no previous text; set to
    true, decoding is sequential."""
    prompt_reset_on_temperature: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    """Drop the previous-text prompt after a fallback to at least this temperature."""
    initial_prompt: str | None = None
    """Text that guides vocabulary and style of the first window."""
    prefix: str | None = None
    """Text the first window's transcript starts with."""
    suppress_blank: bool = True
    """Suppress blank outputs at the start of sampling."""
    suppress_tokens: tuple[Annotated[int, Field(ge=-1, le=MAX_TOKEN_ID)], ...] = (-1,)
    """Token ids never generated; -1 stands for the model's default non-speech set."""
    without_timestamps: bool = False
    """Decode without timestamp tokens and time no segments: one segment per window
    (sequential) or per VAD chunk (batched)."""
    segment_timestamps: bool = True
    """Whether the output needs segment times. Off (OpenAI's ``json`` and ``text`` formats,
    which show none), batched decoding skips its word-alignment pass and gives one segment per
    VAD chunk; sequential decoding is unchanged."""
    word_timestamps: bool = False
    """Compute word-level timings from cross-attention alignment."""
    prepend_punctuations: str = DEFAULT_PREPEND_PUNCTUATIONS
    """Punctuation merged into the following word (word timestamps)."""
    append_punctuations: str = DEFAULT_APPEND_PUNCTUATIONS
    """Punctuation merged into the preceding word (word timestamps)."""
    max_initial_timestamp: Annotated[float, Field(ge=0.0, le=30.0)] = 1.0
    """Latest time, in seconds, the first timestamp of a window may take."""
    multilingual: bool = False
    """Detect the language of every segment, allowing language switches."""
    vad_filter: bool = True
    """Remove non-speech with Silero VAD before decoding."""
    vad_parameters: VadParameters | None = None
    """VAD settings; None uses the defaults."""
    max_new_tokens: Annotated[int | None, Field(ge=1, le=448)] = None
    """Cap on tokens decoded per window, 1-448. A window's prompt shares Whisper's 448-token
    context with its transcript, so a cap that does not fit is lowered to 448 minus the
    prompt's fixed part: the start-of-transcript tokens (3 on multilingual models, 1 on
    English-only ones), ``<|notimestamps|>`` without timestamps, and the prefix; the previous
    text's prompt is shortened to leave the decoder its cap (as openai/whisper stops when the
    context is full)."""
    chunk_length: Annotated[int | None, Field(ge=1, le=30)] = None
    """Window length in seconds (default 30)."""
    clip_timestamps: tuple[Annotated[float, Field(ge=0.0, le=MAX_TIME_S)], ...] = (0.0,)
    """Start/end pairs in seconds of the parts to decode; a lone start runs to the end.
    Anything but the default ``0`` turns VAD off."""
    min_tail_window_s: Annotated[float, Field(ge=0.0, le=30.0)] = 0.0
    """Sequential decoding: the audio's leftover after a window's last timestamp (with word
    timestamps, its last word) is not decoded when shorter than this many seconds. 0 decodes
    every leftover, as faster-whisper does; a leftover is its own padded 30 s window, so a
    clip whose words end before its audio costs two windows (whisperd.engine.tail_windows).
    Not with ``clip_timestamps``."""
    hallucination_silence_threshold: Annotated[float | None, Field(gt=0.0)] = None
    """Skip silences longer than this around suspected hallucinations (word timestamps)."""
    hotwords: str | None = None
    """Words to bias decoding toward (ignored when a prefix is given)."""
    language_detection_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    """Probability that ends language detection early."""
    language_detection_segments: Annotated[int, Field(ge=1, le=20)] = 1
    """Windows considered for language detection."""
    include_tokens: bool = False
    """Include raw token ids in the output."""
    logprobs: bool = False
    """Give each segment its text tokens' log-probabilities (from the word-alignment pass, so
    word timestamps are computed too): the json output carries them. OpenAI's
    ``include[]=logprobs`` sets it."""
    encoder_context: Literal["window", "audio"] = "window"
    """``window`` encodes every window padded to 30 s, as Whisper was trained (faster-whisper's
    words exactly). ``audio`` encodes only the audio's own length (rounded up to a second) and
    completes the encoder's output to a whole window with the encoder's output for padding
    alone (whisperd.engine.window_padding): a 5 s clip's encoding costs about a twentieth of
    the window's on a CPU. On short utterances with real models it keeps the words (stream
    finals lost fewer words than with ``window`` on real speech, docs/benchmarks.md). A window
    of under 2 s of audio after a decode (a leftover after the last word) is encoded whole:
    completed, it was heard as a repeat of the text before it. With
    ``condition_on_previous_text`` such a leftover can still be heard as the sentence just
    decoded (tiny.en did on one CPU and not on another), as can happen with ``window``:
    ``min_tail_window_s`` leaves short leftovers undecoded, as streams do."""
    batch_size: Annotated[int | None, Field(ge=1, le=128)] = None
    """VAD chunks decoded side by side: the audio is cut at VAD pauses into chunks of up to
    30 s, decoded in batches of this size without previous text, each with the temperature
    fallback, and cut into sentence segments timed by word alignment (whisperd.engine.batched).
    1: sequential, window after window, as faster-whisper's transcribe. Unset: as many chunks
    as the engine merges into one model call (WHISPERD_MAX_BATCH_SIZE; 2 on a CPU, where a
    bigger call is no faster but makes other requests wait longer), unless an option only
    sequential decoding honours is set (chunk_batch_size)."""

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: object) -> object:
        if isinstance(value, str):
            return None if value.strip() == "auto" else language_or_detect(value)
        return value

    @field_validator("languages", mode="before")
    @classmethod
    def _languages(cls, value: object) -> object:
        items = _split_csv(value) if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            return items
        codes: list[str] = []
        for item in items:
            code = normalize_language(item) if isinstance(item, str) else item
            if code not in codes:
                codes.append(code)
        return tuple(codes)

    @field_validator("temperature", mode="before")
    @classmethod
    def _temperature(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(float(part) for part in _split_csv(value))
        if isinstance(value, int | float):
            return (float(value),)
        return value

    @field_validator("suppress_tokens", mode="before")
    @classmethod
    def _suppress_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(int(part) for part in _split_csv(value))
        return value

    @field_validator("clip_timestamps", mode="before")
    @classmethod
    def _clip_timestamps(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(float(part) for part in _split_csv(value)) or (0.0,)
        return value

    @field_validator("vad_parameters", mode="before")
    @classmethod
    def _vad_parameters(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return None
            try:
                parsed: Any = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"vad_parameters must be a JSON object: {exc.msg}") from None
            return parsed
        return value

    @field_validator("temperature")
    @classmethod
    def _temperature_not_empty(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value:
            raise ValueError("at least one temperature is needed")
        return value

    @field_validator("clip_timestamps")
    @classmethod
    def _clip_ordered(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if list(value) != sorted(value):
            raise ValueError("clip_timestamps must be in increasing order")
        return value

    @field_validator("min_tail_window_s")
    @classmethod
    def _tail_without_clips(cls, value: float, info: ValidationInfo) -> float:
        if value > 0 and info.data.get("clip_timestamps", (0.0,)) != (0.0,):
            raise ValueError(
                "min_tail_window_s cannot be combined with clip_timestamps: a short window "
                "may end a clip rather than the audio; leave one of them out"
            )
        return value

    def sequential_only(self) -> tuple[str, ...]:
        """The options set here that only sequential decoding honours (batched decoding cuts
        the audio at VAD pauses and decodes each chunk on its own)."""
        asked = {
            "clip_timestamps": self.clip_timestamps != (0.0,),
            "condition_on_previous_text": bool(self.condition_on_previous_text),
            "prefix": bool(self.prefix),
            "hallucination_silence_threshold": self.hallucination_silence_threshold is not None,
            "min_tail_window_s": self.min_tail_window_s > 0,
        }
        return tuple(name for name, given in asked.items() if given)

    def chunk_batch_size(
        self, default: int = DEFAULT_BATCH_SIZE, duration_s: float | None = None
    ) -> int:
        """VAD chunks per model call: ``batch_size`` when set, else ``default`` (the engine's
        windows per model call, at least 2) unless VAD is off, an option only sequential
        decoding honours is set (:meth:`sequential_only`), or the audio (``duration_s``, when
        known) fits one window of ``chunk_length`` (30 s), which make it 1.

        A single window has no other chunk to decode beside it, and sequential decoding,
        with timestamp tokens, seeks past its last timestamp when the text stops early; the
        batched path would need an alignment pass to find that out
        (:class:`~whisperd.engine.batched.BatchedPipeline`).
        """
        if self.batch_size is not None:
            return self.batch_size
        if not self.vad_filter or self.sequential_only():
            return 1
        if duration_s is not None and duration_s <= (self.chunk_length or WINDOW_S):
            return 1
        return max(2, default)

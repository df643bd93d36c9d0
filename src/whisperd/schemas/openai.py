"""Wire models of the OpenAI-compatible audio API: requests, responses, stream events, errors.

Requests arrive as multipart forms the way OpenAI's SDKs send them: array fields with a ``[]``
suffix, objects bracket-flattened, booleans as ``"true"``/``"false"``; the other spellings of
arrays and objects are read too (:mod:`whisperd.schemas.form_fields`). On top of OpenAI's
fields, every decoding control of :class:`~whisperd.engine.options.TranscribeOptions` is
accepted as a form field, and audio may be given as a URL (``file`` or ``audio_url``) or as
``audio_base64``.

What happens to each field OpenAI documents (``CreateTranscriptionRequest``):

- honoured: ``file``, ``model``, ``language`` (BCP 47 tags too), ``prompt``,
  ``response_format``, ``temperature``, ``timestamp_granularities[]``
  (with ``verbose_json``), ``stream``, ``chunking_strategy`` (Silero VAD), and
  ``gpt-transcribe``'s ``languages[]`` (detection restricted to those candidates, reported as
  ``languages``) and ``keywords[]`` (decoding biased toward them, as ``hotwords``), and
  ``include[]=logprobs`` (with ``json``, as OpenAI allows it: token log-probabilities from the
  word-alignment pass, :mod:`whisperd.engine.token_logprobs`);
- diarization (``gpt-4o-transcribe-diarize``, ``diarized_json``, ``known_speaker_names[]``,
  ``known_speaker_references[]``, and whisperd's ``diarize`` and ``multichannel``):
  :mod:`whisperd.schemas.diarization`.

Subtitle shaping fields (``max_line_width`` and the others of
:class:`~whisperd.schemas.subtitles.SubtitleFields`) shape ``srt`` and ``vtt`` answers.

Groq's ``url`` is read as ``audio_url``; ``ask`` (whisperd's) sends the transcript and an
instruction to the server's LLM and returns its ``answer`` next to the transcript.

Any other field is ignored, as clients send extras meant for other servers, and reported by the
route. Responses follow OpenAI's schemas field for field (``CreateTranscriptionResponseJson``,
``...VerboseJson``, ``TranscriptText{Delta,Done}Event``, ``ErrorResponse``); times are seconds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from whisperd.audio.formats import UNTIMED_FORMATS, Granularity, usage_seconds
from whisperd.engine.base import Transcript
from whisperd.engine.options import DEFAULT_TEMPERATURES, TranscribeOptions
from whisperd.errors import InvalidOptionError
from whisperd.languages import language_or_detect, normalize_language
from whisperd.schemas.diarization import DiarizationFields
from whisperd.schemas.form_fields import ArrayField
from whisperd.schemas.subtitles import SubtitleFields

__all__ = [
    "ARRAY_FIELDS",
    "MAX_ASK_CHARS",
    "MAX_KEYWORDS",
    "MAX_KEYWORD_CHARS",
    "OBJECT_FIELDS",
    "AnswerError",
    "ChunkingStrategy",
    "DurationUsage",
    "ErrorDetail",
    "ErrorResponse",
    "ModelCapabilities",
    "ModelList",
    "ModelObject",
    "OpenAIFields",
    "ResponseFormat",
    "TranscriptLogprob",
    "TranscriptStreamEvent",
    "TranscriptTextDelta",
    "TranscriptTextDone",
    "TranscriptionJson",
    "TranscriptionLanguage",
    "TranscriptionSegment",
    "TranscriptionVerbose",
    "TranscriptionWord",
    "UnsupportedFieldError",
    "decoding_options",
    "known_fields",
    "refuse_unsupported",
    "request_schema",
    "usage_seconds",
]

ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt", "diarized_json"]

MAX_KEYWORDS: Final = 100
"""Most ``keywords[]`` a request may send."""
MAX_KEYWORD_CHARS: Final = 100
"""Longest keyword, in characters."""
MAX_ASK_CHARS: Final = 4000
"""Longest ``ask`` instruction, in characters."""


ARRAY_FIELDS: Final = (
    ArrayField("timestamp_granularities"),
    ArrayField("include"),
    ArrayField("known_speaker_names", paired=True),
    ArrayField("known_speaker_references", comma_separated=False, paired=True),
    ArrayField("languages"),
    ArrayField("keywords", comma_separated=False),
)
"""OpenAI's array fields (``name[]`` on the wire); data URLs and phrases keep their commas."""

OBJECT_FIELDS: Final = ("chunking_strategy",)
"""OpenAI's object fields (``name[key]`` on the wire)."""


class UnsupportedFieldError(InvalidOptionError):
    """An OpenAI request field, or value, that whisperd cannot honour yet (400)."""

    code = "unsupported_parameter"


_UNSUPPORTED: Final[tuple[tuple[str, str], ...]] = ()
"""OpenAI's array fields whisperd cannot honour, and what a request sending them is told
(none since diarization: :mod:`whisperd.schemas.diarization`)."""


def refuse_unsupported(fields: Mapping[str, Any]) -> None:
    """Refuse a request that asks for what whisperd cannot do yet.

    Args:
        fields: The form's fields as :func:`~whisperd.schemas.form_fields.read_fields` read
            them (arrays as tuples under their ``name[]`` wire names).

    Raises:
        UnsupportedFieldError: for any value of a field in :data:`_UNSUPPORTED`.
    """
    for name, message in _UNSUPPORTED:
        values = fields.get(name) or ()
        if values:
            raise UnsupportedFieldError(message, param=name)


class ChunkingStrategy(BaseModel):
    """OpenAI's ``chunking_strategy``: ``auto``, or a ``VadConfig`` of type ``server_vad``.

    Both cut the audio at Silero VAD's speech boundaries; ``server_vad``'s settings become the
    VAD's (``prefix_padding_ms`` pads both sides of speech, as faster-whisper's
    ``speech_pad_ms`` does). OpenAI's loudness normalisation of ``auto`` is not done.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False
    )

    type: Literal["auto", "server_vad"]
    """``auto`` (sent as the plain string), or ``server_vad`` with the settings below."""
    prefix_padding_ms: Annotated[int, Field(ge=0, le=10_000)] = 300
    """Audio kept before detected speech, in milliseconds."""
    silence_duration_ms: Annotated[int, Field(ge=0, le=10_000)] = 200
    """Silence that ends a stretch of speech, in milliseconds."""
    threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    """Speech probability above which audio counts as speech."""

    def vad_parameters(self) -> dict[str, float] | None:
        """The VAD settings this strategy sets (``None`` for ``auto``: the defaults)."""
        if self.type == "auto":
            return None
        return {
            "threshold": self.threshold,
            "speech_pad_ms": self.prefix_padding_ms,
            "min_silence_duration_ms": self.silence_duration_ms,
        }


class OpenAIFields(BaseModel):
    """OpenAI's own request fields, plus the audio-source extensions."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        use_attribute_docstrings=True,
    )

    model: str = ""
    """Model id: ``whisper-1`` (the server's default model), a known name, a Hugging Face repo
    id or a served directory. Empty: the default model."""
    language: str | None = None
    """The audio's language: an ISO 639-1 code (``en``), a BCP 47 tag (``en-US``), a locale
    name (``en_US``) or Whisper's English name (``english``); omit to detect it."""
    prompt: str | None = None
    """Text to guide style or continue a previous segment (Whisper's initial prompt)."""
    response_format: ResponseFormat = "json"
    """json, text, srt, verbose_json, vtt, or diarized_json (speakers; turns diarization
    on)."""
    temperature: str | None = None
    """0 (or absent): Whisper's fallback ladder 0,0.2,...,1. One value above 0: that temperature
    only. A comma-separated list: that ladder."""
    timestamp_granularities: Annotated[
        tuple[Granularity, ...], Field(alias="timestamp_granularities[]")
    ] = ("segment",)
    """``segment`` and/or ``word``, with verbose_json (ignored otherwise); ``word`` turns on
    word timestamps."""
    include: Annotated[tuple[Literal["logprobs"], ...], Field(alias="include[]")] = ()
    """``logprobs`` (OpenAI's one value): each text token's ``{token, logprob, bytes}`` in the
    ``json`` answer and in the stream's events; only with ``response_format=json``, as OpenAI
    allows it. The log-probabilities come from the word-alignment pass."""
    stream: bool = False
    """Send Server-Sent Events: a delta per decoded segment, then the full text."""
    chunking_strategy: ChunkingStrategy | None = None
    """``auto`` or a ``server_vad`` object: cut the audio at VAD speech boundaries. Absent: the
    server's VAD settings (``vad_filter``, on by default)."""
    languages: Annotated[tuple[str, ...], Field(alias="languages[]", max_length=100)] = ()
    """Candidate languages (codes, tags or names): detection picks the most probable of them
    and the response reports it as ``languages``. With ``language``, it must be among them."""
    keywords: Annotated[
        tuple[Annotated[str, Field(max_length=MAX_KEYWORD_CHARS)], ...],
        Field(alias="keywords[]", max_length=MAX_KEYWORDS),
    ] = ()
    """Words or phrases to bias decoding toward: joined with ``, `` after ``hotwords``."""
    audio_url: str | None = None
    """http(s) URL to fetch the audio from (instead of uploading ``file``)."""
    url: str | None = None
    """The same as ``audio_url`` (Groq's name for it)."""
    ask: Annotated[str | None, Field(max_length=MAX_ASK_CHARS)] = None
    """An instruction about the transcript ("summarize it") for the server's LLM: its answer is
    returned as ``answer`` (json and verbose_json only; not with ``stream``)."""
    audio_base64: str | None = None
    """Base64-encoded audio bytes (instead of uploading ``file``); the format is detected from
    the bytes."""

    @field_validator("timestamp_granularities", "include", "languages", "keywords", mode="before")
    @classmethod
    def _listify(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("languages")
    @classmethod
    def _language_codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(normalize_language(item) for item in value))

    @field_validator("chunking_strategy", mode="before")
    @classmethod
    def _chunking(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not text:
            return None
        if text == "auto":
            return {"type": "auto"}
        if text.startswith("{"):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a valid JSON object: {exc.msg}") from None
        raise ValueError("must be 'auto' or a server_vad object")

    def words_shown(self) -> bool:
        """Whether the response shows words: ``word`` granularity on a verbose_json answer."""
        return (
            "word" in self.timestamp_granularities
            and self.response_format == "verbose_json"
            and not self.stream
        )

    def ignored(self) -> tuple[str, ...]:
        """Wire names of the OpenAI fields that were sent but change nothing in this request:
        ``timestamp_granularities[]`` outside a verbose_json answer, as OpenAI documents it."""
        if "timestamp_granularities" in self.model_fields_set and (
            self.response_format != "verbose_json" or self.stream
        ):
            return ("timestamp_granularities[]",)
        return ()

    def temperatures(self) -> tuple[float, ...] | str | None:
        """Map OpenAI's single temperature onto Whisper's fallback ladder."""
        if self.temperature is None or not self.temperature.strip():
            return None
        if "," in self.temperature:
            return self.temperature
        try:
            value = float(self.temperature)
        except ValueError:
            return self.temperature  # TranscribeOptions reports it
        return DEFAULT_TEMPERATURES if value == 0 else self.temperature


def decoding_options(
    fields: OpenAIFields, extras: dict[str, Any], *, task: str
) -> TranscribeOptions:
    """Build the decoding options of a request from OpenAI fields and extra form fields.

    ``languages[]`` become the candidate ``languages``; ``keywords[]`` are joined with ``, ``
    after any ``hotwords`` into the one hotwords text faster-whisper puts before each window's
    prompt.

    Raises:
        pydantic.ValidationError: if a value is out of range or malformed.
        InvalidOptionError: if ``language`` is not among ``languages[]``, or ``keywords[]``
            come with a ``prefix`` (which makes faster-whisper drop hotwords).
    """
    values: dict[str, Any] = {
        name: value
        for name, value in extras.items()
        if name in TranscribeOptions.model_fields and name not in OpenAIFields.model_fields
    }
    values["task"] = task
    if fields.language is not None:
        values.setdefault("language", fields.language)
    _check_language_among_candidates(fields)
    if fields.prompt:
        values.setdefault("initial_prompt", fields.prompt)
    temperatures = fields.temperatures()
    if temperatures is not None:
        values.setdefault("temperature", temperatures)
    if fields.words_shown():
        values["word_timestamps"] = True
    if "logprobs" in fields.include:
        values["logprobs"] = True
    if fields.response_format in UNTIMED_FORMATS:
        values.setdefault("segment_timestamps", False)
    _check_logprobs_format(fields, values)
    if fields.languages:
        values["languages"] = fields.languages
    if fields.keywords:
        if values.get("prefix"):  # faster-whisper drops hotwords when a prefix is given
            raise InvalidOptionError(
                "keywords[] cannot be combined with prefix: Whisper's prompt has no room for "
                "both. Leave out one of them.",
                param="keywords[]",
            )
        values["hotwords"] = ", ".join(filter(None, (values.get("hotwords"), *fields.keywords)))
    if fields.chunking_strategy is not None:
        values.setdefault("vad_filter", True)
        vad = fields.chunking_strategy.vad_parameters()
        if vad is not None:
            values.setdefault("vad_parameters", vad)
    return TranscribeOptions.model_validate(values)


def _check_logprobs_format(fields: OpenAIFields, values: Mapping[str, Any]) -> None:
    """Refuse token logprobs with an answer that cannot carry them (OpenAI gives them only
    with ``response_format=json``)."""
    if values.get("logprobs") in (None, False, "false") or fields.response_format == "json":
        return
    param = "include[]" if fields.include else "logprobs"
    raise InvalidOptionError(
        f"{param} asks for token log-probabilities, which only the json response_format "
        f"carries (got {fields.response_format}).",
        param=param,
    )


def _check_language_among_candidates(fields: OpenAIFields) -> None:
    """Refuse a ``language`` that ``languages[]`` leaves out (an unknown one is reported by
    the options' own validation)."""
    if not fields.languages or fields.language is None or fields.language.strip() == "auto":
        return
    try:
        code = language_or_detect(fields.language)
    except ValueError:
        return
    if code is not None and code not in fields.languages:
        raise InvalidOptionError(
            f"language {fields.language!r} is not among languages[] "
            f"({', '.join(fields.languages)}): send one of them, or leave language out to "
            "detect the language among the candidates.",
            param="languages[]",
        )


def known_fields() -> frozenset[str]:
    """Every form field name a transcription request may carry (arrays as ``name[]``)."""
    openai = {field.alias or name for name, field in OpenAIFields.model_fields.items()}
    arrays = {f"{field.name}[]" for field in ARRAY_FIELDS}
    subtitles = SubtitleFields.model_fields
    speakers = {field.alias or name for name, field in DiarizationFields.model_fields.items()}
    options = TranscribeOptions.model_fields
    return frozenset({"file", *openai, *arrays, *options, *subtitles, *speakers})


class ModelCapabilities(BaseModel):
    """What a model can do."""

    transcription: bool = True
    translation: bool
    languages: list[str]
    """ISO codes of the languages it transcribes."""


class ModelObject(BaseModel):
    """OpenAI's model object, with whisperd's capability fields."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "whisperd"
    downloaded: bool
    """Weights are on local disk (no download needed before the first request)."""
    default: bool = False
    """This id is served by the server's default model."""
    loaded: bool = False
    """The model is loaded now (on any device and compute type): a request for it starts
    without loading it. A whisperd field; OpenAI's clients ignore it."""
    capabilities: ModelCapabilities
    parameters: dict[str, Any]
    """JSON Schema of the form fields a transcription request accepts."""


class ModelList(BaseModel):
    """OpenAI's model list."""

    object: Literal["list"] = "list"
    data: list[ModelObject]


def request_schema() -> dict[str, Any]:
    """JSON Schema of every form field of a transcription request (OpenAI's and the extras)."""
    openai = OpenAIFields.model_json_schema(by_alias=True)
    options = TranscribeOptions.model_json_schema()
    properties = {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "The audio file (or an http(s) URL as a string).",
        }
    }
    properties.update(openai["properties"])
    properties.update(SubtitleFields.model_json_schema()["properties"])
    properties.update(DiarizationFields.model_json_schema(by_alias=True)["properties"])
    properties.update(
        {name: spec for name, spec in options["properties"].items() if name not in properties}
    )
    return {
        "type": "object",
        "properties": properties,
        "$defs": {**openai.get("$defs", {}), **options.get("$defs", {})},
    }


class DurationUsage(BaseModel):
    """OpenAI's ``TranscriptTextUsageDuration``: what a request is billed for."""

    type: Literal["duration"] = "duration"
    seconds: int
    """Duration of the input audio in whole seconds, rounded up."""

    @classmethod
    def of(cls, duration: float) -> DurationUsage:
        """The usage of ``duration`` seconds of audio (0 for a non-finite duration)."""
        return cls(seconds=usage_seconds(duration))


class TranscriptionLanguage(BaseModel):
    """A language detected in the audio: OpenAI's ``TranscriptionLanguage`` (``code``), plus
    whisperd's ``probability``."""

    code: str
    """Whisper's code of the language (ISO 639-1 where there is one)."""
    probability: float
    """Its probability among the ``languages[]`` candidates (0-1)."""

    @classmethod
    def of(cls, transcript: Transcript) -> list[TranscriptionLanguage]:
        """The ``languages`` of a response: the one language detected among the candidates."""
        return [cls(code=transcript.language, probability=transcript.language_probability)]


class AnswerError(BaseModel):
    """Why the LLM gave no ``answer`` (the transcript is returned all the same)."""

    message: str
    """What went wrong, meant to be shown as is."""
    code: str
    """``llm_unavailable`` (unreachable, timed out, or an error status) or ``llm_refused``
    (no answer in its reply)."""


class TranscriptLogprob(BaseModel):
    """One token's log-probability (OpenAI's ``logprobs`` entry), with ``include[]=logprobs``.

    The number is the natural log of the token's probability in Whisper's word-alignment
    pass (:mod:`whisperd.engine.token_logprobs` says exactly what that is).
    """

    token: str
    """The token's text."""
    logprob: float
    """Natural log of its probability (at most 0)."""
    bytes: list[int]
    """Its UTF-8 bytes."""


class TranscriptionJson(BaseModel):
    """The ``json`` response (OpenAI's ``CreateTranscriptionResponseJson``)."""

    text: str
    """The transcript, trimmed."""
    logprobs: list[TranscriptLogprob] | None = None
    """With ``include[]=logprobs``: every text token's log-probability, in order."""
    languages: list[TranscriptionLanguage] | None = None
    """With ``languages[]``: the language detected among them."""
    usage: DurationUsage
    answer: str | None = None
    """With ``ask``: the LLM's answer."""
    answer_error: AnswerError | None = None
    """With ``ask``, when the LLM gave no answer: why."""


class TranscriptionSegment(BaseModel):
    """A segment of ``verbose_json`` (OpenAI's ``TranscriptionSegment``): all ten fields."""

    id: int
    seek: int
    """Offset of the segment's decoding window, in 10 ms frames."""
    start: float
    """Start in seconds."""
    end: float
    """End in seconds."""
    text: str
    """The segment's text, with Whisper's leading space."""
    tokens: list[int]
    """Token ids of the text."""
    temperature: float
    """Sampling temperature the segment was decoded at."""
    avg_logprob: float
    """Mean log-probability of its tokens; below -1 the decoding is doubtful."""
    compression_ratio: float
    """gzip compression ratio of its text; above 2.4 it is likely repetitive."""
    no_speech_prob: float
    """Probability that the window holds no speech."""
    speaker: str | None = None
    """Who said it, when diarization is on (whisperd's addition)."""


class TranscriptionWord(BaseModel):
    """A word of ``verbose_json`` (OpenAI's ``TranscriptionWord``)."""

    word: str
    """The word, without surrounding spaces."""
    start: float
    """Start in seconds."""
    end: float
    """End in seconds."""
    probability: float | None = None
    """Whisper's confidence in the word, 0 to 1 (the mean probability of its tokens in the
    word-alignment pass); whisperd's addition to OpenAI's word."""
    speaker: str | None = None
    """Who said it, when diarization is on (whisperd's addition)."""


class TranscriptionVerbose(BaseModel):
    """The ``verbose_json`` response (OpenAI's ``CreateTranscriptionResponseVerboseJson``)."""

    task: str
    """``transcribe``, or ``translate`` on the translations endpoint."""
    language: str
    """The language's full lower-case English name, e.g. ``english``."""
    duration: float
    """Duration of the audio in seconds."""
    text: str
    """The transcript, trimmed."""
    segments: list[TranscriptionSegment] | None = None
    """Present when ``timestamp_granularities[]`` holds ``segment`` (the default)."""
    words: list[TranscriptionWord] | None = None
    """Present when ``timestamp_granularities[]`` holds ``word``."""
    languages: list[TranscriptionLanguage] | None = None
    """With ``languages[]``: the language detected among them."""
    usage: DurationUsage
    answer: str | None = None
    """With ``ask``: the LLM's answer."""
    answer_error: AnswerError | None = None
    """With ``ask``, when the LLM gave no answer: why."""


class TranscriptTextDelta(BaseModel):
    """A ``stream=true`` event: more text (one decoded segment)."""

    type: Literal["transcript.text.delta"] = "transcript.text.delta"
    delta: str
    """The new text, with Whisper's leading space."""
    logprobs: list[TranscriptLogprob] | None = None
    """With ``include[]=logprobs``: the log-probabilities of the delta's tokens."""
    segment_id: str | None = None
    """With diarization: the id of the diarized segment the delta belongs to."""


class TranscriptTextDone(BaseModel):
    """The last ``stream=true`` event: the whole transcript."""

    type: Literal["transcript.text.done"] = "transcript.text.done"
    text: str
    """The transcript, trimmed."""
    logprobs: list[TranscriptLogprob] | None = None
    """With ``include[]=logprobs``: every text token's log-probability, in order."""
    languages: list[TranscriptionLanguage] | None = None
    """With ``languages[]``: the language detected among them."""
    usage: DurationUsage


class ErrorDetail(BaseModel):
    """OpenAI's ``Error``."""

    message: str
    """What went wrong, meant to be shown as is."""
    type: str
    """``invalid_request_error`` for the client's mistakes, ``server_error`` for the server's."""
    param: str | None
    """The request field at fault, if one is."""
    code: str | None
    """Stable machine-readable code, e.g. ``model_not_found``."""


class ErrorResponse(BaseModel):
    """OpenAI's error envelope: every error under ``/v1``, and an in-band stream error."""

    error: ErrorDetail


TranscriptStreamEvent = TranscriptTextDelta | TranscriptTextDone | ErrorResponse
"""What each ``data:`` line of a ``stream=true`` response holds."""

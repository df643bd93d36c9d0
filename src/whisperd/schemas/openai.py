"""Wire models of the OpenAI-compatible audio API: requests, responses, stream events, errors.

Requests arrive as multipart forms the way OpenAI's SDKs send them: array fields with a ``[]``
suffix, objects bracket-flattened, booleans as ``"true"``/``"false"``; the other spellings of
arrays and objects are read too (:mod:`whisperd.schemas.form_fields`). On top of OpenAI's
fields, every decoding control of :class:`~whisperd.engine.options.TranscribeOptions` is
accepted as a form field, and audio may be given as a URL (``file`` or ``audio_url``) or as
``audio_base64``.

What happens to each field OpenAI documents (``CreateTranscriptionRequest``):

- honoured: ``file``, ``model``, ``language`` (BCP 47 tags too), ``prompt``,
  ``response_format`` (but ``diarized_json``), ``temperature``, ``timestamp_granularities[]``
  (with ``verbose_json``), ``stream``, ``chunking_strategy`` (Silero VAD);
- refused with a 400 that says so (:class:`UnsupportedFieldError`): ``include[]=logprobs``
  (the engines give no per-token log-probabilities), diarization (``known_speaker_names[]``,
  ``known_speaker_references[]``, ``diarized_json``) and ``gpt-transcribe``'s ``languages[]``
  and ``keywords[]``.

Any other field is ignored, as clients send extras meant for other servers, and reported by the
route. Responses follow OpenAI's schemas field for field (``CreateTranscriptionResponseJson``,
``...VerboseJson``, ``TranscriptText{Delta,Done}Event``, ``ErrorResponse``); times are seconds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from whisperd.audio.formats import Granularity, usage_seconds
from whisperd.engine.options import DEFAULT_TEMPERATURES, TranscribeOptions
from whisperd.errors import InvalidOptionError
from whisperd.schemas.form_fields import ArrayField

__all__ = [
    "ARRAY_FIELDS",
    "OBJECT_FIELDS",
    "ChunkingStrategy",
    "DurationUsage",
    "ErrorDetail",
    "ErrorResponse",
    "ModelCapabilities",
    "ModelList",
    "ModelObject",
    "OpenAIFields",
    "ResponseFormat",
    "TranscriptStreamEvent",
    "TranscriptTextDelta",
    "TranscriptTextDone",
    "TranscriptionJson",
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

ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]


ARRAY_FIELDS: Final = (
    ArrayField("timestamp_granularities"),
    ArrayField("include"),
    ArrayField("known_speaker_names"),
    ArrayField("known_speaker_references", comma_separated=False),
    ArrayField("languages"),
    ArrayField("keywords", comma_separated=False),
)
"""OpenAI's array fields (``name[]`` on the wire); data URLs and phrases keep their commas."""

OBJECT_FIELDS: Final = ("chunking_strategy",)
"""OpenAI's object fields (``name[key]`` on the wire)."""


class UnsupportedFieldError(InvalidOptionError):
    """An OpenAI request field, or value, that whisperd cannot honour yet (400)."""

    code = "unsupported_parameter"


_DIARIZATION = "whisperd does not tell speakers apart (no diarization) yet"
_UNSUPPORTED: Final = (
    (
        "include[]",
        "include[]=logprobs is not supported: whisperd's engines do not return per-token "
        "log-probabilities. Leave out include[].",
    ),
    ("known_speaker_names[]", f"known_speaker_names[] is not supported: {_DIARIZATION}."),
    (
        "known_speaker_references[]",
        f"known_speaker_references[] is not supported: {_DIARIZATION}.",
    ),
    (
        "languages[]",
        "languages[] (candidate languages, gpt-transcribe only) is not supported: send the "
        "one spoken language as 'language', or leave it out to detect it.",
    ),
    (
        "keywords[]",
        "keywords[] (gpt-transcribe only) is not supported: whisperd's 'hotwords' field "
        "biases decoding toward words.",
    ),
)
"""OpenAI's array fields whisperd cannot honour, and what a request sending them is told."""


def refuse_unsupported(fields: Mapping[str, Any]) -> None:
    """Refuse a request that asks for what whisperd cannot do yet.

    Args:
        fields: The form's fields as :func:`~whisperd.schemas.form_fields.read_fields` read
            them (arrays as tuples under their ``name[]`` wire names).

    Raises:
        UnsupportedFieldError: for ``include[]=logprobs``, ``response_format=diarized_json``,
            or any value of ``known_speaker_names[]``, ``known_speaker_references[]``,
            ``languages[]`` or ``keywords[]`` (OpenAI's fields, ``CreateTranscriptionRequest``).
    """
    if str(fields.get("response_format", "")).strip() == "diarized_json":
        raise UnsupportedFieldError(
            f"response_format=diarized_json is not supported: {_DIARIZATION}. Use json, text, "
            "srt, verbose_json or vtt.",
            param="response_format",
        )
    for name, message in _UNSUPPORTED:
        values = fields.get(name) or ()
        if name == "include[]" and "logprobs" not in values:
            continue  # other values are not OpenAI's: validation reports them
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
    """json, text, srt, verbose_json or vtt."""
    temperature: str | None = None
    """0 (or absent): Whisper's fallback ladder 0,0.2,...,1. One value above 0: that temperature
    only. A comma-separated list: that ladder."""
    timestamp_granularities: Annotated[
        tuple[Granularity, ...], Field(alias="timestamp_granularities[]")
    ] = ("segment",)
    """``segment`` and/or ``word``, with verbose_json (ignored otherwise); ``word`` turns on
    word timestamps."""
    include: Annotated[tuple[Literal["logprobs"], ...], Field(alias="include[]")] = ()
    """Not supported: OpenAI's one value, ``logprobs``, asks for token log-probabilities that
    whisperd's engines do not give, so it is refused (400)."""
    stream: bool = False
    """Send Server-Sent Events: a delta per decoded segment, then the full text."""
    chunking_strategy: ChunkingStrategy | None = None
    """``auto`` or a ``server_vad`` object: cut the audio at VAD speech boundaries. Absent: the
    server's VAD settings (``vad_filter``, on by default)."""
    audio_url: str | None = None
    """http(s) URL to fetch the audio from (instead of uploading ``file``)."""
    audio_base64: str | None = None
    """Base64-encoded audio bytes (instead of uploading ``file``); the format is detected from
    the bytes."""

    @field_validator("timestamp_granularities", "include", mode="before")
    @classmethod
    def _listify(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

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

    Raises:
        pydantic.ValidationError: if a value is out of range or malformed.
    """
    values: dict[str, Any] = {
        name: value
        for name, value in extras.items()
        if name in TranscribeOptions.model_fields and name not in OpenAIFields.model_fields
    }
    values["task"] = task
    if fields.language is not None:
        values.setdefault("language", fields.language)
    if fields.prompt:
        values.setdefault("initial_prompt", fields.prompt)
    temperatures = fields.temperatures()
    if temperatures is not None:
        values.setdefault("temperature", temperatures)
    if fields.words_shown():
        values["word_timestamps"] = True
    if fields.chunking_strategy is not None:
        values.setdefault("vad_filter", True)
        vad = fields.chunking_strategy.vad_parameters()
        if vad is not None:
            values.setdefault("vad_parameters", vad)
    return TranscribeOptions.model_validate(values)


def known_fields() -> frozenset[str]:
    """Every form field name a transcription request may carry (arrays as ``name[]``)."""
    openai = {field.alias or name for name, field in OpenAIFields.model_fields.items()}
    arrays = {f"{field.name}[]" for field in ARRAY_FIELDS}
    return frozenset({"file", *openai, *arrays, *TranscribeOptions.model_fields})


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


class TranscriptionJson(BaseModel):
    """The ``json`` response (OpenAI's ``CreateTranscriptionResponseJson``)."""

    text: str
    """The transcript, trimmed."""
    usage: DurationUsage


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


class TranscriptionWord(BaseModel):
    """A word of ``verbose_json`` (OpenAI's ``TranscriptionWord``)."""

    word: str
    """The word, without surrounding spaces."""
    start: float
    """Start in seconds."""
    end: float
    """End in seconds."""


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
    usage: DurationUsage


class TranscriptTextDelta(BaseModel):
    """A ``stream=true`` event: more text (one decoded segment)."""

    type: Literal["transcript.text.delta"] = "transcript.text.delta"
    delta: str
    """The new text, with Whisper's leading space."""


class TranscriptTextDone(BaseModel):
    """The last ``stream=true`` event: the whole transcript."""

    type: Literal["transcript.text.done"] = "transcript.text.done"
    text: str
    """The transcript, trimmed."""
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

"""Wire models of the OpenAI-compatible audio API: requests, responses, stream events, errors.

Requests arrive as multipart forms the way OpenAI's SDKs send them: array fields with a ``[]``
suffix, booleans as ``"true"``/``"false"``. On top of OpenAI's fields, every decoding control
of :class:`~whisperd.engine.options.TranscribeOptions` is accepted as a form field, and audio
may be given as a URL (``file`` or ``audio_url``) or as ``audio_base64``. Unknown fields are
ignored, as clients send extras meant for other servers.

Responses follow OpenAI's schemas field for field (``CreateTranscriptionResponseJson``,
``...VerboseJson``, ``TranscriptText{Delta,Done}Event``, ``ErrorResponse``); times are seconds.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from whisperd.audio.formats import Granularity, usage_seconds
from whisperd.engine.options import DEFAULT_TEMPERATURES, TranscribeOptions

__all__ = [
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
    "decoding_options",
    "request_schema",
    "usage_seconds",
]

ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]


class OpenAIFields(BaseModel):
    """OpenAI's own request fields, plus the audio-source extensions."""

    model_config = ConfigDict(frozen=True, extra="ignore", use_attribute_docstrings=True)

    model: str = ""
    """Model id: ``whisper-1`` (the server's default model), a known name, a Hugging Face repo
    id or a served directory. Empty: the default model."""
    language: str | None = None
    """ISO 639-1 code of the audio's language; omit to detect it."""
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
    """``segment`` and/or ``word`` (verbose_json only); ``word`` turns on word timestamps."""
    include: Annotated[tuple[str, ...], Field(alias="include[]")] = ()
    """Not supported: OpenAI's one value, ``logprobs``, asks for token log-probabilities that
    Whisper models do not give here, so any value is refused (400)."""
    stream: bool = False
    """Send Server-Sent Events: a delta per decoded segment, then the full text."""
    audio_url: str | None = None
    """http(s) URL to fetch the audio from (instead of uploading ``file``)."""
    audio_base64: str | None = None
    """Base64-encoded audio bytes (instead of uploading ``file``); the format is detected from
    the bytes."""

    @field_validator("timestamp_granularities", "include", mode="before")
    @classmethod
    def _listify(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("include")
    @classmethod
    def _refuse_include(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if value:
            raise ValueError("Whisper models give no logprobs; leave out include[]")
        return value

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
    if "word" in fields.timestamp_granularities:
        values["word_timestamps"] = True
    return TranscribeOptions.model_validate(values)


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

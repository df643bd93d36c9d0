"""Wire models of the OpenAI-compatible audio API.

Requests arrive as multipart forms the way OpenAI's SDKs send them: array fields with a ``[]``
suffix, booleans as ``"true"``/``"false"``. On top of OpenAI's fields, every decoding control
of :class:`~whisperd.engine.options.TranscribeOptions` is accepted as a form field, and audio
may be given as a URL (``file`` or ``audio_url``) or as ``audio_base64``. Unknown fields are
ignored, as clients send extras meant for other servers.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from whisperd.audio.formats import Granularity
from whisperd.engine.options import DEFAULT_TEMPERATURES, TranscribeOptions

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
    """Accepted for compatibility; ``logprobs`` is not produced by Whisper models."""
    stream: bool = False
    """Send Server-Sent Events: a delta per decoded segment, then the full text."""
    audio_url: str | None = None
    """http(s) URL to fetch the audio from (instead of uploading ``file``)."""
    audio_base64: str | None = None
    """Base64-encoded audio bytes (instead of uploading ``file``)."""
    audio_suffix: str | None = None
    """File-extension hint for URL or base64 audio; the format is detected from the bytes."""

    @field_validator("timestamp_granularities", "include", mode="before")
    @classmethod
    def _listify(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

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


def usage_seconds(duration: float) -> int:
    """OpenAI bills whole seconds, rounded up."""
    return math.ceil(duration) if math.isfinite(duration) and duration > 0 else 0

"""Wire models of language detection on its own: ``POST /v1/audio/language``.

OpenAI's API has no such endpoint; clients of other Whisper servers call one
(whisper-asr-webservice's ``/detect-language``), and this one speaks the OpenAI side's
conventions: a multipart form with the audio as ``file`` (an upload or a URL), ``url`` or
``audio_url``, or ``audio_base64``; errors in OpenAI's envelope with ``param`` naming the field.
The answer is Whisper's language identification of the first 30 s window (after VAD): one
encoder pass through the scheduler, then the probability of every language token.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

from whisperd.engine.detection import LanguageDetection
from whisperd.engine.options import TranscribeOptions
from whisperd.languages import language_name, normalize_language
from whisperd.schemas.form_fields import ArrayField

__all__ = [
    "LANGUAGE_ARRAY_FIELDS",
    "DetectedLanguage",
    "LanguageDetectionFields",
    "LanguageDetectionResponse",
]

LANGUAGE_ARRAY_FIELDS: Final = (ArrayField("languages"),)
"""The array fields of a detection request (``languages[]`` on the wire)."""

_DETECTION_OPTIONS: Final = (
    "vad_filter",
    "vad_parameters",
    "language_detection_segments",
    "language_detection_threshold",
)
"""The decoding options that change a detection, accepted as form fields."""


class LanguageDetectionFields(BaseModel):
    """The form fields of ``POST /v1/audio/language`` (the audio fields apart)."""

    model_config = ConfigDict(frozen=True, extra="ignore", use_attribute_docstrings=True)

    model: str = ""
    """Model id, as on ``/v1/audio/transcriptions``; empty or ``whisper-1``: the default."""
    languages: Annotated[tuple[str, ...], Field(alias="languages[]", max_length=100)] = ()
    """Candidate languages (codes, tags or names): only these are considered, their
    probabilities renormalised among them. Empty: every language the model knows."""
    top_n: Annotated[int, Field(ge=1, le=200)] = 5
    """How many of the most probable languages to list under ``languages``."""
    vad_filter: bool = True
    """Remove non-speech with Silero VAD before the window is taken (so silence at the start
    does not decide)."""
    vad_parameters: str | dict[str, Any] | None = None
    """Silero VAD settings, a JSON object (as on the transcription routes)."""
    language_detection_segments: Annotated[int, Field(ge=1, le=20)] = 1
    """30 s windows considered (each one more encoder pass), until one is confident."""
    language_detection_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    """Probability above which a window's language is taken without looking further."""

    @field_validator("languages", mode="before")
    @classmethod
    def _listify(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("languages")
    @classmethod
    def _codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(normalize_language(item) for item in value))

    def options(self) -> TranscribeOptions:
        """The detection's options (the rest at their defaults).

        Raises:
            pydantic.ValidationError: if ``vad_parameters`` is malformed.
        """
        values = {name: getattr(self, name) for name in _DETECTION_OPTIONS}
        return TranscribeOptions.model_validate({**values, "languages": self.languages})

    @staticmethod
    def known() -> frozenset[str]:
        """Every field name a detection request may carry, audio fields included."""
        names = {
            field.alias or name for name, field in LanguageDetectionFields.model_fields.items()
        }
        return frozenset({*names, "file", "url", "audio_url", "audio_base64"})


class DetectedLanguage(BaseModel):
    """One language and its probability."""

    code: str
    """Whisper's code of the language (ISO 639-1 where there is one), as OpenAI's
    ``languages[].code``."""
    name: str
    """Its lower-case English name, as ``verbose_json``'s ``language`` (``english``)."""
    probability: float
    """0-1; among the candidates when ``languages[]`` was sent."""


class LanguageDetectionResponse(BaseModel):
    """The detected language and the most probable ones."""

    language: str
    """Code of the detected language."""
    name: str
    """Its English name."""
    probability: float
    """Its probability (0-1)."""
    languages: list[DetectedLanguage]
    """The ``top_n`` most probable languages, most probable first."""
    duration: float
    """Duration of the audio in seconds."""
    model: str
    """The model that detected it."""

    @classmethod
    def of(cls, detection: LanguageDetection, top_n: int) -> LanguageDetectionResponse:
        """The answer for ``detection``, listing its ``top_n`` most probable languages."""
        return cls(
            language=detection.language,
            name=language_name(detection.language),
            probability=detection.probability,
            languages=[
                DetectedLanguage(
                    code=item.language,
                    name=language_name(item.language),
                    probability=item.probability,
                )
                for item in detection.candidates[:top_n]
            ],
            duration=detection.duration,
            model=detection.model,
        )

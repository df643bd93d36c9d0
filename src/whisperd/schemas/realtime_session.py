"""Session settings of OpenAI Realtime transcription sessions, in both protocol generations.

The current (GA) shape nests the input settings under ``session.audio.input``; the older beta
shape keeps them flat (``input_audio_format``, ``input_audio_transcription``,
``turn_detection``). Both become one :class:`SessionChanges`. An update is partial: a field left
out keeps its value, ``turn_detection: null`` switches to manual commits. Unknown fields are
ignored, as clients send settings meant for OpenAI's own models.

Reference: https://platform.openai.com/docs/api-reference/realtime-client-events/session/update
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
)

from whisperd.languages import language_or_detect

AudioFormatName = Literal["pcm16", "g711_ulaw", "g711_alaw"]
"""The beta names of the input formats served: PCM16 at 24 kHz, G.711 mu-law and A-law at 8 kHz."""

PCM_RATE = 24000
"""The only PCM sample rate of the Realtime API."""

LOGPROBS_INCLUDE: Final = "item.input_audio_transcription.logprobs"
"""The one ``include`` value: token log-probabilities on the transcription's delta and
completed events (whisperd's come from the word-alignment pass of each final,
:mod:`whisperd.engine.token_logprobs`)."""

Include = list[Literal["item.input_audio_transcription.logprobs"]]
"""A session's ``include``: empty, or :data:`LOGPROBS_INCLUDE`."""


def _absent(value: object) -> bool:
    return value is None


MAX_TURN_MS = 10_000
"""Longest prefix padding and end-of-turn silence, in ms (OpenAI gives no bound; 10 s is the
bound of the other VAD settings of whisperd's APIs, ``chunking_strategy``'s)."""


class _Settings(BaseModel):
    """Unknown fields are ignored; non-finite numbers (``NaN``, ``Infinity``, ``1e309``) are
    refused."""

    model_config = ConfigDict(extra="ignore", use_attribute_docstrings=True, allow_inf_nan=False)


_FORMAT_NAMES: Final[Mapping[str, AudioFormatName]] = MappingProxyType(
    {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}
)


class AudioFormat(_Settings):
    """A GA input format: ``{"type": "audio/pcm", "rate": 24000}``, ``{"type": "audio/pcmu"}``
    (G.711 mu-law) or ``{"type": "audio/pcma"}`` (G.711 A-law)."""

    type: Literal["audio/pcm", "audio/pcmu", "audio/pcma"]
    rate: int | None = None
    """Sample rate of ``audio/pcm``; only 24000 is defined."""

    @field_validator("rate")
    @classmethod
    def _only_24k(cls, rate: int | None, info: ValidationInfo) -> int | None:
        if rate is not None and info.data.get("type") == "audio/pcm" and rate != PCM_RATE:
            raise ValueError(f"only {PCM_RATE} Hz PCM is supported")
        return rate

    @property
    def name(self) -> AudioFormatName:
        """The beta name of this format."""
        return _FORMAT_NAMES[self.type]


class Transcription(_Settings):
    """How the input audio is transcribed."""

    model: str | None = None
    """Model id; ``whisper-1`` and ``gpt-4o*-transcribe`` all mean the server's model."""
    language: Annotated[str | None, AfterValidator(language_or_detect)] = None
    """The spoken language (ISO 639-1 code, BCP 47 tag or name); empty or absent: detect it."""
    prompt: str | None = None
    """Text that guides the transcription (Whisper's initial prompt)."""


class TurnDetection(_Settings):
    """Server-side endpointing; the server commits a turn when speech stops."""

    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    """Both run the server's VAD; ``semantic_vad`` ends turns after a silence its ``eagerness``
    sets (the session echoes the ``server_vad`` settings that run)."""
    threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    """Speech probability that starts a turn."""
    prefix_padding_ms: Annotated[int, Field(ge=0, le=MAX_TURN_MS)] = 300
    """Audio kept before speech starts, in milliseconds (at most 10 s)."""
    silence_duration_ms: Annotated[int, Field(ge=0, le=MAX_TURN_MS)] = 500
    """Silence that ends a turn, in milliseconds (at most 10 s)."""
    create_response: bool | None = None
    """Accepted for compatibility; transcription sessions create no responses."""
    interrupt_response: bool | None = None
    """Accepted for compatibility; transcription sessions create no responses."""
    idle_timeout_ms: int | None = None
    """Accepted for compatibility."""
    eagerness: Literal["low", "medium", "high", "auto"] | None = None
    """How soon ``semantic_vad`` ends a turn (``auto``, the default, is ``medium``)."""


def _as_sent(turn: TurnDetection | None) -> dict[str, Any] | None:
    return None if turn is None else turn.model_dump(exclude_unset=True)


EchoedTurnDetection = Annotated[TurnDetection | None, PlainSerializer(_as_sent)]
"""Turn detection as it runs: only the fields set (the session sets the ``server_vad`` ones it
runs, so settings accepted for compatibility and not run are left out)."""


def default_turn_detection() -> TurnDetection:
    """Server VAD with OpenAI's defaults for transcription sessions."""
    return TurnDetection(
        type="server_vad", threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500
    )


class NoiseReduction(_Settings):
    """A noise filter OpenAI applies to the input; whisperd refuses an update that asks for one
    (it transcribes the audio as it comes), so only ``null`` is accepted."""

    type: Literal["near_field", "far_field"]


@dataclass(frozen=True, slots=True)
class SessionChanges:
    """What one session update changes, whatever its protocol generation (None: unchanged)."""

    audio_format: AudioFormatName | None
    transcription: Transcription | None
    turn_detection: TurnDetection | None
    sets_turn_detection: bool
    """The update names ``turn_detection`` (``null`` switches server VAD off)."""
    noise_reduction: NoiseReduction | None = None
    """The noise filter the update asks for (None: none, or not named)."""
    include: tuple[str, ...] | None = None
    """The session's ``include`` (None: unchanged; empty: nothing extra)."""


class AudioInput(_Settings):
    """``session.audio.input`` of a GA session."""

    format: AudioFormat | None = None
    transcription: Transcription | None = None
    turn_detection: TurnDetection | None = None
    """Null: no server VAD; the client commits each turn."""
    noise_reduction: NoiseReduction | None = None


class Audio(_Settings):
    """``session.audio`` of a GA session."""

    input: AudioInput | None = None


class Session(_Settings):
    """The ``session`` of a GA ``session.update``."""

    type: Literal["transcription"] = "transcription"
    """Only transcription sessions are served."""
    audio: Audio | None = None
    include: Include | None = None
    """``item.input_audio_transcription.logprobs``: token logprobs on the transcription's
    events (:data:`LOGPROBS_INCLUDE`); any other value is refused."""

    def changes(self) -> SessionChanges:
        """The settings this update changes."""
        audio_input = (self.audio.input if self.audio else None) or AudioInput()
        return SessionChanges(
            audio_format=audio_input.format.name if audio_input.format else None,
            transcription=audio_input.transcription,
            turn_detection=audio_input.turn_detection,
            sets_turn_detection="turn_detection" in audio_input.model_fields_set,
            noise_reduction=audio_input.noise_reduction,
            include=None if self.include is None else tuple(self.include),
        )


class BetaSession(_Settings):
    """The ``session`` of a beta ``transcription_session.update``."""

    input_audio_format: AudioFormatName | None = None
    input_audio_transcription: Transcription | None = None
    turn_detection: TurnDetection | None = None
    """Null: no server VAD; the client commits each turn."""
    input_audio_noise_reduction: NoiseReduction | None = None
    include: Include | None = None
    """As the GA session's ``include``."""

    def changes(self) -> SessionChanges:
        """The settings this update changes."""
        return SessionChanges(
            audio_format=self.input_audio_format,
            transcription=self.input_audio_transcription,
            turn_detection=self.turn_detection,
            sets_turn_detection="turn_detection" in self.model_fields_set,
            noise_reduction=self.input_audio_noise_reduction,
            include=None if self.include is None else tuple(self.include),
        )


class PcmFormat(BaseModel):
    """The GA description of PCM16 input."""

    type: Literal["audio/pcm"] = "audio/pcm"
    rate: int = PCM_RATE


class PcmuFormat(BaseModel):
    """The GA description of G.711 mu-law input."""

    type: Literal["audio/pcmu"] = "audio/pcmu"


class PcmaFormat(BaseModel):
    """The GA description of G.711 A-law input."""

    type: Literal["audio/pcma"] = "audio/pcma"


class AudioInputDescription(BaseModel):
    """``session.audio.input`` as the server describes it."""

    format: PcmFormat | PcmuFormat | PcmaFormat
    transcription: Transcription
    turn_detection: EchoedTurnDetection
    noise_reduction: None = None
    """Always null: no noise filter runs."""


class AudioDescription(BaseModel):
    """``session.audio`` as the server describes it."""

    input: AudioInputDescription


class SessionDescription(BaseModel):
    """A GA transcription session, as sent in ``session.created`` / ``session.updated``."""

    id: str
    object: Literal["realtime.transcription_session"] = "realtime.transcription_session"
    type: Literal["transcription"] = "transcription"
    audio: AudioDescription
    include: Annotated[Include | None, Field(exclude_if=_absent)] = None
    """What the session includes (left out when nothing is)."""


class BetaSessionDescription(BaseModel):
    """A beta transcription session, as sent in ``transcription_session.created`` / ``.updated``."""

    id: str
    object: Literal["realtime.transcription_session"] = "realtime.transcription_session"
    input_audio_format: AudioFormatName
    input_audio_transcription: Transcription
    turn_detection: EchoedTurnDetection
    input_audio_noise_reduction: None = None
    """Always null: no noise filter runs."""
    include: Annotated[Include | None, Field(exclude_if=_absent)] = None
    """What the session includes (left out when nothing is)."""
    modalities: tuple[Literal["text"], ...] = ("text",)

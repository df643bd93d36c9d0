"""Messages of the Baseten-compatible streaming protocol after the metadata (``WS /v1/stream``).

The client sends binary PCM frames and JSON control messages (:class:`ControlMessage`); the
server sends transcriptions, VAD events, ``end_audio`` progress, health replies and errors.
Unknown fields of a control message are ignored (the LiveKit and Go clients send extras).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel


class _Control(BaseModel):
    model_config = ConfigDict(extra="ignore", use_attribute_docstrings=True)


class EndAudio(_Control):
    """No more audio: flush the utterance in progress, answered ``acknowledged``, ``finished``."""

    type: Literal["end_audio"]


class Finalize(_Control):
    """Force an endpoint now: the utterance in progress becomes a final."""

    type: Literal["finalize"]


class KeepAlive(_Control):
    """Keeps an idle stream open; no answer."""

    type: Literal["keepalive"]


class HealthCheckRequest(_Control):
    """Ask whether the stream is healthy."""

    type: Literal["health_check"]
    body: dict[str, Any] | None = None
    """Options such as ``get_partial_interval`` (accepted for compatibility)."""
    timestamp: float | None = None


Control = Annotated[
    EndAudio | Finalize | KeepAlive | HealthCheckRequest, Field(discriminator="type")
]
"""Every control message a stream accepts."""


class ControlMessage(RootModel[Control]):
    """One control message: ``ControlMessage.model_validate(data).root``."""


class WordTimestamp(BaseModel):
    """One word of a segment, in stream time."""

    start_time: float
    end_time: float
    word: str
    prob: float


class TranscriptionSegment(BaseModel):
    """One segment of a transcription, in stream time."""

    start_time: float
    end_time: float
    text: str
    log_prob: float
    word_timestamps: list[WordTimestamp]
    """Filled when the metadata asks for ``show_word_timestamps`` (finals only)."""
    speaker: str | None = None
    speaker_confidence: float | None = None
    possible_hallucination: bool
    """Whisper's own signs of a made-up segment: silence decoded as text, or repetition."""
    beam_results: list[str] = Field(default_factory=list)
    language_code: str | None
    language_prob: float | None


class TranscriptionMessage(BaseModel):
    """A partial or final transcript of one utterance (Baseten's ``StreamingWhisperResult``)."""

    type: Literal["transcription"] = "transcription"
    segments: list[TranscriptionSegment]
    language_code: str | None
    language_prob: float | None
    diarization: list[Any] = Field(default_factory=list)
    timing_info: None = None
    enable_chunk_level_language_detection: bool = False
    audio_length_sec: float
    is_final: bool
    transcription_num: int
    """Number of the utterance; it goes up after each final."""
    next_partial: None = None
    pipeline_latency: float | None
    """Seconds from the decode being due to the message (when the metadata asks for it)."""
    latency_ms: int
    stable_text: str
    """Words that further audio will not change."""
    unstable_text: str


class EndOfAudioTranscription(TranscriptionMessage):
    """The final that ``end_audio`` flushed."""

    is_end_of_audio_flush: Literal[True] = True


class SpeechMessage(BaseModel):
    """VAD heard speech begin or end (stream time, seconds)."""

    type: Literal["speech_started", "speech_stopped"]
    audio_time: float
    transcription_num: int


class EndAudioStatus(BaseModel):
    """Where an ``end_audio`` flush is."""

    status: Literal["acknowledged", "finished"]


class EndAudioMessage(BaseModel):
    """Progress of an ``end_audio`` flush."""

    type: Literal["end_audio"] = "end_audio"
    body: EndAudioStatus


class Health(BaseModel):
    """The answer to a health check."""

    healthy: bool = True


class HealthCheckMessage(BaseModel):
    """Reply to a health check."""

    type: Literal["health_check"] = "health_check"
    body: Health = Field(default_factory=Health)
    timestamp: float
    """Server time (Unix seconds)."""


class ErrorBody(BaseModel):
    """A refused message, or why the stream ends (``recoverable`` false)."""

    error: str
    recoverable: bool = True


class DecodeErrorBody(BaseModel):
    """A decode of the stream failed; the stream goes on."""

    error: str
    code: str
    recoverable: bool = True


class ErrorMessage(BaseModel):
    """An error; only a non-recoverable one ends the stream."""

    type: Literal["error"] = "error"
    body: ErrorBody | DecodeErrorBody

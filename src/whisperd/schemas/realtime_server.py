"""Server events of OpenAI Realtime transcription sessions.

Each event gets a fresh ``event_id``. Where the two protocol generations name an event
differently (``session.*`` or ``transcription_session.*``, ``conversation.item.added`` or
``.created``), ``type`` takes either name.

Reference: https://platform.openai.com/docs/api-reference/realtime-server-events
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from whisperd.schemas.openai import TranscriptLogprob
from whisperd.schemas.realtime_session import BetaSessionDescription, SessionDescription


def _absent(value: object) -> bool:
    return value is None


def new_id(prefix: str) -> str:
    """A fresh id in OpenAI's style: ``{prefix}_`` and 20 hex digits."""
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


class ServerEvent(BaseModel):
    """What every server event carries."""

    event_id: str = Field(default_factory=lambda: new_id("event"))


class SessionEvent(ServerEvent):
    """The session's settings, when it starts and after each update."""

    type: Literal[
        "session.created",
        "session.updated",
        "transcription_session.created",
        "transcription_session.updated",
    ]
    session: SessionDescription | BetaSessionDescription


class SpeechStartedEvent(ServerEvent):
    """Server VAD heard speech begin."""

    type: Literal["input_audio_buffer.speech_started"] = "input_audio_buffer.speech_started"
    audio_start_ms: int
    """Milliseconds of session audio before the turn (prefix padding included)."""
    item_id: str
    """The item the turn will become."""


class SpeechStoppedEvent(ServerEvent):
    """Server VAD heard speech end."""

    type: Literal["input_audio_buffer.speech_stopped"] = "input_audio_buffer.speech_stopped"
    audio_end_ms: int
    item_id: str


class InputAudioBufferCommitted(ServerEvent):
    """A turn was committed and becomes an item."""

    type: Literal["input_audio_buffer.committed"] = "input_audio_buffer.committed"
    item_id: str
    previous_item_id: str | None


class InputAudioBufferCleared(ServerEvent):
    """The uncommitted audio was dropped."""

    type: Literal["input_audio_buffer.cleared"] = "input_audio_buffer.cleared"


class InputAudioContent(BaseModel):
    """The audio part of a user item (its transcript arrives in transcription events)."""

    type: Literal["input_audio"] = "input_audio"
    transcript: str | None = None


class UserItem(BaseModel):
    """A user message item made of one committed turn."""

    id: str
    object: Literal["realtime.item"] = "realtime.item"
    type: Literal["message"] = "message"
    role: Literal["user"] = "user"
    content: list[InputAudioContent] = Field(default_factory=lambda: [InputAudioContent()])


class ConversationItemAdded(ServerEvent):
    """A committed turn was added to the conversation."""

    type: Literal["conversation.item.added", "conversation.item.created"]
    previous_item_id: str | None
    item: UserItem


class TranscriptionDelta(ServerEvent):
    """Newly stable text of an item's transcript."""

    type: Literal["conversation.item.input_audio_transcription.delta"] = (
        "conversation.item.input_audio_transcription.delta"
    )
    item_id: str
    content_index: int = 0
    delta: str
    logprobs: Annotated[list[TranscriptLogprob] | None, Field(exclude_if=_absent)] = None
    """With the session's ``include`` of logprobs: the delta's tokens (left out otherwise, and
    on deltas of words made stable by partials, which are not aligned)."""


class DurationUsage(BaseModel):
    """Audio billed, in whole seconds."""

    type: Literal["duration"] = "duration"
    seconds: int


class TranscriptionCompleted(ServerEvent):
    """An item's final transcript."""

    type: Literal["conversation.item.input_audio_transcription.completed"] = (
        "conversation.item.input_audio_transcription.completed"
    )
    item_id: str
    content_index: int = 0
    transcript: str
    usage: DurationUsage
    logprobs: Annotated[list[TranscriptLogprob] | None, Field(exclude_if=_absent)] = None
    """With the session's ``include`` of logprobs: every token of the transcript."""


class TranscriptionError(BaseModel):
    """Why an item's transcription failed."""

    type: Literal["server_error"] = "server_error"
    code: str
    message: str
    param: str | None = None


class TranscriptionFailed(ServerEvent):
    """An item could not be transcribed; the session goes on."""

    type: Literal["conversation.item.input_audio_transcription.failed"] = (
        "conversation.item.input_audio_transcription.failed"
    )
    item_id: str
    content_index: int = 0
    error: TranscriptionError


class ErrorDetail(BaseModel):
    """What was wrong with a client event, or why the server ends or refuses the session."""

    type: Literal["invalid_request_error", "server_error"] = "invalid_request_error"
    """``server_error`` when the server, not the client, is the cause (full, shutting down)."""
    code: str
    message: str
    param: str | None = None
    """Dotted path of the offending field (``session.audio.input.format``)."""
    event_id: str | None = None
    """The ``event_id`` of the client event at fault."""


class ErrorEvent(ServerEvent):
    """A client event was refused; the session stays open."""

    type: Literal["error"] = "error"
    error: ErrorDetail

"""Client events of OpenAI Realtime transcription sessions, one union parsed once per message.

Reference: https://platform.openai.com/docs/api-reference/realtime-client-events
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, RootModel

from whisperd.schemas.realtime_session import BetaSession, Session


class _ClientEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", use_attribute_docstrings=True)

    event_id: Annotated[str, Field(max_length=512)] | None = None
    """The client's id for this event; an error it causes names it."""


class SessionUpdate(_ClientEvent):
    """Change the session's settings (GA)."""

    type: Literal["session.update"]
    session: Session


class TranscriptionSessionUpdate(_ClientEvent):
    """Change the session's settings (beta)."""

    type: Literal["transcription_session.update"]
    session: BetaSession


MAX_APPEND_CHARACTERS = 15 * 1024 * 1024
"""Most base64 characters one ``input_audio_buffer.append`` may carry: OpenAI's per-event
maximum of 15 MiB ("up to a maximum of 15 MiB", client event ``input_audio_buffer.append``),
counted on the audio as sent."""


def _base64(value: object) -> object:
    if not isinstance(value, str):
        return value
    if len(value) > MAX_APPEND_CHARACTERS:
        raise ValueError(
            f"an append carries at most 15 MiB of audio ({len(value)} characters sent); "
            "send the audio in smaller appends"
        )
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("audio must be base64") from None


class InputAudioBufferAppend(_ClientEvent):
    """Append audio to the input buffer."""

    type: Literal["input_audio_buffer.append"]
    audio: Annotated[bytes, BeforeValidator(_base64)]
    """Base64 audio in the session's input format."""


class InputAudioBufferCommit(_ClientEvent):
    """End the turn: transcribe the buffered audio (needed without server VAD)."""

    type: Literal["input_audio_buffer.commit"]


class InputAudioBufferClear(_ClientEvent):
    """Drop the audio not yet committed."""

    type: Literal["input_audio_buffer.clear"]


ClientEvent = Annotated[
    SessionUpdate
    | TranscriptionSessionUpdate
    | InputAudioBufferAppend
    | InputAudioBufferCommit
    | InputAudioBufferClear,
    Field(discriminator="type"),
]
"""Every client event a transcription session accepts."""


class ClientMessage(RootModel[ClientEvent]):
    """One client event: ``ClientMessage.model_validate(data).root``."""

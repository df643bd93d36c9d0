"""What a Realtime transcription session sends: its session events and its turns' events.

Each turn is an item. While it is spoken, deltas carry newly stable words; when it is final, the
server sends ``input_audio_buffer.committed``, the item, the whole text as one delta if no delta
came before, and ``completed`` with the final transcript.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from whisperd.schemas.openai import usage_seconds
from whisperd.schemas.realtime_server import (
    ConversationItemAdded,
    DurationUsage,
    InputAudioBufferCommitted,
    ServerEvent,
    SessionEvent,
    SpeechStartedEvent,
    SpeechStoppedEvent,
    TranscriptionCompleted,
    TranscriptionDelta,
    TranscriptionError,
    TranscriptionFailed,
    UserItem,
    new_id,
)

if TYPE_CHECKING:
    from whisperd.api.realtime_config import RealtimeConfig
    from whisperd.streaming.session import Failed, Result, SpeechStarted, SpeechStopped


class RealtimeRenderer:
    """OpenAI Realtime events for one session, in the protocol generation it speaks."""

    def __init__(self, *, beta: bool) -> None:
        """Speak the beta protocol's event names if ``beta``."""
        self.beta = beta
        self.items: list[str] = [new_id("item")]
        """Ids of the committed items, then the one in progress."""
        self.sent_delta: dict[str, str] = {}
        """Text already sent as deltas, per item in progress."""

    def session(self, config: RealtimeConfig, session_id: str, *, created: bool) -> SessionEvent:
        """``session.created`` / ``session.updated`` (``transcription_session.*`` in beta)."""
        description = config.describe(session_id, beta=self.beta)
        if self.beta:
            kind = "transcription_session.created" if created else "transcription_session.updated"
            return SessionEvent(type=kind, session=description)
        return SessionEvent(
            type="session.created" if created else "session.updated", session=description
        )

    def speech_started(self, event: SpeechStarted) -> list[SpeechStartedEvent]:
        """``input_audio_buffer.speech_started`` for the item in progress."""
        audio_start_ms = round(event.audio_time * 1000)
        return [SpeechStartedEvent(audio_start_ms=audio_start_ms, item_id=self.items[-1])]

    def speech_stopped(self, event: SpeechStopped) -> list[SpeechStoppedEvent]:
        """``input_audio_buffer.speech_stopped`` for the item in progress."""
        audio_end_ms = round(event.audio_time * 1000)
        return [SpeechStoppedEvent(audio_end_ms=audio_end_ms, item_id=self.items[-1])]

    def failed(self, event: Failed) -> list[TranscriptionFailed]:
        """``conversation.item.input_audio_transcription.failed`` for the item in progress."""
        error = TranscriptionError(code=event.code, message=event.message)
        return [TranscriptionFailed(item_id=self.items[-1], error=error)]

    def result(self, event: Result) -> list[ServerEvent]:
        """A delta of newly stable words, or the events that complete the item."""
        return self._final(event) if event.is_final else self._partial(event)

    def _partial(self, result: Result) -> list[ServerEvent]:
        item = self.items[-1]
        sent = self.sent_delta.get(item, "")
        stable = result.stable
        if not (stable and stable.startswith(sent) and len(stable) > len(sent)):
            return []
        self.sent_delta[item] = stable
        return [TranscriptionDelta(item_id=item, delta=stable[len(sent) :])]

    def _final(self, result: Result) -> list[ServerEvent]:
        item = self.items[-1]
        previous = self.items[-2] if len(self.items) > 1 else None
        text = result.transcript.text
        events: list[ServerEvent] = [
            InputAudioBufferCommitted(item_id=item, previous_item_id=previous),
            ConversationItemAdded(
                type="conversation.item.created" if self.beta else "conversation.item.added",
                previous_item_id=previous,
                item=UserItem(id=item),
            ),
        ]
        if not self.sent_delta.pop(item, ""):
            events.append(TranscriptionDelta(item_id=item, delta=text))
        events.append(
            TranscriptionCompleted(
                item_id=item,
                transcript=text,
                usage=DurationUsage(seconds=usage_seconds(result.duration)),
            )
        )
        self.items.append(new_id("item"))
        return events

"""What a Realtime transcription session sends: its session events and its turns' events.

Each turn (a stream utterance, known by its ``number``) is an item with its own id, which every
event of the turn carries: ``speech_started``, ``speech_stopped``, ``committed``, the item,
its deltas, ``completed`` or ``failed``. A turn is committed when it ends: when server VAD hears
its speech stop, or on the client's ``input_audio_buffer.commit`` (:meth:`RealtimeRenderer.commit`);
``committed`` and the item come then, before the decode, as OpenAI sends them. A turn that the
stream cut at its longest length has no end event, so it is committed just before its
transcript.

Deltas concatenate exactly to the ``completed`` transcript. While the turn is spoken a delta
carries words that have become stable (never retracted, see
:mod:`whisperd.streaming.stabilizer`), all but the last: the final is decoded with the stable
words forced as its prefix, and the decoder may go on inside the last one ("Re" -> "Really"),
but every earlier one is followed by a forced word. The rest of the final transcript follows as
one last delta just before ``completed``.

With the session's ``include`` of ``item.input_audio_transcription.logprobs``, ``completed``
carries every token's log-probability of the final transcript and the last delta those of its
own tokens (:mod:`whisperd.engine.token_logprobs`); deltas of words made stable while the turn
is spoken carry none (partials are not aligned).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from whisperd.audio.formats import logprobs_json
from whisperd.engine.token_logprobs import tail_logprobs
from whisperd.schemas.openai import TranscriptLogprob, usage_seconds
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
    from collections.abc import Sequence

    from whisperd.api.realtime_config import RealtimeConfig
    from whisperd.engine.base import TokenLogprob
    from whisperd.streaming.session import Failed, Result, SpeechStarted, SpeechStopped

logger = logging.getLogger(__name__)

_WORD = re.compile(r"\S+")


@dataclass
class _Item:
    """One turn's item: its id, whether it is committed, the words sent as deltas."""

    id: str = field(default_factory=lambda: new_id("item"))
    committed: bool = False
    sent: list[str] = field(default_factory=list)


def continuation(text: str, sent: Sequence[str]) -> str:
    """What ``text`` (a final transcript) adds after the words ``sent`` already: the characters
    after its ``len(sent)``-th word, whitespace included ("" when it has no more words).

    ``text`` begins with the ``sent`` words whenever the decoder kept its forced prefix; if it
    does not, the sent words stand (they were shown as stable) and the mismatch is logged.
    """
    if not sent:
        return text
    words = list(_WORD.finditer(text))
    if [word.group() for word in words[: len(sent)]] != list(sent):
        logger.warning("a realtime final does not begin with the words sent as deltas")
    if len(words) <= len(sent):
        return ""
    return text[words[len(sent) - 1].end() :]


def _wire(entries: Sequence[TokenLogprob] | None) -> list[TranscriptLogprob] | None:
    if entries is None:
        return None
    return [TranscriptLogprob.model_validate(entry) for entry in logprobs_json(entries)]


class RealtimeRenderer:
    """OpenAI Realtime events for one session, in the protocol generation it speaks."""

    def __init__(self, *, beta: bool) -> None:
        """Speak the beta protocol's event names if ``beta``."""
        self.beta = beta
        self.speaking = False
        """Server VAD heard a turn's speech start and not yet its end."""
        self.stopped_at: float | None = None
        """Stream time (s) where server VAD last ended a turn (its audio is committed)."""
        self._items: dict[int, _Item] = {}
        """Items of the turns in progress or awaiting their transcript, by utterance number."""
        self._last_committed: str | None = None
        self.logprobs = False
        """Finals' events carry token logprobs (the session's ``include``)."""

    def session(self, config: RealtimeConfig, session_id: str, *, created: bool) -> SessionEvent:
        """``session.created`` / ``session.updated`` (``transcription_session.*`` in beta), for
        the settings from now on (whether finals carry logprobs, too)."""
        self.logprobs = config.logprobs
        description = config.describe(session_id, beta=self.beta)
        if self.beta:
            kind = "transcription_session.created" if created else "transcription_session.updated"
            return SessionEvent(type=kind, session=description)
        return SessionEvent(
            type="session.created" if created else "session.updated", session=description
        )

    def item_id(self, number: int) -> str:
        """The id of utterance ``number``'s item (a new one at its first event)."""
        return self._item(number).id

    def _item(self, number: int) -> _Item:
        return self._items.setdefault(number, _Item())

    # -- the turn's boundaries ------------------------------------------------------------

    def speech_started(self, event: SpeechStarted) -> list[SpeechStartedEvent]:
        """``input_audio_buffer.speech_started`` for the turn that begins."""
        self.speaking = True
        audio_start_ms = round(event.audio_time * 1000)
        return [
            SpeechStartedEvent(audio_start_ms=audio_start_ms, item_id=self.item_id(event.number))
        ]

    def speech_stopped(self, event: SpeechStopped) -> list[ServerEvent]:
        """``input_audio_buffer.speech_stopped``, then the turn is committed (server VAD)."""
        self.speaking = False
        self.stopped_at = event.audio_time
        audio_end_ms = round(event.audio_time * 1000)
        stopped = SpeechStoppedEvent(audio_end_ms=audio_end_ms, item_id=self.item_id(event.number))
        return [stopped, *self.commit(event.number)]

    def commit(self, number: int) -> list[ServerEvent]:
        """``input_audio_buffer.committed`` and the item of turn ``number`` (none if it is
        committed already)."""
        item = self._item(number)
        if item.committed:
            return []
        item.committed = True
        previous, self._last_committed = self._last_committed, item.id
        return [
            InputAudioBufferCommitted(item_id=item.id, previous_item_id=previous),
            ConversationItemAdded(
                type="conversation.item.created" if self.beta else "conversation.item.added",
                previous_item_id=previous,
                item=UserItem(id=item.id),
            ),
        ]

    def cleared(self) -> None:
        """The uncommitted audio was dropped: so are the turns not committed."""
        self.speaking = False
        self._items = {number: item for number, item in self._items.items() if item.committed}

    # -- transcripts ----------------------------------------------------------------------

    def result(self, event: Result) -> list[ServerEvent]:
        """A delta of newly stable words, or the events that complete the item."""
        return self._final(event) if event.is_final else self._partial(event)

    def _partial(self, result: Result) -> list[ServerEvent]:
        item = self._item(result.number)
        whole = result.stable.split()[:-1]  # the last stable word may still grow
        if len(whole) <= len(item.sent) or whole[: len(item.sent)] != item.sent:
            return []
        delta = " ".join(whole[len(item.sent) :])
        if item.sent:
            delta = f" {delta}"
        item.sent = whole
        return [TranscriptionDelta(item_id=item.id, delta=delta)]

    def _final(self, result: Result) -> list[ServerEvent]:
        events = self.commit(result.number)
        item = self._items.pop(result.number)
        sent = " ".join(item.sent)
        rest = continuation(result.transcript.text, item.sent)
        entries = result.transcript.logprobs if self.logprobs else None
        if rest:
            tail = None if entries is None else tail_logprobs(entries, rest)
            events.append(TranscriptionDelta(item_id=item.id, delta=rest, logprobs=_wire(tail)))
        events.append(
            TranscriptionCompleted(
                item_id=item.id,
                transcript=sent + rest,
                usage=DurationUsage(seconds=usage_seconds(result.billed_duration)),
                logprobs=_wire(entries),
            )
        )
        return events

    def failed(self, event: Failed) -> list[TranscriptionFailed]:
        """``conversation.item.input_audio_transcription.failed`` for the failed turn's item.

        A committed turn's final failed: its item is done. An uncommitted one's partial
        failed: the item stays, and its final may still complete it.
        """
        item = self._item(event.number)
        if item.committed:
            del self._items[event.number]
        error = TranscriptionError(code=event.code, message=event.message)
        return [TranscriptionFailed(item_id=item.id, error=error)]

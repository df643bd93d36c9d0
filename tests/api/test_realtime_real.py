"""``WS /v1/realtime`` on the real Whisper tiny.en: the words, and turns whose events agree.

Conversations of espeak-ng sentences (known text, two voices, 1 s pauses, longer than server
VAD's 500 ms) are streamed at twice real time with server VAD; a client sends its
``session.update`` again in the middle of a sentence, and a commit after the audio. The
completed transcripts must carry the words (a word error rate bound with room for two or three
misheard words over the rate measured, noted beside each bound), one item per sentence; each
item's deltas must spell its completed transcript exactly and only in whole words; every event
must carry its own item's id; the commit after server VAD committed the last turn is refused as
empty; the update loses no word of the sentence it cut into; and G.711 A-law input at 8 kHz is
heard. The A-law bound counts the reference words heard (substitutions and deletions), not
words added: on narrowband audio the last turn's final sometimes adds a hallucinated phrase.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import soxr
import websockets

from waiting import DEADLINE_S
from whisperd.engine.base import SAMPLE_RATE
from whisperd.testing.speech import (
    SENTENCES,
    SpokenText,
    conversation,
    espeak_available,
    normalize,
)
from whisperd.testing.speech import word_error_rate as wer

if TYPE_CHECKING:
    from conftest import RunningServer

pytestmark = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")

PACE = 2.0
"""Audio seconds sent per wall second."""
CHUNK_S = 0.1
"""Audio per ``input_audio_buffer.append``."""
TRAILING_SILENCE_S = 1.5
"""Silence after the last sentence: server VAD (500 ms) commits the last turn within it."""
COMPLETED = "conversation.item.input_audio_transcription.completed"
DELTA = "conversation.item.input_audio_transcription.delta"


@dataclass
class Turns:
    """Every event one session received, and the reply to a commit sent after the audio."""

    events: list[dict[str, Any]] = field(default_factory=list)
    commit_reply: dict[str, Any] | None = None

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def transcripts(self) -> list[str]:
        return [e["transcript"] for e in self.of_type(COMPLETED)]

    def text(self) -> str:
        return " ".join(self.transcripts())

    def deltas(self) -> dict[str, list[str]]:
        by_item: dict[str, list[str]] = defaultdict(list)
        for event in self.of_type(DELTA):
            by_item[event["item_id"]].append(event["delta"])
        return by_item


def pcm16(samples: np.ndarray) -> bytes:
    """16 kHz float samples as PCM16 at 24 kHz (the Realtime API's only PCM rate)."""
    resampled = soxr.resample(samples, SAMPLE_RATE, 24000)
    return bytes((np.clip(resampled, -1.0, 1.0) * 32767).astype("<i2").tobytes())


def alaw(samples: np.ndarray) -> bytes:
    """16 kHz float samples as G.711 A-law at 8 kHz, encoded by FFmpeg (through PyAV)."""
    import av

    narrow = soxr.resample(samples, SAMPLE_RATE, 8000)
    int16 = (np.clip(narrow, -1.0, 1.0) * 32767).astype(np.int16)
    codec = av.CodecContext.create("pcm_alaw", "w")
    codec.sample_rate, codec.layout, codec.format = 8000, "mono", "s16"
    frame = av.AudioFrame.from_ndarray(int16[None, :], format="s16", layout="mono")
    frame.sample_rate = 8000
    return b"".join(bytes(packet) for packet in [*codec.encode(frame), *codec.encode(None)])


def session_update(audio_format: dict[str, Any], **transcription: Any) -> dict[str, Any]:
    audio_input = {
        "format": audio_format,
        "transcription": {"model": "whisper-1", "language": "en", **transcription},
        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
    }
    return {
        "type": "session.update",
        "session": {"type": "transcription", "audio": {"input": audio_input}},
    }


PCM16 = {"type": "audio/pcm", "rate": 24000}
PCMA = {"type": "audio/pcma"}


@dataclass(frozen=True)
class Plan:
    """What a client sends: its audio (in the session's format), chunked, and when to update."""

    audio: bytes
    bytes_per_second: int
    audio_format: dict[str, Any]
    update_at_s: float | None = None
    """Audio time at which the ``session.update`` is sent again."""


async def stream(url: str, plan: Plan, sentences: int) -> Turns:
    """Send ``plan`` at :data:`PACE`, then a commit; gather events until every sentence's item
    is completed and the commit is answered."""
    turns = Turns()
    chunk = int(plan.bytes_per_second * CHUNK_S)
    async with websockets.connect(url, max_size=None) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        await ws.send(json.dumps(session_update(plan.audio_format)))

        async def send() -> None:
            began = time.perf_counter()
            update_at = plan.update_at_s
            for offset in range(0, len(plan.audio), chunk):
                sent_s = offset / plan.bytes_per_second
                await asyncio.sleep(max(0.0, began + sent_s / PACE - time.perf_counter()))
                if update_at is not None and sent_s >= update_at:
                    await ws.send(json.dumps(session_update(plan.audio_format)))
                    update_at = None
                audio = base64.b64encode(plan.audio[offset : offset + chunk]).decode()
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit", "event_id": "last"}))

        sender = asyncio.create_task(send())
        async with asyncio.timeout(DEADLINE_S + len(plan.audio) / plan.bytes_per_second):
            while len(turns.of_type(COMPLETED)) < sentences or turns.commit_reply is None:
                event = json.loads(await ws.recv())
                if event["type"] == "error" and event["error"].get("event_id") == "last":
                    turns.commit_reply = event
                else:
                    turns.events.append(event)
        await sender
    return turns


def url(server: RunningServer) -> str:
    return server.url.replace("http://", "ws://") + "/v1/realtime?intent=transcription"


def speech(
    sentences: tuple[str, ...],
    voices: tuple[str, ...] = ("en-us", "en-gb"),
    words_per_minute: tuple[int, ...] = (150, 175),
) -> SpokenText:
    """``sentences`` with 1 s pauses, then :data:`TRAILING_SILENCE_S` of silence."""
    spoken = conversation(sentences, voices=voices, words_per_minute=words_per_minute, pause_s=1.0)
    silence = np.zeros(round(TRAILING_SILENCE_S * SAMPLE_RATE), dtype=np.float32)
    return SpokenText(np.concatenate([spoken.samples, silence]), spoken.text, spoken.spans)


UPDATED_SENTENCE = 2
"""The sentence in whose middle the client sends its ``session.update`` again."""
LONG_SENTENCE = (
    "The children played in the garden until it was dark and then they walked home slowly "
    "along the river with their tired old dog."
)
"""Long enough for words to become stable, and be sent as deltas, before its turn ends."""
TURNS = (*SENTENCES[:5], LONG_SENTENCE)


@pytest.fixture(scope="module")
def spoken() -> SpokenText:
    return speech(TURNS)


@pytest.fixture(scope="module")
def pcm_turns(real_server: RunningServer, spoken: SpokenText) -> Turns:
    start, end = spoken.spans[UPDATED_SENTENCE]
    plan = Plan(pcm16(spoken.samples), 48000, PCM16, update_at_s=(start + end) / 2)
    return asyncio.run(stream(url(real_server), plan, len(spoken.spans)))


def heard(reference: str, hypothesis: str) -> float:
    """Share of the reference words that came out (1 - (substitutions + deletions) / words),
    after :func:`~whisperd.testing.speech.normalize`: words added do not count against it."""
    import jiwer

    ref, hyp = " ".join(normalize(reference)), " ".join(normalize(hypothesis))
    measures = jiwer.process_words(ref, hyp or "<empty>")
    return 1 - (measures.substitutions + measures.deletions) / len(ref.split())


def test_the_completed_transcripts_carry_the_words(pcm_turns: Turns, spoken: SpokenText) -> None:
    assert len(pcm_turns.transcripts()) == len(spoken.spans), "one item per sentence"
    assert wer(spoken.text, pcm_turns.text()) <= 0.10, pcm_turns.transcripts()  # 0.035


def test_a_session_update_in_mid_sentence_loses_no_word(pcm_turns: Turns) -> None:
    assert len(pcm_turns.of_type("session.updated")) == 2
    assert len(pcm_turns.of_type("input_audio_buffer.speech_started")) == len(TURNS)
    transcript = pcm_turns.transcripts()[UPDATED_SENTENCE]
    assert heard(SENTENCES[UPDATED_SENTENCE], transcript) >= 0.85, transcript  # 1.0


def test_deltas_spell_each_transcript_exactly_in_whole_words(pcm_turns: Turns) -> None:
    deltas = pcm_turns.deltas()
    for completed in pcm_turns.of_type(COMPLETED):
        sent = deltas[completed["item_id"]]
        transcript = completed["transcript"]
        assert "".join(sent) == transcript, (sent, transcript)
        for count in range(1, len(sent)):
            rest = transcript[len("".join(sent[:count])) :]
            assert rest[:1].isspace(), f"a word cut after {sent[:count]} of {transcript!r}"
    # How many deltas come before the turn ends depends on how many partials the machine keeps
    # up with; tests/test_real_speech.py checks stable words with every partial decoded.


def test_every_event_carries_its_own_items_id(pcm_turns: Turns) -> None:
    order = [e["item_id"] for e in pcm_turns.of_type("input_audio_buffer.speech_started")]
    assert len(order) == len(set(order)) == len(pcm_turns.of_type(COMPLETED))
    for kind in (
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        COMPLETED,
    ):
        assert [e["item_id"] for e in pcm_turns.of_type(kind)] == order, kind
    added = [e["item"]["id"] for e in pcm_turns.of_type("conversation.item.added")]
    assert added == order
    previous = [e["previous_item_id"] for e in pcm_turns.of_type("input_audio_buffer.committed")]
    assert previous == [None, *order[:-1]]
    for index, event in enumerate(pcm_turns.events):
        if event["type"] == "input_audio_buffer.speech_stopped":
            committed = pcm_turns.events[index + 1]
            assert committed["type"] == "input_audio_buffer.committed", "committed at turn end"
            assert committed["item_id"] == event["item_id"]
    assert {e["item_id"] for e in pcm_turns.of_type(DELTA)} <= set(order)


def test_a_commit_after_server_vad_committed_the_turn_is_refused_as_empty(
    pcm_turns: Turns,
) -> None:
    reply = pcm_turns.commit_reply
    assert reply is not None
    assert reply["error"]["code"] == "input_audio_buffer_commit_empty"


def test_a_law_input_is_heard(real_server: RunningServer) -> None:
    spoken = speech(SENTENCES[6:10], voices=("en-us",), words_per_minute=(150,))
    plan = Plan(alaw(spoken.samples), 8000, PCMA)
    turns = asyncio.run(stream(url(real_server), plan, len(spoken.spans)))
    assert heard(spoken.text, turns.text()) >= 0.80, turns.transcripts()  # 0.87

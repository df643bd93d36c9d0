"""Realtime turns over the socket: ids, when turns are committed, the buffer, mid-stream updates.

The server's VAD is the real Silero one, so turns begin and end where the clip's speech does;
messages are handled in order, so everything appended before a commit has been heard when the
commit is. A commit sent after the audio therefore marks the end of what a test waits for.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest
import websockets
from test_realtime import pcm24, url

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterator

    from conftest import RunningServer
    from whisperd.config import Settings
    from whisperd.testing import ScriptedModel


@pytest.fixture(scope="module")
def server(
    settings_for: Callable[..., Settings], serve: Callable[[Settings], Any]
) -> Iterator[RunningServer]:
    """A server whose stream finals hear only their own turn: the scripted model says all its
    words over any audio, so a final decoded with the previous turns' audio as context would
    have most of them cut off as the context's (the real model is tested with context in
    test_realtime_real.py)."""
    with serve(settings_for(stream_final_context_s=0)) as running:
        yield running


COMPLETED = "conversation.item.input_audio_transcription.completed"
DELTA = "conversation.item.input_audio_transcription.delta"
SILENCE_1S = pcm24("silence.wav", silence_s=0)[:10]
"""One second of the quiet clip: server VAD (500 ms) ends a turn within it."""
Events = list[dict[str, Any]]


def update(audio_input: dict[str, Any], **event: Any) -> str:
    session = {"type": "transcription", "audio": {"input": audio_input}}
    return json.dumps({"type": "session.update", "session": session, **event})


def server_vad(silence_ms: int = 500) -> dict[str, Any]:
    return {"type": "server_vad", "silence_duration_ms": silence_ms}


def pcm_input(**settings: Any) -> dict[str, Any]:
    transcription = {"model": "whisper-1", "language": "en"}
    return {
        "format": {"type": "audio/pcm", "rate": 24000},
        "transcription": transcription,
        **settings,
    }


async def recv(ws: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 60))
    return event


async def gather(ws: Any, done: Callable[[Events], bool], limit: int = 500) -> Events:
    """Events until ``done(events)``."""
    events: Events = []
    while not done(events):
        assert len(events) < limit, [e["type"] for e in events]
        events.append(await recv(ws))
    return events


def count(kind: str, n: int = 1) -> Callable[[Events], bool]:
    return lambda events: sum(e["type"] == kind for e in events) >= n


def reply_to(event_id: str) -> Callable[[Events], bool]:
    return lambda events: any(e.get("error", {}).get("event_id") == event_id for e in events)


async def append(ws: Any, chunks: list[str]) -> None:
    for chunk in chunks:
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))


async def commit(ws: Any, event_id: str) -> None:
    await ws.send(json.dumps({"type": "input_audio_buffer.commit", "event_id": event_id}))


async def opened(ws: Any, audio_input: dict[str, Any]) -> None:
    assert (await recv(ws))["type"] == "session.created"
    await ws.send(update(audio_input))
    assert (await recv(ws))["type"] == "session.updated"


def of_type(events: Events, kind: str) -> Events:
    return [e for e in events if e["type"] == kind]


def item_of(event: dict[str, Any]) -> str | None:
    item: str | None = event.get("item_id") or event.get("item", {}).get("id")
    return item


# ---------------------------------------------------------------------------------------------
# Ids and commits


def test_two_turns_each_carry_their_own_id_and_commit_when_speech_stops(
    server: RunningServer, scripted_model: ScriptedModel
) -> None:
    async def scenario() -> tuple[Events, Events]:
        async with websockets.connect(url(server)) as ws:
            await opened(ws, pcm_input(turn_detection=server_vad()))
            await append(ws, pcm24("speech.wav", silence_s=1.0) * 2)
            events = await gather(ws, count(COMPLETED, 2))
            await commit(ws, "after")
            return events, await gather(ws, reply_to("after"))

    events, after = asyncio.run(scenario())
    started = [e["item_id"] for e in of_type(events, "input_audio_buffer.speech_started")]
    assert len(started) == len(set(started)) == 2
    for kind in ("input_audio_buffer.speech_stopped", "input_audio_buffer.committed", COMPLETED):
        assert [e["item_id"] for e in of_type(events, kind)] == started, kind
    assert [e["item"]["id"] for e in of_type(events, "conversation.item.added")] == started
    committed = of_type(events, "input_audio_buffer.committed")
    assert [e["previous_item_id"] for e in committed] == [None, started[0]]
    kinds = [e["type"] for e in events]
    for index, kind in enumerate(kinds):
        if kind == "input_audio_buffer.speech_stopped":
            assert kinds[index + 1 : index + 3] == [
                "input_audio_buffer.committed",
                "conversation.item.added",
            ]
    for done in of_type(events, COMPLETED):
        sent = [e["delta"] for e in of_type(events, DELTA) if e["item_id"] == done["item_id"]]
        assert "".join(sent) == done["transcript"] == scripted_model.text.strip()
    (refusal,) = of_type(after, "error")
    assert refusal["error"]["code"] == "input_audio_buffer_commit_empty"
    assert "no speech" in refusal["error"]["message"]


def test_a_manual_commit_is_committed_at_once_and_empties_the_buffer(
    server: RunningServer,
) -> None:
    async def scenario() -> tuple[Events, Events, Events]:
        async with websockets.connect(url(server)) as ws:
            await opened(ws, pcm_input(turn_detection=None))
            await append(ws, pcm24("speech.wav", silence_s=0))
            await commit(ws, "first")
            turn = await gather(ws, count(COMPLETED))
            await commit(ws, "again")
            again = await gather(ws, reply_to("again"))
            await append(ws, SILENCE_1S)
            await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
            await commit(ws, "cleared")
            return turn, again, await gather(ws, reply_to("cleared"))

    turn, again, cleared = asyncio.run(scenario())
    kinds = [e["type"] for e in turn]
    assert kinds[:2] == ["input_audio_buffer.committed", "conversation.item.added"]
    assert kinds[-1] == COMPLETED
    assert {item_of(e) for e in turn} == {turn[0]["item_id"]}
    for reply in (again[-1], cleared[-1]):
        assert reply["error"]["code"] == "input_audio_buffer_commit_empty"
        assert "buffer only has 0ms of audio" in reply["error"]["message"]
    assert [e["type"] for e in cleared] == ["input_audio_buffer.cleared", "error"]


def test_a_commit_in_mid_speech_ends_the_turn_there(server: RunningServer) -> None:
    speech = pcm24("speech.wav", silence_s=0)

    async def scenario() -> Events:
        async with websockets.connect(url(server)) as ws:
            await opened(ws, pcm_input(turn_detection=server_vad()))
            await append(ws, speech[: len(speech) * 2 // 3])
            await commit(ws, "now")
            return await gather(ws, count(COMPLETED))

    events = asyncio.run(scenario())
    kinds = [e["type"] for e in events if e["type"] != DELTA]
    assert kinds == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        COMPLETED,
    ]
    assert len({item_of(e) for e in events}) == 1
    assert "error" not in kinds


# ---------------------------------------------------------------------------------------------
# session.update in mid-stream


def _speech_with_update(
    server: RunningServer, mid_speech: str | None, finish: Callable[[Any], Any]
) -> Events:
    """Speech and 1 s of silence, with the update ``mid_speech`` sent halfway through the
    speech; then ``finish(ws)`` gathers what the test needs."""
    speech = pcm24("speech.wav", silence_s=0)
    half = len(speech) // 2

    async def scenario() -> Events:
        async with websockets.connect(url(server)) as ws:
            await opened(ws, pcm_input(turn_detection=server_vad()))
            await append(ws, speech[:half])
            if mid_speech is not None:
                await ws.send(mid_speech)
            await append(ws, speech[half:] + SILENCE_1S)
            events: Events = await finish(ws)
            return events

    return asyncio.run(scenario())


async def _turn_then_empty_commit(ws: Any) -> Events:
    events = await gather(ws, count(COMPLETED))
    await commit(ws, "end")
    return events + await gather(ws, reply_to("end"))


async def _commit_the_turn(ws: Any) -> Events:
    await commit(ws, "end")
    return await gather(ws, count(COMPLETED))


def test_an_update_in_mid_speech_keeps_the_buffer_and_the_turn(
    fake_server: RunningServer,
) -> None:
    new_prompt = update(pcm_input(transcription={"language": "en", "prompt": "Kiel"}))
    plain = _speech_with_update(fake_server, None, _turn_then_empty_commit)
    updated = _speech_with_update(fake_server, new_prompt, _turn_then_empty_commit)

    assert len(of_type(updated, "session.updated")) == 1
    for events in (plain, updated):
        assert len(of_type(events, "input_audio_buffer.speech_started")) == 1
        assert len(of_type(events, COMPLETED)) == 1
        assert events[-1]["error"]["code"] == "input_audio_buffer_commit_empty"
    (before,), (after,) = of_type(plain, COMPLETED), of_type(updated, COMPLETED)
    assert after["transcript"] == before["transcript"] != ""
    assert after["usage"] == before["usage"]


def test_an_update_applies_from_then_on(fake_server: RunningServer) -> None:
    manual_turns = update(pcm_input(turn_detection=None))
    events = _speech_with_update(fake_server, manual_turns, _commit_the_turn)

    kinds = [e["type"] for e in events]
    assert "input_audio_buffer.speech_stopped" not in kinds  # VAD no longer ends the turn
    assert "error" not in kinds
    assert kinds.index("session.updated") < kinds.index("input_audio_buffer.committed")
    (done,) = of_type(events, COMPLETED)
    assert done["item_id"] == of_type(events, "input_audio_buffer.speech_started")[0]["item_id"]


def test_a_commit_is_answered_before_the_turn_is_decoded(
    fake_server: RunningServer, engine_gate: threading.Event
) -> None:
    long_turn = pcm24("silence.wav", silence_s=0) * 7  # 35 s: a second 30 s window to decode

    async def scenario() -> tuple[Events, Events]:
        async with websockets.connect(url(fake_server)) as ws:
            await opened(ws, pcm_input(turn_detection=None))
            await append(ws, long_turn)
            engine_gate.clear()  # the decode cannot pass its first window
            try:
                await commit(ws, "c")
                answered = [await recv(ws), await recv(ws)]
            finally:
                engine_gate.set()
            return answered, await gather(ws, count(COMPLETED))

    answered, decoded = asyncio.run(scenario())
    assert [e["type"] for e in answered] == [
        "input_audio_buffer.committed",
        "conversation.item.added",
    ]
    assert decoded[-1]["item_id"] == answered[0]["item_id"]


def test_turning_server_vad_on_in_mid_speech_hears_the_buffered_audio(
    fake_server: RunningServer,
) -> None:
    """The audio appended under manual turns and not committed is heard by the VAD once it is
    turned on: the turn starts where the speech does, not where the update came."""
    speech = pcm24("speech.wav", silence_s=0)
    half = len(speech) // 2

    async def scenario() -> Events:
        async with websockets.connect(url(fake_server)) as ws:
            await opened(ws, pcm_input(turn_detection=None))
            await append(ws, SILENCE_1S + speech[:half])
            await ws.send(update(pcm_input(turn_detection=server_vad())))
            await append(ws, speech[half:] + SILENCE_1S)
            return await gather(ws, count(COMPLETED))

    events = asyncio.run(scenario())
    (started,) = of_type(events, "input_audio_buffer.speech_started")
    assert started["audio_start_ms"] < 2500  # the speech began before the update (3.4 s)
    (stopped,) = of_type(events, "input_audio_buffer.speech_stopped")
    (done,) = of_type(events, COMPLETED)
    assert item_of(started) == item_of(stopped) == item_of(done)
    assert done["usage"]["seconds"] >= 4  # the whole 4.9 s of speech

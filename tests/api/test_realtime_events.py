"""Malformed Realtime client events get an ``error`` event; the session stays open and works."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest
import websockets
from test_realtime import collect, pcm24, url

if TYPE_CHECKING:
    from conftest import RunningServer
    from whisperd.testing import ScriptedModel


def _update(audio_input: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "session.update",
        "session": {"type": "transcription", "audio": {"input": audio_input}},
    }


MANUAL_TURNS = _update(
    {
        "format": {"type": "audio/pcm", "rate": 24000},
        "transcription": {"model": "whisper-1", "language": "en"},
        "turn_detection": None,
    }
)


async def _recv(ws: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 60))
    return event


async def _transcribe(ws: Any) -> str:
    """Configure manual turns, send speech, commit: the completed transcript."""
    await ws.send(json.dumps(MANUAL_TURNS))
    assert (await _recv(ws))["type"] == "session.updated"
    for chunk in pcm24("speech.wav", silence_s=0):
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
    await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
    events = await collect(ws, "conversation.item.input_audio_transcription.completed")
    assert "error" not in [e["type"] for e in events]
    transcript: str = events[-1]["transcript"]
    return transcript


@pytest.mark.parametrize(
    ("audio_input", "param"),
    [
        (
            {"turn_detection": {"type": "server_vad", "threshold": "abc"}},
            "session.audio.input.turn_detection.threshold",
        ),
        ({"turn_detection": "server_vad"}, "session.audio.input.turn_detection"),
        ({"format": "audio/pcm"}, "session.audio.input.format"),
    ],
)
def test_a_malformed_session_update_is_an_error_event(
    server: RunningServer, scripted_model: ScriptedModel, audio_input: dict[str, Any], param: str
) -> None:
    async def scenario() -> tuple[dict[str, Any], str]:
        async with websockets.connect(url(server)) as ws:
            assert (await _recv(ws))["type"] == "session.created"
            await ws.send(json.dumps({**_update(audio_input), "event_id": "bad-1"}))
            error = await _recv(ws)
            return error, await _transcribe(ws)

    error, transcript = asyncio.run(scenario())
    assert error["type"] == "error"
    assert error["event_id"].startswith("event_")
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["param"] == param
    assert error["error"]["event_id"] == "bad-1"
    assert error["error"]["code"] in ("invalid_type", "invalid_value")
    assert transcript == scripted_model.text.strip()


def test_messages_that_are_no_event_get_error_events(
    server: RunningServer, scripted_model: ScriptedModel
) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], str]:
        async with websockets.connect(url(server)) as ws:
            await _recv(ws)
            await ws.send("{not json")
            await ws.send(json.dumps({"type": "conversation.item.create", "event_id": "e9"}))
            await ws.send(json.dumps(["input_audio_buffer.clear"]))
            await ws.send(b"\x00\x01")
            errors = [await _recv(ws) for _ in range(4)]
            return errors, await _transcribe(ws)

    errors, transcript = asyncio.run(scenario())
    assert [e["type"] for e in errors] == ["error"] * 4
    details = [e["error"] for e in errors]
    assert [d["code"] for d in details] == [
        "invalid_json",
        "invalid_event",
        "invalid_event",
        "invalid_event",
    ]
    assert all(d["type"] == "invalid_request_error" for d in details)
    assert details[1]["event_id"] == "e9"
    assert "conversation.item.create" in details[1]["message"]
    assert transcript == scripted_model.text.strip()


def test_a_bad_append_is_refused_and_adds_no_audio(server: RunningServer) -> None:
    async def scenario() -> list[dict[str, Any]]:
        async with websockets.connect(url(server)) as ws:
            await _recv(ws)
            await ws.send(json.dumps(MANUAL_TURNS))
            await _recv(ws)
            bad = {"type": "input_audio_buffer.append", "audio": "@@@", "event_id": "a1"}
            await ws.send(json.dumps(bad))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit", "event_id": "c1"}))
            return [await _recv(ws) for _ in range(2)]

    bad_audio, empty = asyncio.run(scenario())
    assert bad_audio["error"]["param"] == "audio"
    assert bad_audio["error"]["event_id"] == "a1"
    assert empty["error"]["code"] == "input_audio_buffer_commit_empty"
    assert empty["error"]["event_id"] == "c1"

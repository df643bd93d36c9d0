"""Baseten control messages that are not ones get an error message; the stream goes on."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import websockets
from test_stream import METADATA, pcm_chunks, transcriptions, ws_url

if TYPE_CHECKING:
    from conftest import RunningServer
    from whisperd.testing import ScriptedModel

REFUSED = [
    ({"type": "dance"}, "Unhandled message type: 'dance'."),
    ({"terminate_session": True}, "Unhandled message type: None."),
    ([1, 2], "Unhandled message type: None."),
    ({"type": "health_check", "body": "now"}, "'body'"),
]


def test_refused_control_messages_leave_the_stream_working(
    server: RunningServer, scripted_model: ScriptedModel
) -> None:
    async def scenario() -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        async with websockets.connect(ws_url(server)) as ws:
            await ws.send(json.dumps(METADATA))
            for control, _ in REFUSED:
                await ws.send(json.dumps(control))
            await ws.send("{not json")
            for frame in pcm_chunks("speech.wav"):
                await ws.send(frame)
            await ws.send(json.dumps({"type": "end_audio"}))
            while not messages or messages[-1] != {
                "type": "end_audio",
                "body": {"status": "finished"},
            }:
                messages.append(json.loads(await asyncio.wait_for(ws.recv(), 60)))
        return messages

    messages = asyncio.run(scenario())
    errors = messages[: len(REFUSED) + 1]
    assert [e["type"] for e in errors] == ["error"] * (len(REFUSED) + 1)
    assert all(e["body"]["recoverable"] is True for e in errors)
    for error, (_, words) in zip(errors, REFUSED, strict=False):
        assert words in error["body"]["error"]
    assert errors[-1]["body"]["error"] == "Invalid JSON message."
    (final,) = transcriptions(messages, final=True)
    assert final["segments"][0]["text"] == scripted_model.text.strip()
    assert "error" not in [m["type"] for m in messages[len(errors) :]]

"""Which ``intent`` opens a Realtime session: ``transcription`` or none; any other is refused."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest
import websockets
from test_realtime_limits import refusal

from waiting import DEADLINE_S

if TYPE_CHECKING:
    from conftest import RunningServer


def endpoint(server: RunningServer, query: str) -> str:
    return server.url.replace("http://", "ws://") + "/v1/realtime" + query


@pytest.mark.parametrize("query", ["", "?intent=", "?intent=transcription"])
def test_transcription_or_no_intent_opens_a_transcription_session(
    fake_server: RunningServer, query: str
) -> None:
    async def scenario() -> list[dict[str, Any]]:
        async with websockets.connect(endpoint(fake_server, query)) as ws:
            created = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
            return [created, json.loads(await ws.recv())]

    created, cleared = asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S))
    assert created["type"] == "session.created"
    assert created["session"]["type"] == "transcription"
    assert created["session"]["object"] == "realtime.transcription_session"
    assert cleared["type"] == "input_audio_buffer.cleared"


@pytest.mark.parametrize("intent", ["conversation", "realtime", "Transcription"])
def test_any_other_intent_is_refused_naming_it(fake_server: RunningServer, intent: str) -> None:
    error, code = asyncio.run(
        asyncio.wait_for(refusal(endpoint(fake_server, f"?intent={intent}")), DEADLINE_S)
    )
    assert code == 1008
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["code"] == "invalid_intent"
    assert error["error"]["param"] == "intent"
    assert f"intent='{intent}' is not served" in error["error"]["message"]
    assert "?intent=transcription" in error["error"]["message"]

"""Realtime limits: every refusal is an ``error`` event in OpenAI's envelope.

A server at its stream capacity, a connection of another intent and a session past the
longest audio get an ``error`` event with a code, then a close; an append over OpenAI's 15 MiB
gets an ``error`` event and the session goes on.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import TYPE_CHECKING, Any

import pytest
import websockets
from test_realtime import pcm24, url
from test_realtime_turns import (
    COMPLETED,
    append,
    commit,
    count,
    gather,
    opened,
    pcm_input,
    recv,
    server_vad,
    update,
)

from waiting import DEADLINE_S, until, wait_until
from whisperd.schemas.realtime_client import MAX_APPEND_CHARACTERS

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import RunningServer


async def refusal(target: str) -> tuple[dict[str, Any], int | None]:
    """The first event of a connection the server refuses, and its close code."""
    async with websockets.connect(target) as ws:
        error = await recv(ws)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await recv(ws)
    return error, closed.value.rcvd.code if closed.value.rcvd else None


def test_a_full_server_refuses_in_the_realtime_envelope(
    settings_for: Callable[..., Any], serve_fake: Callable[..., Any]
) -> None:
    with serve_fake(settings_for(max_streams=1)) as running:
        admission = running.app.state.service.admission

        async def scenario() -> tuple[dict[str, Any], int | None]:
            async with websockets.connect(url(running)) as holder:
                assert (await recv(holder))["type"] == "session.created"
                await until(lambda: admission.streams == 1, "the first session never opened")
                return await refusal(url(running))

        error, code = asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S))
        wait_until(lambda: admission.streams == 0, "the closed session kept its slot")
    assert code == 1013
    assert error["type"] == "error"
    assert error["event_id"].startswith("event_")
    assert error["error"]["type"] == "server_error"
    assert error["error"]["code"] == "server_busy"
    assert "capacity of 1 stream" in error["error"]["message"]


def test_another_intent_is_refused_in_the_realtime_envelope(fake_server: RunningServer) -> None:
    target = url(fake_server).replace("intent=transcription", "intent=realtime")
    error, code = asyncio.run(refusal(target))
    assert code == 1008
    assert error["type"] == "error"
    assert error["error"]["code"] == "invalid_intent"


def test_an_append_over_15_mib_is_refused_and_the_session_goes_on(
    fake_server: RunningServer,
) -> None:
    too_large = {
        "type": "input_audio_buffer.append",
        "audio": "AAAA" * (MAX_APPEND_CHARACTERS // 4 + 1),
        "event_id": "big",
    }

    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with websockets.connect(url(fake_server), max_size=None) as ws:
            await opened(ws, pcm_input(turn_detection=None))
            await ws.send(json.dumps(too_large))
            error = await recv(ws)
            await append(ws, pcm24("speech.wav", silence_s=0))
            await commit(ws, "after")
            return error, await gather(ws, count(COMPLETED))

    error, events = asyncio.run(scenario())
    assert error["type"] == "error"
    assert error["error"]["param"] == "audio"
    assert error["error"]["code"] == "invalid_value"
    assert error["error"]["event_id"] == "big"
    assert "15 MiB" in error["error"]["message"]
    assert events[-1]["transcript"]


def test_a_session_past_the_longest_audio_is_ended_with_an_error_event(
    settings_for: Callable[..., Any], serve_fake: Callable[..., Any]
) -> None:
    with serve_fake(settings_for(stream_max_seconds=3.0)) as running:

        async def scenario() -> tuple[dict[str, Any], int | None]:
            async with websockets.connect(url(running)) as ws:
                await recv(ws)
                await append(ws, [base64.b64encode(bytes(2 * 24000 * 4)).decode()])  # 4 s
                error = await recv(ws)
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await recv(ws)
            return error, closed.value.rcvd.code if closed.value.rcvd else None

        error, code = asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S))
    assert code == 1008
    assert error["error"]["code"] == "session_expired"
    assert "3 seconds" in error["error"]["message"]


def test_session_updates_hold_the_model_once_and_let_it_go_at_close(
    fake_server: RunningServer,
) -> None:
    def in_use() -> int:
        with fake_server.http() as http:
            (model,) = http.get("/v1/loaded_models").json()["data"]
        return int(model["in_use"])

    async def scenario() -> int:
        async with websockets.connect(url(fake_server)) as ws:
            await opened(ws, pcm_input())
            for prompt in ("one", "two", "three"):
                await ws.send(update(pcm_input(transcription={"prompt": prompt})))
                assert (await recv(ws))["type"] == "session.updated"
            return await asyncio.to_thread(in_use)

    held = asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S))
    assert held == 1
    wait_until(lambda: in_use() == 0, "a closed session still holds the model")


def test_a_session_past_the_longest_audio_transcribes_its_turn_before_closing(
    settings_for: Callable[..., Any], serve_fake: Callable[..., Any]
) -> None:
    speech = pcm24("speech.wav", silence_s=0)  # 4.9 s, no pause

    with serve_fake(settings_for(stream_max_seconds=4.0)) as running:

        async def scenario() -> tuple[list[dict[str, Any]], int | None]:
            async with websockets.connect(url(running)) as ws:
                await opened(ws, pcm_input(turn_detection=server_vad()))
                await append(ws, speech)
                events = await gather(ws, lambda got: bool(got) and got[-1]["type"] == "error")
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await recv(ws)
            return events, closed.value.rcvd.code if closed.value.rcvd else None

        events, code = asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S))
    kinds = [e["type"] for e in events]
    assert code == 1008
    assert events[-1]["error"]["code"] == "session_expired"
    assert kinds.index("input_audio_buffer.committed") < kinds.index(COMPLETED)
    (done,) = [e for e in events if e["type"] == COMPLETED]
    assert done["transcript"]

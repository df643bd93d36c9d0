"""Baseten control messages that are not ones get an error message; the stream goes on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import websockets
from test_stream import METADATA, pcm_chunks, transcriptions, ws_url

from waiting import DEADLINE_S, until
from whisperd.scheduler.batcher import Priority
from whisperd.service import TranscriptionService
from whisperd.testing import FakeEngine

if TYPE_CHECKING:
    from conftest import RunningServer
    from whisperd.config import Settings
    from whisperd.testing import ScriptedModel

REFUSED = [
    ({"type": "dance"}, "Unhandled message type: 'dance'."),
    ({"terminate_session": True}, "Unhandled message type: None."),
    ([1, 2], "A control message must be a JSON object with a type."),
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


class FinalsAtGate(FakeEngine):
    """A fake engine whose stream finals wait until ``gate`` opens."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self.gate = gate

    def transcribe(self, *args: Any, priority: Priority = Priority.INTERACTIVE, **kw: Any) -> Any:
        if priority == Priority.STREAM_FINAL:
            self.gate.wait(60)
        return super().transcribe(*args, priority=priority, **kw)


def test_a_client_waiting_for_owed_results_is_not_idle(
    serve: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    gate = threading.Event()
    settings = settings_for(stream_idle_timeout_s=0.5)
    service = TranscriptionService.create(settings, loader=lambda *_: FinalsAtGate(gate))

    async def scenario(url: str) -> tuple[list[dict[str, Any]], int | None]:
        messages: list[dict[str, Any]] = []
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"whisper_params": {"enable_vad": False}}))
            for frame in pcm_chunks("speech.wav"):
                await ws.send(frame)
            await ws.send(json.dumps({"type": "finalize"}))
            # The final is held for three idle timeouts while the client waits for it.
            await asyncio.sleep(1.5)
            gate.set()
            with contextlib.suppress(websockets.ConnectionClosed):
                while True:
                    messages.append(json.loads(await asyncio.wait_for(ws.recv(), 60)))
            return messages, ws.close_code

    try:
        with serve(settings, service) as running:
            messages, code = asyncio.run(scenario(ws_url(running)))
    finally:
        gate.set()
        service.close()
    assert len(transcriptions(messages, final=True)) == 1, "the owed final came"
    assert code == 1008, "then, owing nothing, the idle stream was closed"


def test_a_client_that_leaves_during_its_flush_frees_its_slot_at_once(
    serve: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    """``end_audio`` waits for the stream's finals; a client gone meanwhile is seen at once
    (the stream reads on while the flush waits), so its slot and its work are let go."""
    gate = threading.Event()
    settings = settings_for()
    service = TranscriptionService.create(settings, loader=lambda *_: FinalsAtGate(gate))

    async def scenario(url: str) -> None:
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"whisper_params": {"enable_vad": False}}))
            for frame in pcm_chunks("speech.wav"):
                await ws.send(frame)
            await ws.send(json.dumps({"type": "end_audio"}))
            acknowledged = json.loads(await asyncio.wait_for(ws.recv(), 60))
            assert acknowledged["body"]["status"] == "acknowledged"
        # the final is still held at the gate: only the client's leaving can free the slot
        await until(lambda: service.admission.streams == 0, "the slot outlived its client")

    try:
        with serve(settings, service) as running:
            asyncio.run(asyncio.wait_for(scenario(ws_url(running)), DEADLINE_S))
    finally:
        gate.set()
        service.close()

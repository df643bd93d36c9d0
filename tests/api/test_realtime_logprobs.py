"""Realtime sessions with ``include: ["item.input_audio_transcription.logprobs"]``: the real
Whisper tiny.en hears espeak-ng speech in manual turns, and the turn's last delta and its
``completed`` event carry token logprobs the openai SDK's event types parse; without the
include there are none, and any other include value is an error event naming the field."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import soxr
import websockets
from openai.types.realtime import (
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
)

from whisperd.engine.base import SAMPLE_RATE
from whisperd.testing.speech import espeak_available, speak

if TYPE_CHECKING:
    from conftest import RunningServer

INCLUDE = "item.input_audio_transcription.logprobs"
SENTENCE = "Please close the window before you go to bed."
COMPLETED = "conversation.item.input_audio_transcription.completed"
DELTA = "conversation.item.input_audio_transcription.delta"


def _url(server: RunningServer) -> str:
    return server.url.replace("http://", "ws://") + "/v1/realtime?intent=transcription"


def _update(include: list[str] | None, *, beta: bool = False) -> dict[str, Any]:
    transcription = {"model": "whisper-1", "language": "en"}
    if beta:
        session: dict[str, Any] = {
            "input_audio_format": "pcm16",
            "input_audio_transcription": transcription,
            "turn_detection": None,
        }
        kind = "transcription_session.update"
    else:
        audio_input = {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": transcription,
            "turn_detection": None,
        }
        session = {"type": "transcription", "audio": {"input": audio_input}}
        kind = "session.update"
    if include is not None:
        session["include"] = include
    return {"type": kind, "session": session, "event_id": "update-1"}


async def _recv(ws: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 120))
    return event


async def _turn(server: RunningServer, update: dict[str, Any], audio: bytes) -> list[Any]:
    """One manual turn: the update's reply, then every event up to the turn's completed one."""
    async with websockets.connect(_url(server), max_size=None) as ws:
        await _recv(ws)  # session.created
        await ws.send(json.dumps(update))
        events = [await _recv(ws)]
        if events[0]["type"] == "error":
            return events
        for offset in range(0, len(audio), 9600):
            chunk = base64.b64encode(audio[offset : offset + 9600]).decode()
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        while events[-1]["type"] != COMPLETED:
            events.append(await _recv(ws))
            assert events[-1]["type"] != "error", events[-1]
    return events


@pytest.fixture(scope="module")
def audio() -> bytes:
    if not espeak_available():
        pytest.skip("espeak-ng is not installed")
    samples = soxr.resample(speak(SENTENCE).samples, SAMPLE_RATE, 24000)
    return bytes((np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes())


@pytest.mark.parametrize("beta", [False, True])
def test_completed_and_last_delta_carry_logprobs(
    real_server: RunningServer, audio: bytes, beta: bool
) -> None:
    events = asyncio.run(_turn(real_server, _update([INCLUDE], beta=beta), audio))
    updated = events[0]
    assert updated["type"].endswith("session.updated")
    assert updated["session"]["include"] == [INCLUDE]  # the session says what it includes
    completed = ConversationItemInputAudioTranscriptionCompletedEvent.model_validate(events[-1])
    assert completed.transcript == SENTENCE
    assert completed.logprobs
    assert "".join(e.token for e in completed.logprobs).strip() == completed.transcript
    assert all(-50 < e.logprob <= 0 for e in completed.logprobs)
    assert [bytes(int(b) for b in e.bytes).decode() for e in completed.logprobs] == [
        e.token for e in completed.logprobs
    ]
    last = ConversationItemInputAudioTranscriptionDeltaEvent.model_validate(
        [e for e in events if e["type"] == DELTA][-1]
    )
    assert last.logprobs
    assert "".join(e.token for e in last.logprobs).strip() == last.delta.strip()
    tail = completed.logprobs[-len(last.logprobs) :]
    assert [(e.token, e.logprob) for e in last.logprobs] == [(e.token, e.logprob) for e in tail]


def test_no_include_no_logprobs(real_server: RunningServer, audio: bytes) -> None:
    events = asyncio.run(_turn(real_server, _update(None), audio))
    assert "include" not in events[0]["session"]
    assert events[-1]["transcript"] == SENTENCE
    assert all("logprobs" not in event for event in events)


@pytest.mark.parametrize("beta", [False, True])
def test_other_include_values_are_an_error_naming_the_field(
    server: RunningServer, beta: bool
) -> None:
    events = asyncio.run(
        _turn(server, _update(["item.input_audio_transcription.words"], beta=beta), b"")
    )
    error = events[0]
    assert error["type"] == "error"
    assert error["error"]["param"] == "session.include[0]"
    assert error["error"]["event_id"] == "update-1"

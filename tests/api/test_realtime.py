"""``WS /v1/realtime?intent=transcription`` with raw events and with the openai SDK."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import openai
import soxr
import websockets

from whisperd.audio.decode import AudioSource, decode_audio
from whisperd.testing import ScriptedModel

if TYPE_CHECKING:
    from conftest import RunningServer

DATA = Path(__file__).parents[1] / "data"


def pcm24(name: str, silence_s: float = 1.0) -> list[str]:
    """A clip as base64 PCM16 at 24 kHz in 100 ms appends, then some silence."""
    samples = decode_audio(AudioSource(DATA / name)).samples
    samples = np.concatenate([samples, np.zeros(int(16000 * silence_s), np.float32)])
    resampled = soxr.resample(samples, 16000, 24000)
    int16 = (np.clip(resampled, -1, 1) * 32767).astype(np.int16)
    return [
        base64.b64encode(int16[i : i + 2400].tobytes()).decode() for i in range(0, len(int16), 2400)
    ]


def url(server: RunningServer) -> str:
    return server.url.replace("http://", "ws://") + "/v1/realtime?intent=transcription"


async def collect(ws: Any, until: str, limit: int = 200) -> list[dict]:
    events = []
    for _ in range(limit):
        event = json.loads(await asyncio.wait_for(ws.recv(), 60))
        events.append(event)
        if event["type"] == until:
            return events
    raise AssertionError(f"no {until} in {[e['type'] for e in events]}")


def test_ga_session_with_server_vad(server: RunningServer, scripted_model: ScriptedModel) -> None:
    async def scenario() -> list[dict]:
        async with websockets.connect(url(server)) as ws:
            created = json.loads(await ws.recv())
            assert created["type"] == "session.created"
            assert created["session"]["type"] == "transcription"
            await ws.send(
                json.dumps(
                    {
                        "type": "session.update",
                        "session": {
                            "type": "transcription",
                            "audio": {
                                "input": {
                                    "format": {"type": "audio/pcm", "rate": 24000},
                                    "transcription": {"model": "whisper-1", "language": "en"},
                                    "turn_detection": {
                                        "type": "server_vad",
                                        "threshold": 0.5,
                                        "prefix_padding_ms": 300,
                                        "silence_duration_ms": 500,
                                    },
                                }
                            },
                        },
                    }
                )
            )
            updated = json.loads(await ws.recv())
            assert updated["type"] == "session.updated"
            for chunk in pcm24("speech.wav"):
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
                await asyncio.sleep(0.01)
            return await collect(ws, "conversation.item.input_audio_transcription.completed")

    events = asyncio.run(scenario())
    types = [e["type"] for e in events]
    assert (
        types.index("input_audio_buffer.speech_started")
        < types.index("input_audio_buffer.speech_stopped")
        < types.index("input_audio_buffer.committed")
    )
    assert "conversation.item.added" in types
    completed = events[-1]
    assert completed["transcript"] == scripted_model.text.strip()
    item = completed["item_id"]
    deltas = "".join(
        e["delta"]
        for e in events
        if e["type"].endswith("transcription.delta") and e["item_id"] == item
    )
    assert scripted_model.text.strip().startswith(deltas.strip())
    started = next(e for e in events if e["type"] == "input_audio_buffer.speech_started")
    assert started["item_id"] == item
    assert 500 < started["audio_start_ms"] < 1500
    assert all(e["event_id"].startswith("event_") for e in events)


def test_beta_session_with_manual_commit(
    server: RunningServer, scripted_model: ScriptedModel
) -> None:
    async def scenario() -> tuple[list[dict], dict, dict]:
        headers = {"OpenAI-Beta": "realtime=v1"}
        async with websockets.connect(url(server), additional_headers=headers) as ws:
            created = json.loads(await ws.recv())
            assert created["type"] == "transcription_session.created"
            await ws.send(json.dumps({"type": "input_audio_buffer.commit", "event_id": "e1"}))
            empty = json.loads(await ws.recv())
            await ws.send(
                json.dumps(
                    {
                        "type": "transcription_session.update",
                        "session": {
                            "input_audio_format": "pcm16",
                            "input_audio_transcription": {"model": "whisper-1", "language": "en"},
                            "turn_detection": None,
                        },
                    }
                )
            )
            assert json.loads(await ws.recv())["type"] == "transcription_session.updated"
            for chunk in pcm24("speech.wav", silence_s=0):
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
            await ws.send(json.dumps({"type": "bogus.event", "event_id": "e2"}))
            bogus = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            events = await collect(ws, "conversation.item.input_audio_transcription.completed")
            return events, empty, bogus

    events, empty, bogus = asyncio.run(scenario())
    assert empty["type"] == "error"
    assert empty["error"]["code"] == "input_audio_buffer_commit_empty"
    assert empty["error"]["event_id"] == "e1"
    assert bogus["error"]["event_id"] == "e2"
    types = [e["type"] for e in events]
    assert "conversation.item.created" in types
    assert "input_audio_buffer.speech_started" not in types  # no server VAD
    assert events[-1]["transcript"] == scripted_model.text.strip()


def test_clear_and_silence(server: RunningServer) -> None:
    async def scenario() -> list[dict]:
        async with websockets.connect(url(server)) as ws:
            await ws.recv()
            for chunk in pcm24("silence.wav", silence_s=0):
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
            await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
            return await collect(ws, "input_audio_buffer.cleared")

    events = asyncio.run(scenario())
    assert [e["type"] for e in events] == ["input_audio_buffer.cleared"]


def test_openai_sdk_realtime_client(server: RunningServer, scripted_model: ScriptedModel) -> None:
    async def scenario() -> str:
        client = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused")
        async with client.realtime.connect(extra_query={"intent": "transcription"}) as connection:
            await connection.session.update(
                session={
                    "type": "transcription",
                    "audio": {
                        "input": {
                            "format": {"type": "audio/pcm", "rate": 24000},
                            "transcription": {"model": "whisper-1", "language": "en"},
                            "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                        }
                    },
                }
            )
            for chunk in pcm24("speech.wav"):
                await connection.input_audio_buffer.append(audio=chunk)
            async for event in connection:
                if event.type == "conversation.item.input_audio_transcription.completed":
                    await client.close()
                    return event.transcript
        raise AssertionError("no transcript")

    assert asyncio.run(scenario()) == scripted_model.text.strip()


def test_browser_key_as_subprotocol(settings_for, serve) -> None:
    async def scenario(url: str, key: str) -> tuple[str | None, str] | int:
        try:
            async with websockets.connect(
                url, subprotocols=["realtime", f"openai-insecure-api-key.{key}"]
            ) as ws:
                return ws.subprotocol, json.loads(await ws.recv())["type"]
        except websockets.InvalidStatus as exc:
            return exc.response.status_code

    with serve(settings_for(api_keys=["browser-key"])) as running:
        target = running.url.replace("http://", "ws://") + "/v1/realtime?intent=transcription"
        accepted = asyncio.run(scenario(target, "browser-key"))
        refused = asyncio.run(scenario(target, "wrong"))
    assert accepted == ("realtime", "session.created")
    assert refused == 401

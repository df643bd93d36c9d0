"""Realtime session settings over the socket: they run as described, or are refused.

G.711 A-law input is decoded and heard, ``semantic_vad`` eagerness sets the silence that ends a
turn (and the session describes the ``server_vad`` settings that run), and noise reduction,
which does not run, is refused with an ``error`` event naming the field.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import soxr
import websockets
from test_realtime import DATA, pcm24, url
from test_realtime_turns import (
    COMPLETED,
    Events,
    append,
    commit,
    count,
    gather,
    of_type,
    recv,
    reply_to,
    update,
)

from whisperd.audio.decode import AudioSource, decode_audio

if TYPE_CHECKING:
    from conftest import RunningServer
    from whisperd.testing import ScriptedModel


def a_law_chunks(name: str, silence_s: float) -> list[str]:
    """A clip as base64 G.711 A-law at 8 kHz (FFmpeg's encoder) in 100 ms appends."""
    import av

    samples = decode_audio(AudioSource(DATA / name)).samples
    samples = np.concatenate([samples, np.zeros(int(16000 * silence_s), np.float32)])
    int16 = (np.clip(soxr.resample(samples, 16000, 8000), -1, 1) * 32767).astype(np.int16)
    codec = av.CodecContext.create("pcm_alaw", "w")
    codec.sample_rate, codec.layout, codec.format = 8000, "mono", "s16"
    frame = av.AudioFrame.from_ndarray(int16[None, :], format="s16", layout="mono")
    frame.sample_rate = 8000
    data = b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode(None)])
    return [base64.b64encode(data[i : i + 800]).decode() for i in range(0, len(data), 800)]


def _turn(server: RunningServer, audio_format: dict[str, Any], chunks: list[str]) -> Events:
    async def scenario() -> Events:
        async with websockets.connect(url(server)) as ws:
            assert (await recv(ws))["type"] == "session.created"
            await ws.send(update({"format": audio_format}))
            updated = await recv(ws)
            await append(ws, chunks)
            return [updated, *await gather(ws, count(COMPLETED))]

    return asyncio.run(scenario())


def test_a_law_input_is_decoded_and_heard(
    server: RunningServer, scripted_model: ScriptedModel
) -> None:
    pcm = _turn(server, {"type": "audio/pcm", "rate": 24000}, pcm24("speech.wav"))
    a_law = _turn(server, {"type": "audio/pcma"}, a_law_chunks("speech.wav", 1.0))

    assert a_law[0]["session"]["audio"]["input"]["format"] == {"type": "audio/pcma"}
    assert of_type(a_law, COMPLETED)[0]["transcript"] == scripted_model.text.strip()
    (pcm_start,), (a_law_start,) = (
        of_type(events, "input_audio_buffer.speech_started") for events in (pcm, a_law)
    )
    assert abs(a_law_start["audio_start_ms"] - pcm_start["audio_start_ms"]) <= 64  # 2 VAD windows


def test_beta_sessions_take_a_law_by_its_beta_name(server: RunningServer) -> None:
    async def scenario() -> dict[str, Any]:
        headers = {"OpenAI-Beta": "realtime=v1"}
        async with websockets.connect(url(server), additional_headers=headers) as ws:
            await recv(ws)
            update = {
                "type": "transcription_session.update",
                "session": {"input_audio_format": "g711_alaw"},
            }
            await ws.send(json.dumps(update))
            return await recv(ws)

    updated = asyncio.run(scenario())
    assert updated["type"] == "transcription_session.updated"
    assert updated["session"]["input_audio_format"] == "g711_alaw"


def pcm24_chunks(samples: np.ndarray) -> list[str]:
    """16 kHz samples as base64 PCM16 at 24 kHz in 100 ms appends."""
    int16 = (np.clip(soxr.resample(samples, 16000, 24000), -1, 1) * 32767).astype(np.int16)
    return [
        base64.b64encode(int16[i : i + 2400].tobytes()).decode() for i in range(0, len(int16), 2400)
    ]


def _turns_with_eagerness(server: RunningServer, eagerness: str) -> tuple[dict[str, Any], Events]:
    """Speech, a pause of about 600 ms, speech and 1.5 s of silence under ``semantic_vad`` of
    ``eagerness``: the ``session.updated`` and every event until a commit after the audio is
    answered."""
    clip = decode_audio(AudioSource(DATA / "speech.wav")).samples
    spoken = clip[16000 : round(16000 * 3.65)]  # the clip speaks from 1.06 s to 3.58 s
    silence = np.zeros(16000 * 3, np.float32)
    samples = np.concatenate([spoken, silence[:8000], spoken, silence[:24000]])

    async def scenario() -> tuple[dict[str, Any], Events]:
        async with websockets.connect(url(server)) as ws:
            await recv(ws)
            turn = {"type": "semantic_vad", "eagerness": eagerness}
            await ws.send(update({"turn_detection": turn}))
            updated = await recv(ws)
            await append(ws, pcm24_chunks(samples))
            await commit(ws, "end")
            return updated, await gather(ws, reply_to("end"))

    return asyncio.run(scenario())


@pytest.mark.parametrize(("eagerness", "silence_ms", "turns"), [("low", 1000, 1), ("high", 250, 2)])
def test_semantic_vad_eagerness_sets_the_silence_that_ends_a_turn(
    fake_server: RunningServer, eagerness: str, silence_ms: int, turns: int
) -> None:
    updated, events = _turns_with_eagerness(fake_server, eagerness)

    assert updated["session"]["audio"]["input"]["turn_detection"] == {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": silence_ms,
    }
    assert len(of_type(events, "input_audio_buffer.committed")) == turns
    assert events[-1]["error"]["code"] == "input_audio_buffer_commit_empty"


@pytest.mark.parametrize(
    ("event", "param"),
    [
        (
            {
                "type": "session.update",
                "session": {
                    "type": "transcription",
                    "audio": {
                        "input": {
                            "format": {"type": "audio/pcmu"},
                            "noise_reduction": {"type": "near_field"},
                        }
                    },
                },
            },
            "session.audio.input.noise_reduction",
        ),
        (
            {
                "type": "transcription_session.update",
                "session": {
                    "input_audio_format": "g711_ulaw",
                    "input_audio_noise_reduction": {"type": "far_field"},
                },
            },
            "session.input_audio_noise_reduction",
        ),
    ],
)
def test_noise_reduction_is_refused_naming_the_field_and_nothing_changes(
    server: RunningServer, event: dict[str, Any], param: str
) -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with websockets.connect(url(server)) as ws:
            await recv(ws)
            await ws.send(json.dumps({**event, "event_id": "nr"}))
            refusal = await recv(ws)
            await ws.send(json.dumps({"type": event["type"], "session": {}}))
            return refusal, await recv(ws)

    refusal, unchanged = asyncio.run(scenario())
    assert refusal["type"] == "error"
    assert refusal["error"]["param"] == param
    assert refusal["error"]["event_id"] == "nr"
    assert refusal["error"]["code"] == "unsupported_value"
    assert "Noise reduction is not supported" in refusal["error"]["message"]
    session = unchanged["session"]
    if "audio" in session:
        assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert session["audio"]["input"]["noise_reduction"] is None
    else:
        assert session["input_audio_format"] == "pcm16"
        assert session["input_audio_noise_reduction"] is None


def test_noise_reduction_null_is_accepted(server: RunningServer) -> None:
    async def scenario() -> dict[str, Any]:
        async with websockets.connect(url(server)) as ws:
            await recv(ws)
            await ws.send(update({"noise_reduction": None}))
            return await recv(ws)

    updated = asyncio.run(scenario())
    assert updated["type"] == "session.updated"
    assert updated["session"]["audio"]["input"]["noise_reduction"] is None

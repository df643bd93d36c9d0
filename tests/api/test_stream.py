"""``WS /v1/stream`` (Baseten protocol) with a real WebSocket client against a real server.

The seed client's session runs on the real scripted model; the tests of framing, audio
encodings, control messages and capacity run on fake engines.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pytest
import websockets

from waiting import DEADLINE_S, until, wait_until
from whisperd.audio.decode import AudioSource, decode_audio
from whisperd.testing import ScriptedModel
from whisperd.testing.fake import WORDS

if TYPE_CHECKING:
    from conftest import RunningServer

DATA = Path(__file__).parents[1] / "data"

# The seed's metadata, verbatim.
SAMPLE_RATE = 16000
CHUNK_SIZE = 512
METADATA = {
    "whisper_params": {
        "audio_language": "en",
    },
    "streaming_params": {
        "encoding": "pcm_s16le",
        "sample_rate": SAMPLE_RATE,
        "enable_partial_transcripts": True,
    },
    "streaming_vad_config": {
        "threshold": 0.5,
        "min_silence_duration_ms": 300,
        "speech_pad_ms": 30,
    },
}


def pcm_chunks(name: str, chunk: int = CHUNK_SIZE, rate: int = SAMPLE_RATE) -> list[bytes]:
    """A test clip as the seed's microphone callback would send it (int16 frames)."""
    samples = decode_audio(AudioSource(DATA / name)).samples
    if rate != SAMPLE_RATE:
        import soxr

        samples = soxr.resample(samples, SAMPLE_RATE, rate)
    int16 = (samples * 32767).astype(np.int16)
    return [int16[i : i + chunk].tobytes() for i in range(0, len(int16), chunk)]


AWAIT_PARTIAL = object()
"""In a client's frames: wait for a partial transcript before sending on (as a microphone
that is slower than the server would)."""


async def run_client(
    url: str,
    frames: list[Any],
    metadata: dict[str, Any] = METADATA,
    headers: dict[str, str] | None = None,
) -> list[dict]:
    """The seed client's send and receive logic, fed from a list instead of a microphone."""
    messages: list[dict] = []
    async with websockets.connect(url, additional_headers=headers or {}) as ws:
        await ws.send(json.dumps(metadata))
        for frame in frames:
            if frame is AWAIT_PARTIAL:
                await _receive_until(ws, messages, lambda m: _is_result(m, final=False))
            else:
                await ws.send(frame)
        await ws.send(json.dumps({"type": "end_audio"}))
        await _receive_until(
            ws,
            messages,
            lambda m: m.get("type") == "end_audio" and m["body"]["status"] == "finished",
        )
    return messages


async def _receive_until(
    ws: websockets.ClientConnection, messages: list[dict], last: Callable[[dict], bool]
) -> None:
    """Receive into ``messages`` up to the first one that is ``last``, within the deadline;
    an error message fails the test at once."""
    try:
        async with asyncio.timeout(DEADLINE_S):
            while not messages or not last(messages[-1]):
                messages.append(json.loads(await ws.recv()))
                if messages[-1].get("type") == "error":
                    pytest.fail(f"the server sent an error: {messages[-1]}")
    except TimeoutError:
        pytest.fail(f"the awaited message never came in {DEADLINE_S:g} s; got {messages}")


def _is_result(message: dict, final: bool) -> bool:
    return message.get("type") == "transcription" and message["is_final"] is final


def ws_url(server: RunningServer) -> str:
    return server.url.replace("http://", "ws://") + "/v1/stream"


def transcriptions(messages: list[dict], final: bool) -> list[dict]:
    return [m for m in messages if _is_result(m, final)]


def refused_metadata(server: RunningServer, metadata: dict) -> tuple[dict, int | None]:
    """The error message a stream opened with ``metadata`` gets, and its close code."""

    async def scenario() -> tuple[dict, int | None]:
        async with websockets.connect(ws_url(server)) as ws:
            await ws.send(json.dumps(metadata))
            error = json.loads(await ws.recv())
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            return error, closed.value.rcvd.code if closed.value.rcvd else None

    return asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S))


def fake_text(text: str) -> bool:
    """Whether ``text`` is what a fake engine transcribes: its words in turn from the first."""
    words = text.split()
    return bool(words) and words == [WORDS[i % len(WORDS)] for i in range(len(words))]


def test_seed_client_gets_partials_then_a_final(
    server: RunningServer, scripted_model: ScriptedModel
) -> None:
    # The client pauses mid-speech until a partial arrives: a partial is due as speech goes on,
    # however fast the frames come and however slow the machine is.
    frames = pcm_chunks("speech.wav")
    half = len(frames) // 2
    messages = asyncio.run(
        run_client(ws_url(server), [*frames[:half], AWAIT_PARTIAL, *frames[half:]])
    )
    (final,) = transcriptions(messages, final=True)
    text = " ".join(s["text"] for s in final["segments"]).strip()
    assert text == scripted_model.text.strip()
    assert final["transcription_num"] == 1
    assert final["language_code"] == "en"
    segment = final["segments"][0]
    assert 0.5 < segment["start_time"] < 1.5  # stream time: the clip opens with ~1 s of quiet
    assert set(segment) >= {
        "start_time",
        "end_time",
        "text",
        "log_prob",
        "word_timestamps",
        "possible_hallucination",
        "language_code",
    }
    partials = transcriptions(messages, final=False)
    assert partials
    assert all(p["transcription_num"] == 1 for p in partials)
    types = [m["type"] for m in messages]
    assert {"type": "end_audio", "body": {"status": "acknowledged"}} in messages
    assert messages[-1] == {"type": "end_audio", "body": {"status": "finished"}}
    assert "speech_started" in types
    assert "speech_stopped" in types


def test_silence_produces_no_text(fake_server: RunningServer) -> None:
    messages = asyncio.run(run_client(ws_url(fake_server), pcm_chunks("silence.wav")))
    assert [m["type"] for m in messages] == ["end_audio", "end_audio"]


def test_frames_of_any_size_mulaw_and_8khz(fake_server: RunningServer) -> None:
    frames = pcm_chunks("speech.wav", chunk=1000, rate=8000)
    samples = np.concatenate([np.frombuffer(f, dtype=np.int16) for f in frames])
    mulaw = _mulaw_encode(samples)
    odd_frames = [mulaw[i : i + 333] for i in range(0, len(mulaw), 333)]
    metadata = {**METADATA, "streaming_params": {"encoding": "pcm_mulaw", "sample_rate": 8000}}
    messages = asyncio.run(run_client(ws_url(fake_server), odd_frames, metadata))
    (final,) = transcriptions(messages, final=True)
    assert fake_text(final["segments"][0]["text"])


def _mulaw_encode(samples: np.ndarray) -> bytes:
    x = samples.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def test_finalize_forces_a_final_mid_speech(fake_server: RunningServer) -> None:
    frames = pcm_chunks("speech.wav")
    half = len(frames) // 2
    finalize = json.dumps({"type": "finalize"})
    messages = asyncio.run(
        run_client(ws_url(fake_server), [*frames[:half], finalize, *frames[half:]])
    )
    finals = transcriptions(messages, final=True)
    assert [f["transcription_num"] for f in finals] == [1, 2]
    assert finals[0]["segments"][0]["end_time"] <= finals[1]["segments"][0]["start_time"] + 2.1


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        ({"whisper_params": {"audio_language": "en", "unknown_knob": 1}}, "unknown_knob"),
        ({"streaming_params": {"encoding": "opus"}}, "encoding"),
        ({"streaming_params": {"sample_rate": 4000}}, "sample_rate"),
        ({"streaming_vad_config": {"threshold": 2}}, "threshold"),
    ],
)
def test_bad_metadata_gets_an_error_and_close_1007(
    fake_server: RunningServer, metadata: dict, problem: str
) -> None:
    error, code = refused_metadata(fake_server, metadata)
    assert error["type"] == "error"
    assert problem in error["body"]["error"]
    assert code == 1007


def test_control_messages(fake_server: RunningServer) -> None:
    async def scenario() -> list[dict]:
        async with websockets.connect(ws_url(fake_server)) as ws:
            await ws.send(json.dumps(METADATA))
            await ws.send(json.dumps({"type": "keepalive"}))
            await ws.send(json.dumps({"type": "health_check", "body": {}}))
            await ws.send(json.dumps({"type": "dance"}))
            await ws.send("{not json")
            return [json.loads(await ws.recv()) for _ in range(3)]

    health, unknown, invalid = asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S))
    assert health["type"] == "health_check"
    assert health["body"]["healthy"] is True
    assert unknown["type"] == "error"
    assert "dance" in unknown["body"]["error"]
    assert invalid["body"]["recoverable"] is True


def test_api_key_is_checked_before_the_socket_is_accepted(settings_for, serve_fake) -> None:
    with serve_fake(settings_for(api_keys=["secret"])) as running:
        with pytest.raises(websockets.InvalidStatus) as refused:
            asyncio.run(run_client(ws_url(running), []))
        messages = asyncio.run(
            run_client(
                ws_url(running),
                pcm_chunks("silence.wav"),
                headers={"Authorization": "Bearer secret"},
            )
        )
    assert refused.value.response.status_code == 401
    assert messages[-1]["body"]["status"] == "finished"


def test_stream_capacity_refuses_clearly_and_dropped_streams_leave_nothing(
    settings_for, serve_fake
) -> None:
    with serve_fake(settings_for(max_streams=2)) as running:
        admission = running.app.state.service.admission

        async def scenario() -> tuple[dict, int | None]:
            url = ws_url(running)
            for _ in range(20):  # open and drop many streams mid-audio
                ws = await websockets.connect(url)
                await ws.send(json.dumps(METADATA))
                await ws.send(pcm_chunks("speech.wav")[5])
                await ws.close()
                await until(lambda: admission.streams == 0, "a dropped stream kept its slot")
            holders = [await websockets.connect(url) for _ in range(2)]
            for ws in holders:
                await ws.send(json.dumps(METADATA))
            await until(lambda: admission.streams == 2, "the two streams never both opened")
            async with httpx.AsyncClient(base_url=running.url) as http:
                status = (await http.get("/status")).json()
            assert status["active_streams"] == 2
            async with websockets.connect(url) as extra:
                error = json.loads(await extra.recv())
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await extra.recv()
            for ws in holders:
                await ws.close()
            return error, closed.value.rcvd.code if closed.value.rcvd else None

        error, code = asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S))
        wait_until(lambda: admission.streams == 0, "the closed streams kept their slots")
    assert code == 1013
    assert "capacity of 2 streams" in error["body"]["error"]

"""Baseten's ``enable_diarization`` on the real tiny.en and speaker encoder: every final
segment carries a ``speaker``, the same voice keeps the same label across the stream."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import websockets

from whisperd.engine.base import SAMPLE_RATE
from whisperd.testing.speech import SENTENCES, SpokenText, conversation, espeak_available

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import RunningServer

pytestmark = [
    pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
pytest.importorskip("scipy")
pytest.importorskip("torch")

METADATA = {
    "whisper_params": {"audio_language": "en", "enable_diarization": True},
    "streaming_params": {"encoding": "pcm_s16le", "sample_rate": SAMPLE_RATE},
    "streaming_vad_config": {"min_silence_duration_ms": 300},
}


async def stream(url: str, samples: np.ndarray, metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """Send all of ``samples`` then ``end_audio``; every message until ``finished``."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    received: list[dict[str, Any]] = []
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps(metadata))
        for offset in range(0, len(pcm), 16_000):
            await ws.send(pcm[offset : offset + 16_000])
        await ws.send(json.dumps({"type": "end_audio"}))
        async with asyncio.timeout(300):
            while True:
                message = json.loads(await ws.recv())
                received.append(message)
                if message == {"type": "end_audio", "body": {"status": "finished"}}:
                    break
    return received


@pytest.fixture(scope="module")
def dialogue() -> SpokenText:
    return conversation(SENTENCES[:4], voices=("en-us+m1", "en-us+f2"), pause_s=1.0)


def test_finals_carry_one_label_per_voice(real_server: RunningServer, dialogue: SpokenText) -> None:
    url = real_server.url.replace("http://", "ws://") + "/v1/stream"
    received = asyncio.run(stream(url, dialogue.samples, METADATA))
    finals = [m for m in received if m.get("type") == "transcription" and m["is_final"]]
    finals += [m for m in received if m.get("type") == "end_of_audio_transcription"]
    segments = [s for m in finals for s in m["segments"] if s["text"].strip()]
    speakers = []
    for start, end in dialogue.spans:
        middle = (start + end) / 2
        nearest = min(segments, key=lambda s: abs((s["start_time"] + s["end_time"]) / 2 - middle))
        speakers.append(nearest["speaker"])
    assert speakers == ["A", "B", "A", "B"]
    partials = [m for m in received if m.get("type") == "transcription" and not m["is_final"]]
    assert all(s["speaker"] is None for m in partials for s in m["segments"])


def test_without_the_speaker_model_the_stream_is_refused(
    serve: Callable[..., Any],
    settings_for: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(__import__("sys").modules, "resemblyzer", None)
    with serve(settings_for()) as server:
        url = server.url.replace("http://", "ws://") + "/v1/stream"

        async def handshake() -> tuple[list[dict[str, Any]], int | None]:
            messages = []
            async with websockets.connect(url) as ws:
                await ws.send(json.dumps(METADATA))
                try:
                    while True:  # the error message comes before the close
                        messages.append(json.loads(await ws.recv()))
                except websockets.ConnectionClosed:
                    return messages, ws.close_code

        messages, code = asyncio.run(handshake())
    assert code == 1007
    assert messages[0]["type"] == "error"
    assert messages[0]["body"]["recoverable"] is False
    assert "pip install 'whisperd[diarize]'" in messages[0]["body"]["error"]

"""Hostile audio over HTTP: too many NaN samples is a 400 ``corrupt_audio``; decoded audio past
the server's memory budget is a 503 with ``Retry-After``; a cut Ogg is a 400 like a cut WAV."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import av
import numpy as np

from waiting import wait_until
from whisperd.config import Settings

if TYPE_CHECKING:
    from conftest import RunningServer

RATE = 16_000


def float_wav(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="wav") as out:
        stream = out.add_stream("pcm_f32le", rate=RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            samples.astype(np.float32).reshape(1, -1), format="flt", layout="mono"
        )
        frame.sample_rate = RATE
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * 0.05


def post(server: RunningServer, data: bytes, **fields: str) -> Any:
    with server.http() as http:
        return http.post(
            "/v1/audio/transcriptions",
            files={"file": ("a.wav", data)},
            data={"model": "whisper-1", **fields},
        )


def test_too_many_nan_samples_is_400_corrupt_audio(fake_server: RunningServer) -> None:
    samples = noise(2.0)
    samples[::20] = np.nan  # 5 %

    response = post(fake_server, float_wav(samples))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "corrupt_audio"
    assert "5.0%) are NaN or infinite" in error["message"]


def test_a_few_nan_samples_are_transcribed_as_strict_json(fake_server: RunningServer) -> None:
    samples = noise(2.0)
    samples[[10, 500, 7000]] = [np.nan, np.inf, -np.inf]

    response = post(fake_server, float_wav(samples), response_format="verbose_json")

    assert response.status_code == 200
    assert "NaN" not in response.text
    assert "Infinity" not in response.text
    assert response.json()["duration"] == 2.0


def test_decoded_audio_past_the_budget_is_503_with_retry_after(
    settings_for: Callable[..., Settings], serve_fake: Callable[..., Any]
) -> None:
    gate = threading.Event()
    statuses: list[int] = []
    with serve_fake(settings_for(max_decoded_audio_seconds=100), gate) as running:
        service = running.app.state.service

        def long_request() -> None:
            statuses.append(post(running, float_wav(noise(90.0)), vad_filter="false").status_code)

        worker = threading.Thread(target=long_request)
        worker.start()
        try:
            wait_until(lambda: service.admission.running, "the long request never ran")
            held = service.decoded_audio.held_seconds
            refused = post(running, float_wav(noise(20.0, seed=1)))
        finally:
            gate.set()
            worker.join()
        accepted = post(running, float_wav(noise(20.0, seed=1)))
    assert held == 90.0
    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) >= 1
    error = refused.json()["error"]
    assert error["code"] == "server_busy"
    assert "decoded audio" in error["message"]
    assert statuses == [200]
    assert accepted.status_code == 200


def test_a_cut_ogg_is_400_truncated_audio(fake_server: RunningServer) -> None:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=48_000, layout="mono")
        samples = (0.3 * np.sin(2 * np.pi * 440.0 * np.arange(48_000 * 4) / 48_000)).astype(
            np.float32
        )
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = 48_000
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    whole = buffer.getvalue()

    assert post(fake_server, whole).status_code == 200
    response = post(fake_server, whole[: len(whole) // 2])

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "truncated_audio"

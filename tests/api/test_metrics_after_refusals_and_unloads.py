"""``/metrics`` after real refusals and model loads and unloads over HTTP: the admission
counter and the loaded-model gauges move by exactly what happened, with bounded labels."""

from __future__ import annotations

import io
import threading
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from waiting import joined, wait_until
from whisperd.config import Settings
from whisperd.testing import ScriptedModel
from whisperd.testing.hub import hub_cache

REPOS = ["Systran/faster-whisper-tiny", "Systran/faster-whisper-base"]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _wav(seconds: float) -> bytes:
    rng = np.random.default_rng(0)
    samples = (rng.standard_normal(int(16000 * seconds)) * 0.05 * 32767).astype(np.int16)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


def _scrape(http: httpx.Client) -> Samples:
    response = http.get("/metrics")
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _series(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (sample, labels) in samples if sample == name]


@pytest.fixture(scope="module")
def cache(scripted_model: ScriptedModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An offline Hub cache holding tiny and base (the scripted model's files)."""
    return hub_cache(tmp_path_factory.mktemp("hub"), scripted_model.path, REPOS)


def test_a_full_server_counts_its_refusal_by_reason(
    serve_fake: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    gate = threading.Event()
    statuses: list[int] = []
    settings = settings_for(max_pending_requests=1)
    with serve_fake(settings, gate) as server, server.http() as http:

        def hold() -> None:
            with server.http() as own:
                answer = own.post(
                    "/v1/audio/transcriptions",
                    files={"file": ("long.wav", _wav(65))},
                    data={"model": "whisper-1", "vad_filter": "false"},
                )
            statuses.append(answer.status_code)

        worker = threading.Thread(target=hold)
        worker.start()
        try:
            wait_until(
                lambda: _value(_scrape(http), "whisperd_requests_in_flight") == 1,
                "the first request was never admitted",
            )
            refused = http.post(
                "/v1/audio/transcriptions",
                files={"file": ("short.wav", _wav(2))},
                data={"model": "whisper-1"},
            )
            assert refused.status_code == 503, refused.text
            assert "retry-after" in refused.headers
            during = _scrape(http)
        finally:
            gate.set()
            joined(worker)
        assert statuses == [200]
        after = _scrape(http)
    assert _value(during, "whisperd_admission_rejections_total", reason="requests") == 1
    for reason in ("wait", "audio", "streams", "decoded_audio"):
        assert _value(during, "whisperd_admission_rejections_total", reason=reason) == 0
    labels = {"method": "POST", "route": "/v1/audio/transcriptions"}
    assert _value(during, "whisperd_http_requests_total", **labels, status="503") == 1
    # The refusal never ran: only the held request's audio was transcribed.
    assert _value(after, "whisperd_audio_seconds_total", priority="interactive") == 65
    assert _value(after, "whisperd_requests_in_flight") == 0


def test_the_loaded_model_gauges_follow_loads_and_unloads(
    serve_fake: Callable[..., Any], settings_for: Callable[..., Settings], cache: Path
) -> None:
    settings = settings_for(model="tiny", models_dir=cache)
    with serve_fake(settings) as server, server.http() as http:
        first = _scrape(http)
        assert http.post("/v1/loaded_models/base").status_code == 200
        loaded = _scrape(http)
        assert http.delete("/v1/loaded_models/base").status_code == 200
        # Refused names make no series: an unknown model and one off the allow-list.
        assert http.post("/v1/loaded_models/no-such-model").status_code == 404
        assert http.post("/v1/loaded_models/org%2Fany-repo").status_code == 404
        unloaded = _scrape(http)
    assert _value(first, "whisperd_models_loaded") == 1
    assert _value(loaded, "whisperd_models_loaded") == 2
    assert _value(unloaded, "whisperd_models_loaded") == 1
    engine = {"device": "cpu", "compute_type": "int8"}
    assert _series(loaded, "whisperd_model_loaded_info") == [
        {"model": "tiny", **engine},
        {"model": "base", **engine},
    ]
    assert _series(unloaded, "whisperd_model_loaded_info") == [{"model": "tiny", **engine}]
    assert _value(loaded, "whisperd_model_load_seconds_count") == 2
    everything = " ".join(value for labels in unloaded for _, value in labels[1])
    assert "no-such-model" not in everything
    assert "any-repo" not in everything

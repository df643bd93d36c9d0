"""End to end on a local Ray: two CPU replicas of the scripted model behind Ray's proxy.

One test (Ray's start and the replicas' dominate its time): requests are spread over both
replicas, each answer names its replica (and ``/status`` and ``/metrics`` say the same), a
transcription, a Baseten stream and a Realtime session work through the proxy, and replicas
asking for GPUs the cluster lacks are refused before anything is deployed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from ray_cluster import (
    SPEECH,
    baseten_stream,
    deployed,
    free_port,
    local_ray,
    ray_settings,
    realtime_transcript,
    replica_of,
)

from whisperd.errors import StartupError
from whisperd.ray_serve.run import deploy
from whisperd.testing import ScriptedModel


def test_two_replicas_serve_http_and_both_streams_through_the_proxy(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    with local_ray(tmp_path / "ray"):
        with pytest.raises(StartupError, match=r"needs 1 GPU\(s\) \(--replica-gpus\)"):
            deploy(ray_settings(scripted_model, free_port(), replica_gpus=1))

        url = deployed(ray_settings(scripted_model, free_port()))
        with httpx.Client(base_url=url, timeout=60) as http:
            seen = set()
            for _ in range(30):
                status = http.get("/status")
                assert status.status_code == 200
                assert status.json()["replica"] == replica_of(status)
                assert status.headers.get_list("x-request-id") == [status.headers["x-request-id"]]
                seen.add(replica_of(status))
                if len(seen) == 2:
                    break
            assert len(seen) == 2, f"30 requests all went to {seen}"

            files = {"file": ("speech.wav", SPEECH.read_bytes(), "audio/wav")}
            answer = http.post("/v1/audio/transcriptions", files=files, data={"model": "whisper-1"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["text"] == scripted_model.text.strip()
            assert replica_of(answer) in seen

            metrics = http.get("/metrics")
            assert f'replica="{replica_of(metrics)}"' in metrics.text
            assert "whisperd_http_requests_total{" in metrics.text

        ws_url = url.replace("http://", "ws://")
        replica, messages = asyncio.run(baseten_stream(ws_url))
        assert replica in seen
        finals = [m for m in messages if m.get("type") == "transcription" and m["is_final"]]
        assert [" ".join(s["text"] for s in f["segments"]).strip() for f in finals] == [
            scripted_model.text.strip()
        ]
        assert asyncio.run(realtime_transcript(ws_url)) == scripted_model.text.strip()

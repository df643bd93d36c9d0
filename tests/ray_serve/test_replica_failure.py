"""A replica killed mid-work, on a local Ray with two CPU replicas and the PostgreSQL store.

Its process is killed (SIGKILL) while it runs a job and holds a stream: the stream ends with
close code 1012 and the replica-gone reason, new requests are answered by live replicas only,
and the job is finished by another replica once its lease expires.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import wave
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
import websockets
from ray_cluster import deployed, free_port, local_ray, pcm16, ray, ray_settings, replica_of

from jobs.postgres_server import postgres_cluster_fixture, postgres_url_fixture  # noqa: F401
from waiting import wait_until
from whisperd.ray_serve.proxy import REPLICA_GONE
from whisperd.testing import ScriptedModel

pytestmark = pytest.mark.slow

_REPEATS = 40
"""Copies of the test speech in the job's audio (about 3.5 minutes: many windows to decode)."""


def _long_wav() -> bytes:
    audio = np.frombuffer(pcm16(16000, seconds_of_quiet=0.3), dtype=np.int16)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(np.tile(audio, _REPEATS).tobytes())
    return out.getvalue()


def _worker_pid(database: str, job_id: str) -> int | None:
    """The process id in the job's worker (``host:pid:suffix``), once a replica runs it."""
    with psycopg.connect(database) as db:
        row = db.execute(
            "SELECT worker FROM whisperd_jobs WHERE id = %s AND status = 'running'", (job_id,)
        ).fetchone()
    return int(row[0].split(":")[1]) if row and row[0] else None


def _pid_of(replica: str) -> int:
    actor = ray.get_actor(f"SERVE_REPLICA::whisperd#whisperd#{replica}", namespace="serve")
    return int(ray.get(actor.__ray_call__.remote(lambda _self: os.getpid())))


async def _open_stream_on(url: str, replica: str) -> websockets.ClientConnection:
    """A Baseten stream (metadata sent) that the proxy gave to ``replica``."""
    metadata = {"streaming_params": {"encoding": "pcm_s16le", "sample_rate": 16000}}
    for _ in range(40):
        ws = await websockets.connect(url + "/v1/stream")
        if replica_of(ws.response) == replica:
            await ws.send(json.dumps(metadata))
            return ws
        await ws.close()
    pytest.fail(f"40 streams never went to {replica}")


async def _close_of(ws: websockets.ClientConnection) -> tuple[int | None, str | None]:
    """Keep the stream fed with quiet until it is closed; its close code and reason."""
    try:
        async with asyncio.timeout(60):
            while True:
                await ws.send(bytes(3200))
                await asyncio.sleep(0.1)
    except websockets.ConnectionClosed as closed:
        frame = closed.rcvd
        return (frame.code, frame.reason) if frame else (None, None)
    return None, None


def test_a_killed_replica_leaves_its_job_to_another_and_closes_its_streams(
    scripted_model: ScriptedModel, tmp_path: Path, postgres_url: str
) -> None:
    settings = ray_settings(
        scripted_model,
        free_port(),
        data_dir=tmp_path / "data",
        database_url=postgres_url,
        job_lease_s=3,
        max_running_jobs=1,
    )
    with local_ray(tmp_path / "ray"):
        url = deployed(settings)
        http = httpx.Client(base_url=url, timeout=60)
        files = {"file": ("long.wav", _long_wav(), "audio/wav")}
        submitted = http.post("/v1/jobs", files=files, data={"response_format": "text"})
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]
        wait_until(lambda: _worker_pid(postgres_url, job_id), "the job never started")
        pid = _worker_pid(postgres_url, job_id)
        names = {replica_of(http.get("/status")) for _ in range(30)}
        assert len(names) == 2
        (doomed,) = [name for name in names if _pid_of(name) == pid]
        (survivor,) = names - {doomed}

        async def kill_during_stream() -> tuple[int | None, str | None]:
            ws = await _open_stream_on(url.replace("http://", "ws://"), doomed)
            closing = asyncio.create_task(_close_of(ws))
            await asyncio.sleep(0.5)
            os.kill(pid, signal.SIGKILL)
            return await closing

        assert asyncio.run(kill_during_stream()) == (1012, REPLICA_GONE)

        answered = [http.get("/status") for _ in range(10)]
        assert [a.status_code for a in answered] == [200] * 10
        assert doomed not in {replica_of(a) for a in answered}

        def finished() -> dict[str, Any] | None:
            job: dict[str, Any] = http.get(f"/v1/jobs/{job_id}").json()
            return job if job["status"] in ("succeeded", "failed", "cancelled") else None

        wait_until(finished, "the killed replica's job never finished", within=240)
        job = finished()
        assert job is not None
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2
        result = http.get(f"/v1/jobs/{job_id}/result")
        assert result.status_code == 200
        assert scripted_model.text.strip().split()[0] in result.text
        assert survivor  # the job's second attempt ran on a live replica: the survivor or
        # the replica Ray started in place of the killed one
        http.close()

"""Two servers share one PostgreSQL database: a job whose server is killed (SIGKILL) mid-run
is taken up and finished by the other once its lease expires.

Each server is a real process on fake engines: the first one's engine holds every window after
the first at a gate that is never opened, so its job is deterministically mid-run when killed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from postgres_server import postgres_cluster_fixture, postgres_url_fixture  # noqa: F401

from waiting import DEADLINE_S, wait_until
from whisperd.audio.decode import AudioSource, decode_audio
from whisperd.audio.formats import to_json
from whisperd.engine.base import Transcript
from whisperd.engine.options import TranscribeOptions
from whisperd.testing import FakeEngine, ScriptedModel

SPEECH = (Path(__file__).parents[1] / "data" / "speech.wav").read_bytes()
_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")

# A server on fake engines; with "stuck", every window after the first waits on a gate that
# is never opened.
_SERVER = """
import sys, threading
import uvicorn
from whisperd.app import create_app
from whisperd.config import Settings
from whisperd.service import TranscriptionService
from whisperd.testing import fake_loader

settings = Settings(_env_file=None)
gate = threading.Event() if sys.argv[1] == "stuck" else None
loader = fake_loader(gate=gate, gate_timeout_s=3600.0)
service = TranscriptionService.create(settings, loader=loader)
uvicorn.run(create_app(settings, service=service), host="127.0.0.1", port=0, log_level="info")
"""


def _expected(**options: Any) -> Transcript:
    """What a fake engine makes of the speech: the result a finished job must hold."""
    samples = decode_audio(AudioSource(SPEECH)).samples
    return FakeEngine().transcribe(samples, TranscribeOptions(**options))


@dataclass
class Server:
    """A server process and where it listens."""

    process: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def job(self, job_id: str) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/v1/jobs/{job_id}", timeout=DEADLINE_S)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@contextmanager
def _serve(mode: str, env: dict[str, str], log_dir: Path) -> Iterator[Server]:
    log = log_dir / f"server-{mode}-{uuid.uuid4().hex}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", _SERVER, mode], env=env, stdout=out, stderr=out
        )
    server = Server(process, log)
    try:
        wait_until(
            lambda: _LISTENING.search(log.read_text()) or process.poll() is not None,
            "the server did not start",
        )
        match = _LISTENING.search(log.read_text())
        assert match, log.read_text()
        server.url = f"http://127.0.0.1:{match[1]}"
        yield server
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def _environment(model: ScriptedModel, data_dir: Path, database_url: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("WHISPERD_")}
    env.update(
        {
            "WHISPERD_MODEL": str(model.path),
            "WHISPERD_DEVICE": "cpu",
            "WHISPERD_COMPUTE_TYPE": "int8",
            "WHISPERD_OFFLINE": "true",
            "WHISPERD_DATA_DIR": str(data_dir),
            "WHISPERD_DATABASE_URL": database_url,
            "WHISPERD_JOB_LEASE_S": "1.0",
            "WHISPERD_MAX_RUNNING_JOBS": "1",
        }
    )
    return env


def test_a_killed_servers_job_is_finished_by_the_other_server(
    scripted_model: ScriptedModel, postgres_url: str, tmp_path: Path
) -> None:
    env = _environment(scripted_model, tmp_path / "shared-data", postgres_url)
    with _serve("stuck", env, tmp_path) as doomed:
        files = {"file": ("speech.wav", SPEECH, "audio/wav")}
        # 1 s windows: the first is transcribed, the second waits at the gate.
        response = httpx.post(
            f"{doomed.url}/v1/jobs", files=files, data={"chunk_length": "1"}, timeout=DEADLINE_S
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        wait_until(
            lambda: doomed.job(job_id)["progress"]["done_seconds"] > 0,
            "the job's first window was not transcribed",
        )
        assert doomed.job(job_id)["status"] == "running"
        doomed.process.kill()  # SIGKILL: no release, no cleanup; its lease just stops
        doomed.process.wait()
    with _serve("working", env, tmp_path) as survivor:
        wait_until(
            lambda: survivor.job(job_id)["status"] in ("succeeded", "failed"),
            "the other server did not finish the job",
        )
        job = survivor.job(job_id)
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2
        result = httpx.get(f"{survivor.url}/v1/jobs/{job_id}/result", timeout=DEADLINE_S)
        assert result.status_code == 200, result.text
        assert result.json() == to_json(_expected(chunk_length=1))

"""In-process servers with jobs on (a data directory) on fake engines, for the jobs tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from waiting import joined, wait_until
from whisperd.app import create_app
from whisperd.config import Settings
from whisperd.service import TranscriptionService
from whisperd.testing import fake_loader

DATA = Path(__file__).parents[1] / "data"
SPEECH = (DATA / "speech.wav").read_bytes()


@dataclass
class JobServer:
    """A fake-engine server with jobs on, and a client for it."""

    app: FastAPI
    http: httpx.Client
    data_dir: Path

    def submit(
        self, audio: bytes = SPEECH, key: str | None = None, **fields: Any
    ) -> httpx.Response:
        """POST /v1/jobs with ``audio`` as the upload and ``fields`` as form fields."""
        headers = {"authorization": f"Bearer {key}"} if key else {}
        files = {"file": ("audio.wav", audio, "audio/wav")}
        data = {name: str(value) for name, value in fields.items()}
        return self.http.post("/v1/jobs", files=files, data=data, headers=headers)

    def job(self, job_id: str, key: str | None = None) -> dict[str, Any]:
        """GET /v1/jobs/{id}, which must answer 200."""
        response = self.http.get(f"/v1/jobs/{job_id}", headers=_auth(key))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def until(self, job_id: str, predicate: Callable[[dict[str, Any]], bool], what: str) -> None:
        """Wait until the job satisfies ``predicate``."""
        wait_until(lambda: predicate(self.job(job_id)), f"job {job_id}: {what}")

    def finished(self, job_id: str) -> dict[str, Any]:
        """Wait for the job to finish; its object."""
        self.until(job_id, lambda job: job["status"] in ("succeeded", "failed", "cancelled"), "end")
        return self.job(job_id)

    def audio_files(self) -> list[str]:
        """Names of the spooled audio files."""
        return sorted(p.name for p in (self.data_dir / "audio").iterdir())


def _auth(key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"} if key else {}


@contextmanager
def serve_jobs(
    settings: Settings, gate: threading.Event | None, *, real: bool = False
) -> Iterator[JobServer]:
    """Run a fake-engine server on ``settings`` (``gate`` holds the engines' windows after the
    first until it is set), or with ``real`` the settings' own engine (a real model), and
    yield it with a client."""
    loader = None if real else fake_loader(gate=gate)
    service = TranscriptionService.create(settings, loader=loader)
    app = create_app(settings, service=service)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), "the test server did not start")
        assert server.started, "the test server stopped while it started"
        wait_until(lambda: service.readiness != "loading", "the default model did not load")
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            yield JobServer(app, http, settings.data_dir or Path("/nonexistent"))
    finally:
        server.should_exit = True
        joined(thread)
        service.close()

"""Jobs survive a server killed with SIGKILL: the real ``whisperd serve`` on the real Whisper
tiny.en is killed while a job runs; after a restart every job finishes once, with the words
that were spoken, and none is lost or duplicated. Also: a data directory that cannot be
written stops ``serve`` before it listens."""

from __future__ import annotations

import base64
import re
import resource
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from waiting import wait_until
from whisperd.testing import ScriptedModel
from whisperd.testing.speech import espeak_available, speak, word_error_rate

_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
_TEXT = (
    "The weather is nice today. We are going to the park in the afternoon. My brother likes "
    "to read books about history. Please close the door when you leave the room."
)
_FIELDS = {"response_format": "text", "language": "en"}
_JOBS = 4


def _command(model: Path, data_dir: Path, *flags: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "whisperd",
        "serve",
        "--model",
        str(model),
        "--port",
        "0",
        "--device",
        "cpu",
        "--compute-type",
        "int8",
        "--offline",
        "--data-dir",
        str(data_dir),
        *flags,
    ]


@contextmanager
def _server(
    command: list[str], log: Path, *, max_file_bytes: int | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    def limit_files() -> None:
        # A file-size limit makes writes fail as a full disk does (EFBIG), without root.
        if max_file_bytes is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=out, preexec_fn=limit_files)
    try:
        wait_until(
            lambda: _LISTENING.search(log.read_text()) or process.poll() is not None,
            "the server did not start",
        )
        match = _LISTENING.search(log.read_text())
        assert match, log.read_text()
        url = f"http://127.0.0.1:{match[1]}"
        wait_until(lambda: _healthy(url), "the model did not load")
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=30).status_code == 200
    except httpx.TransportError:
        return False


def _jobs(url: str) -> list[dict[str, Any]]:
    body: dict[str, Any] = httpx.get(f"{url}/v1/jobs", params={"limit": 100}, timeout=30).json()
    return list(body["data"])


@pytest.mark.skipif(not espeak_available(), reason="needs espeak-ng")
def test_jobs_of_a_killed_server_finish_once_after_a_restart(
    real_model: Path, tmp_path: Path
) -> None:
    spoken = speak(_TEXT)
    data_dir = tmp_path / "data"
    flags = ("--job-lease-s", "1.5", "--max-running-jobs", "1")
    command = _command(real_model, data_dir, *flags)
    with _server(command, tmp_path / "first.log") as (process, url):
        for number in range(_JOBS):
            response = httpx.post(
                f"{url}/v1/jobs",
                files={"file": ("speech.wav", spoken.wav_bytes(), "audio/wav")},
                data={
                    "response_format": "text",
                    "language": "en",
                    "metadata": f'{{"n": {number}}}',
                },
                headers={"idempotency-key": f"speech-{number}"},
                timeout=60,
            )
            assert response.status_code == 202, response.text
        wait_until(lambda: any(job["status"] == "running" for job in _jobs(url)), "no job started")
        process.send_signal(signal.SIGKILL)
        process.wait()
    before = _jobs_after_kill(data_dir)
    killed = [job_id for job_id, status in before.items() if status == "running"]
    assert len(killed) == 1

    with _server(command, tmp_path / "second.log") as (_, url):
        wait_until(
            lambda: all(job["status"] == "succeeded" for job in _jobs(url)),
            "the jobs did not all succeed after the restart",
        )
        jobs = _jobs(url)
        assert sorted(job["metadata"]["n"] for job in jobs) == list(range(_JOBS))
        assert {job["id"] for job in jobs} == set(before)
        attempts = {job["id"]: job["attempts"] for job in jobs}
        assert attempts[killed[0]] == 2
        assert sorted(attempts.values()) == [1] * (_JOBS - 1) + [2]
        texts = [httpx.get(f"{url}/v1/jobs/{job['id']}/result", timeout=30).text for job in jobs]
        # The same audio through the synchronous route, once nothing else runs.
        direct = httpx.post(
            f"{url}/v1/audio/transcriptions",
            files={"file": ("speech.wav", spoken.wav_bytes(), "audio/wav")},
            data=_FIELDS,
            timeout=120,
        ).text
    assert texts == [direct] * _JOBS
    assert "Traceback" not in (tmp_path / "second.log").read_text()
    assert word_error_rate(_TEXT, direct) < 0.3, direct
    assert list((data_dir / "audio").iterdir()) == []


def _jobs_after_kill(data_dir: Path) -> dict[str, str]:
    """Job ids and states as the killed server left them in its database."""
    import sqlite3

    with sqlite3.connect(data_dir / "jobs.sqlite3") as db:
        return dict(db.execute("SELECT id, status FROM jobs").fetchall())


def test_serve_refuses_a_data_directory_it_cannot_write(real_model: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = subprocess.run(
        _command(real_model, blocker / "data"), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert "cannot be written" in errors[0]
    assert "Uvicorn running" not in done.stderr


def test_serve_refuses_a_database_it_cannot_open(real_model: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "jobs.sqlite3").write_bytes(uuid.uuid4().bytes * 512)  # not a database
    done = subprocess.run(
        _command(real_model, data_dir), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert "job database" in errors[0]


def test_a_full_disk_refuses_the_job_with_507_and_keeps_nothing(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    command = _command(scripted_model.path, data_dir, "--max-running-jobs", "0")
    audio = base64.b64encode(bytes(3_000_000)).decode()
    with _server(command, tmp_path / "serve.log", max_file_bytes=1_000_000) as (_, url):
        response = httpx.post(f"{url}/v1/jobs", data={"audio_base64": audio}, timeout=60)
        assert response.status_code == 507, response.text
        error = response.json()["error"]
        assert (error["code"], error["type"]) == ("insufficient_storage", "server_error")
        assert "no room" in error["message"]
        assert _jobs(url) == []
    assert list((data_dir / "audio").iterdir()) == []


def test_two_servers_sharing_a_data_directory_run_each_job_once(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    command = _command(scripted_model.path, data_dir, "--max-running-jobs", "1")
    speech = (Path(__file__).parents[1] / "data" / "speech.wav").read_bytes()
    with (
        _server(command, tmp_path / "a.log") as (_, a),
        _server(command, tmp_path / "b.log") as (_, b),
    ):
        for number in range(6):
            response = httpx.post(
                f"{(a, b)[number % 2]}/v1/jobs",
                files={"file": ("speech.wav", speech, "audio/wav")},
                data={"response_format": "text", "metadata": f'{{"n": {number}}}'},
                timeout=60,
            )
            assert response.status_code == 202, response.text
        wait_until(
            lambda: all(job["status"] == "succeeded" for job in _jobs(b)),
            "the jobs did not all succeed",
        )
        jobs = _jobs(a)
        assert sorted(job["metadata"]["n"] for job in jobs) == list(range(6))
        assert [job["attempts"] for job in jobs] == [1] * 6
        texts = {httpx.get(f"{b}/v1/jobs/{job['id']}/result", timeout=30).text for job in jobs}
    assert len(texts) == 1

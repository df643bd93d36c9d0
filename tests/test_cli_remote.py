"""``whisperd transcribe --server``: files transcribed as jobs on a real ``whisperd serve``
(the scripted random-weight model, jobs in a temporary data directory) write the same files as
the local command; a second run finds its jobs again; an unreachable server, a wrong API key
and a failed job are one error per file; Ctrl-C cancels the jobs it submitted."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from served import served
from waiting import DEADLINE_S, wait_until
from whisperd.cli import _transcribe_command, cli
from whisperd.testing import ScriptedModel

DATA = Path(__file__).parent / "data"
_KEY = "remote-test-key"
_OPTIONS = ("-f", "all", "--word-timestamps", "--beam-size", "1", "--language", "en")


@contextmanager
def _serve(model: ScriptedModel, base: Path, *flags: str) -> Iterator[str]:
    """Run ``whisperd serve`` with jobs in ``base/data`` (API key :data:`_KEY`); its URL."""
    command = [sys.executable, "-m", "whisperd", "serve", "--model", str(model.path)]
    command += ["--port", "0", "--device", "cpu", "--compute-type", "int8", "--offline"]
    command += ["--data-dir", str(base / "data"), "--api-key", _KEY, *flags]
    with served(command, base / "serve.log") as url:
        yield url


@pytest.fixture(scope="module")
def server(
    scripted_model: ScriptedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A server that runs one job at a time (as the local command runs one file)."""
    with _serve(
        scripted_model, tmp_path_factory.mktemp("server"), "--max-running-jobs", "1"
    ) as url:
        yield url


def _jobs(url: str) -> list[dict[str, Any]]:
    headers = {"authorization": f"Bearer {_KEY}"}
    body = httpx.get(f"{url}/v1/jobs", params={"limit": 100}, headers=headers, timeout=30)
    assert body.status_code == 200, body.text
    return list(body.json()["data"])


def _environment(api_key: str | None) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("WHISPERD_")}
    if api_key is not None:
        environment["WHISPERD_API_KEY"] = api_key
    return environment


def _transcribe(*args: str, api_key: str | None = _KEY) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "whisperd", "transcribe", *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=DEADLINE_S * 2, env=_environment(api_key)
    )


def _inputs(folder: Path) -> list[str]:
    folder.mkdir()
    shutil.copy(DATA / "speech.wav", folder / "a.wav")
    shutil.copy(DATA / "speech.mp3", folder / "b.mp3")
    return [str(folder / "a.wav"), str(folder / "b.mp3")]


def _outputs(folder: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(folder.iterdir())}


def _failures(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("failed ")]


def test_the_files_are_those_the_local_command_writes_and_a_rerun_submits_nothing(
    server: str, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    inputs = _inputs(tmp_path / "in")
    remote = _transcribe(*inputs, *_OPTIONS, "-o", str(tmp_path / "remote"), "--server", server)
    assert remote.returncode == 0, remote.stderr
    assert "2 of 2 file(s) transcribed" in remote.stderr
    assert re.search(r"a\.wav: [\d.]+ s of audio", remote.stderr), remote.stderr
    assert "b.mp3: done" in remote.stderr
    local = _transcribe(
        *inputs,
        *_OPTIONS,
        "-o",
        str(tmp_path / "local"),
        "--model",
        str(scripted_model.path),
        "--device",
        "cpu",
        "--compute-type",
        "int8",
        "--offline",
    )
    assert local.returncode == 0, local.stderr
    expected = _outputs(tmp_path / "local")
    assert len(expected) == 12  # six formats of two files
    assert _outputs(tmp_path / "remote") == expected
    assert '"words": [{"word": ' in expected["a.verbose.json"]

    jobs = _jobs(server)
    again = _transcribe(*inputs, *_OPTIONS, "-o", str(tmp_path / "again"), "--server", server)
    assert again.returncode == 0, again.stderr
    assert _outputs(tmp_path / "again") == expected
    assert _jobs(server) == jobs  # the same jobs, none new


def test_an_unreachable_server_is_one_error_per_file(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    done = _transcribe(*_inputs(tmp_path / "in"), "-o", str(tmp_path / "out"), "--server", url)
    assert done.returncode == 1, done.stderr
    failures = _failures(done.stderr)
    assert len(failures) == 2, done.stderr
    for failure, name in zip(failures, ("a.wav", "b.mp3"), strict=True):
        assert failure.startswith(
            f"failed {tmp_path / 'in' / name}: Cannot reach the server at {url}"
        )
    assert not (tmp_path / "out").exists()


def test_a_wrong_api_key_is_refused_with_the_servers_message(server: str, tmp_path: Path) -> None:
    done = _transcribe(
        *_inputs(tmp_path / "in"), "-o", str(tmp_path / "out"), "--server", server, api_key="wrong"
    )
    assert done.returncode == 1, done.stderr
    failures = _failures(done.stderr)
    assert len(failures) == 2, done.stderr
    assert all(
        f.endswith(f": Incorrect API key provided. (HTTP 401 from {server})") for f in failures
    ), failures


def test_a_job_that_fails_is_its_files_error_and_the_others_are_written(
    server: str, tmp_path: Path
) -> None:
    inputs = _inputs(tmp_path / "in")
    bad = tmp_path / "in" / "bad.wav"
    bad.write_text("this is not audio")
    done = _transcribe(*inputs, str(bad), "-o", str(tmp_path / "out"), "--server", server)
    assert done.returncode == 1, done.stderr
    failures = _failures(done.stderr)
    assert len(failures) == 1, done.stderr
    assert failures[0].startswith(f"failed {bad}: ")
    assert "audio" in failures[0].lower()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt", "b.txt"]
    assert "2 of 3 file(s) transcribed" in done.stderr


def test_ctrl_c_cancels_the_submitted_jobs_and_exits_130(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    # A server that runs no job: the submitted jobs wait in the queue until cancelled.
    with _serve(scripted_model, tmp_path, "--max-running-jobs", "0") as url:
        command = [sys.executable, "-m", "whisperd", "transcribe", *_inputs(tmp_path / "in")]
        command += ["-o", str(tmp_path / "out"), "--server", url]
        log = tmp_path / "transcribe.log"
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=out, env=_environment(_KEY))
        try:
            wait_until(lambda: len(_jobs(url)) == 2, "the jobs were not submitted")
            process.send_signal(signal.SIGINT)
            code = process.wait(timeout=DEADLINE_S)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        jobs = _jobs(url)
    stderr = log.read_text()
    assert code == 130, stderr
    assert sorted(job["status"] for job in jobs) == ["cancelled", "cancelled"]
    assert "interrupted" in stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ("--server", "http://127.0.0.1:1", "--device", "cpu", "--offline"),
            "--device, --offline are",
        ),
        (("--server", "127.0.0.1:8000"), "--server takes an http(s) URL"),
        (("--api-key", "k"), "--api-key is the key of a --server"),
    ],
)
def test_flags_that_do_not_go_with_a_server_are_usage_errors(
    flags: tuple[str, ...], message: str
) -> None:
    cli.add_command(_transcribe_command())
    done = CliRunner().invoke(cli, ["transcribe", str(DATA / "speech.wav"), *flags])
    assert done.exit_code == 2, done.output
    assert message in done.output

"""``whisperd serve --ray`` from the command line: a configuration that cannot work gives one
clear error line and exit code 2, never a hang (the checks that need no cluster run before Ray
starts); a working one serves until SIGTERM, then stops with 0 and leaves no Ray process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from ray_cluster import free_port, processes_under, ray_environment, short_path

from waiting import wait_until
from whisperd.cli import cli
from whisperd.testing import ScriptedModel


def _serve(*args: str) -> Result:
    return CliRunner().invoke(cli, ["serve", "--ray", "--port", "0", *args])


def test_zero_replicas_is_a_usage_error() -> None:
    result = _serve("--replicas", "0")
    assert result.exit_code == 2
    (line,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert "WHISPERD_REPLICAS" in line
    assert "greater than or equal to 1" in line


def test_fewer_max_replicas_than_replicas_is_a_usage_error() -> None:
    result = _serve("--replicas", "3", "--max-replicas", "2")
    assert result.exit_code == 2
    assert "max_replicas (2) is below replicas (3)" in result.output


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (("--replicas", "2", "--data-dir", "{tmp}"), "need the PostgreSQL store"),
        (("--metrics-port", "9105"), "WHISPERD_METRICS_PORT cannot be used with --ray"),
        (("--model", "bogus"), "Unknown model 'bogus'"),
    ],
)
def test_settings_that_cannot_work_stop_before_ray_starts(
    flags: tuple[str, ...], problem: str, tmp_path: Path
) -> None:
    result = _serve(*(flag.format(tmp=tmp_path) for flag in flags))
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ")
    assert problem in line


@pytest.mark.slow
def test_gpus_the_cluster_lacks_stop_serve_with_one_line_and_no_ray_left(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    with short_path(tmp_path / "ray") as ray_dir:
        env = {**os.environ, **ray_environment(), "RAY_TMPDIR": str(ray_dir)}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "whisperd",
                "serve",
                "--ray",
                "--model",
                str(scripted_model.path),
                "--device",
                "cpu",
                "--offline",
                "--replica-gpus",
                "1",
                "--port",
                "0",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert done.returncode == 2, done.stderr
        errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        assert errors == [
            "error: Each replica needs 1 GPU(s) (--replica-gpus), but no node of the Ray "
            "cluster has that many (the most on one node: 0)."
        ], done.stderr
        assert not processes_under(tmp_path / "ray")
        assert not processes_under(ray_dir)


def test_a_port_in_use_stops_serve_before_ray_starts(scripted_model: ScriptedModel) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            cli, ["serve", "--ray", "--model", str(scripted_model.path), "--port", str(port)]
        )
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"error: Cannot serve on 127.0.0.1:{port}: ")


@pytest.mark.slow
def test_serve_on_ray_answers_then_stops_on_sigterm_leaving_no_ray(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    port = free_port()
    with short_path(tmp_path / "ray") as ray_dir:
        env = {**os.environ, **ray_environment(), "RAY_TMPDIR": str(ray_dir)}
        command = [
            sys.executable,
            "-m",
            "whisperd",
            "serve",
            "--ray",
            "--model",
            str(scripted_model.path),
            "--device",
            "cpu",
            "--offline",
            "--port",
            str(port),
        ]
        log = tmp_path / "serve.log"
        with log.open("w") as stderr:  # a file: Ray's log lines would fill a pipe
            process = subprocess.Popen(command, env=env, stderr=stderr)
            try:
                wait_until(lambda: _healthy(port), "the proxy never answered /health", within=240)
                answer = httpx.get(f"http://127.0.0.1:{port}/status", timeout=10)
                assert answer.json()["replica"] == answer.headers["x-whisperd-replica"]
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=120)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        errors = log.read_text()
        assert process.returncode == 0, errors[-3000:]
        assert "Stopping: the replicas drain" in errors
        assert not processes_under(tmp_path / "ray")


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False

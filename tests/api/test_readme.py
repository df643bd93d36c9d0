"""Every example of the README runs as written (host, port, files and model swapped in)."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from waiting import joined
from whisperd.cli import _transcribe_command, cli
from whisperd.testing import ScriptedModel
from whisperd.testing.fake import WORDS

ROOT = Path(__file__).parents[2]
DATA = Path(__file__).parents[1] / "data"
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 3)
    return README[start : end if end != -1 else None]


def _blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", _section(section), flags=re.DOTALL)


API = "HTTP API (OpenAI-compatible)"


def test_the_readme_has_the_examples_this_file_runs() -> None:
    assert len(_blocks(API, "python")) >= 2
    assert len(_blocks(API, "bash")) >= 5
    assert any("whisperd transcribe" in block for block in _blocks("Transcribe files", "bash"))


@pytest.fixture(scope="module")
def readme_server(settings_for, serve_fake) -> Iterator[str]:
    """A fake-engine server: the examples show the wire, whatever the model says."""
    with serve_fake(settings_for(allow_private_networks=True)) as running:
        yield running.url


def _localize(text: str, url: str, audio_url: str = "") -> str:
    text = text.replace("http://127.0.0.1:8000", url)
    text = text.replace('"meeting.mp3"', repr(str(DATA / "speech.mp3")))
    text = text.replace("@meeting.mp3", f"@{DATA / 'speech.mp3'}")
    return text.replace("https://example.com/interview.mp3", audio_url)


@pytest.mark.parametrize("index", [0, 1])
def test_python_examples(readme_server: str, index: int) -> None:
    import openai

    code = _localize(_blocks(API, "python")[index], readme_server)
    printed = io.StringIO()
    namespace: dict[str, object] = {}
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(code, f"README python block {index}", "exec"), namespace)
    finally:  # the example leaves its client open, as short scripts do; close it here
        for value in namespace.values():
            if isinstance(value, openai.OpenAI):
                value.close()
    assert WORDS[0] in printed.getvalue()


@pytest.fixture(scope="module")
def audio_url() -> Iterator[str]:
    import http.server
    import threading

    directory = str(DATA)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=directory, **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            return

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/speech.mp3"
    httpd.shutdown()
    httpd.server_close()
    joined(thread)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("index", range(5))
def test_curl_examples(readme_server: str, audio_url: str, index: int) -> None:
    command = _localize(_blocks(API, "bash")[index].strip(), readme_server, audio_url)
    assert command.startswith("curl ")
    done = subprocess.run(
        [*shlex.split(command), "--fail-with-body"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    expected = "whisper-1" if command.endswith("/v1/models/whisper-1") else WORDS[0]
    assert expected in done.stdout


def test_cli_examples(
    scripted_model: ScriptedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(DATA / "speech.mp3", "meeting.mp3")
    shutil.copy(DATA / "speech_webm_named.wav", "interview.webm")
    Path("recordings").mkdir()
    shutil.copy(DATA / "speech.wav", "recordings/one.wav")
    cli.add_command(_transcribe_command())
    commands = [
        line
        for block in _blocks("Transcribe files", "bash")
        for line in block.splitlines()
        if line.startswith("whisperd transcribe") and "--server" not in line
    ]
    assert len(commands) == 3  # --server sends files to a running server: tests/test_cli_remote.py
    for line in commands:
        args = shlex.split(line.split("#")[0])[1:]
        result = CliRunner().invoke(
            cli,
            [*args, "--model", str(scripted_model.path), "--offline"],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, (line, result.output)
    assert Path("meeting.srt").read_text().startswith("1\n")
    assert Path("out/one.txt").exists()
    assert Path("out/one.vtt").exists()
    assert Path("interview.verbose.json").exists()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_native_curl_example(readme_server: str, fake_transcript) -> None:
    (block,) = _blocks("Native API (Faster-Whisper Transcriber)", "bash")
    command = _localize(block.strip(), readme_server)
    done = subprocess.run(
        [*shlex.split(command), "--fail-with-body"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f'"text":"{fake_transcript("speech.mp3").text}"' in done.stdout


def test_serve_command_starts_a_server_and_stops_on_sigterm(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    import os
    import signal
    import socket
    import sys
    import time

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHISPERD_")}
    env["WHISPERD_OFFLINE"] = "true"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "whisperd",
            "serve",
            "--model",
            str(scripted_model.path),
            "--port",
            str(port),
            "--device",
            "cpu",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                if health.status_code == 200:
                    break
                assert health.json() == {"status": "loading"}  # the model loads after listening
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.1)
        assert health.json() == {"status": "ok"}
        assert health.headers["x-request-id"]
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    # An idle server drains at once and exits with 0 (tests/test_serve_shutdown.py).
    assert process.returncode == 0, output
    assert "Application shutdown complete" in output


def test_streaming_example(readme_server: str, tmp_path: Path) -> None:
    import numpy as np

    from whisperd.audio.decode import AudioSource, decode_audio

    samples = decode_audio(AudioSource(DATA / "speech.wav")).samples
    raw = tmp_path / "speech.raw"
    raw.write_bytes((samples * 32767).astype(np.int16).tobytes())
    (block,) = _blocks("Real-time streaming (WebSocket)", "python")
    code = block.replace("ws://127.0.0.1:8000", readme_server.replace("http://", "ws://"))
    code = code.replace('"speech.raw"', repr(str(raw)))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README streaming block", "exec"), {"__name__": "readme"})
    finals = [
        line for line in printed.getvalue().splitlines() if line.startswith("transcription True")
    ]
    assert len(finals) == 1
    assert WORDS[0] in finals[0]

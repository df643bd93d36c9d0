"""``whisperd serve`` stops gracefully: SIGTERM or SIGINT drains the work in flight, then exit 0.

Each test runs the real command in a subprocess on the scripted random-weight model. A request
is held in flight deterministically: it announces its body with ``Expect: 100-continue`` and
sends it only when the test says so; the server's ``100 Continue`` proves the route is reading
it.
"""

from __future__ import annotations

import base64
import json
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from waiting import DEADLINE_S, wait_until
from whisperd.api.draining import SHUTTING_DOWN
from whisperd.audio.decode import AudioSource, decode_audio
from whisperd.engine.base import SAMPLE_RATE
from whisperd.testing import ScriptedModel

DATA = Path(__file__).parent / "data"
SPEECH = (DATA / "speech.wav").read_bytes()
_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


@dataclass
class Server:
    """A ``whisperd serve`` process and where it listens."""

    process: subprocess.Popen[bytes]
    log: Path
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        self.process.send_signal(sig)

    def exit_code(self) -> int:
        """Wait for the process to end (it must, within the tests' deadline)."""
        try:
            return self.process.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the server did not stop:\n{self.stderr()}")


@contextmanager
def _serve(model: ScriptedModel, tmp_path: Path, *flags: str) -> Iterator[Server]:
    command = [sys.executable, "-m", "whisperd", "serve", "--model", str(model.path)]
    command += ["--port", "0", "--engine", "ctranslate2", "--device", "cpu", "--offline"]
    log = tmp_path / f"serve-{uuid.uuid4().hex}.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen([*command, *flags], stderr=stderr, stdout=stderr)
    server = Server(process, log)
    try:
        wait_until(
            lambda: _LISTENING.search(server.stderr()) or process.poll() is not None,
            "the server did not start",
        )
        match = _LISTENING.search(server.stderr())
        assert match, server.stderr()
        server.port = int(match[1])
        wait_until(lambda: _health(server)[0] == 200, "the default model did not load")
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _health(server: Server) -> tuple[int, dict[str, str]]:
    try:
        response = httpx.get(f"{server.url}/health", timeout=DEADLINE_S)
    except httpx.TransportError:
        return 0, {}
    return response.status_code, response.json()


def _assert_clean(server: Server) -> None:
    log = server.stderr()
    assert "Traceback" not in log, log
    assert "CancelledError" not in log, log


def _multipart(fields: dict[str, str], audio: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n".encode()
        + audio
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), boundary


class HeldUpload:
    """A transcription request whose body waits, on a raw socket, until :meth:`send_body`."""

    def __init__(self, server: Server, path: str = "/v1/audio/transcriptions") -> None:
        self.body, boundary = _multipart({"model": "whisper-1"}, SPEECH)
        self.socket = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE_S)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(self.body)}\r\nExpect: 100-continue\r\n\r\n"
        )
        self.socket.sendall(head.encode())
        interim = self._read_until(b"\r\n\r\n")
        assert interim.startswith(b"HTTP/1.1 100 "), interim  # the route is reading the body

    def _read_until(self, end: bytes) -> bytes:
        data = b""
        while end not in data:
            chunk = self.socket.recv(1)
            if not chunk:
                break
            data += chunk
        return data

    def response(self) -> tuple[int, dict[str, object]]:
        """The status and JSON body of the answer (the server closes the connection after it)."""
        data = b""
        while chunk := self.socket.recv(65536):
            data += chunk
        self.socket.close()
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        return status, json.loads(body)

    def send_body(self) -> tuple[int, dict[str, object]]:
        self.socket.sendall(self.body)
        return self.response()


def _new_request(server: Server, path: str) -> httpx.Response:
    body, boundary = _multipart({"model": "whisper-1"}, SPEECH)
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    return httpx.post(f"{server.url}{path}", content=body, headers=headers, timeout=DEADLINE_S)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_idle_server_exits_0_on_a_signal(
    scripted_model: ScriptedModel, tmp_path: Path, sig: signal.Signals
) -> None:
    with _serve(scripted_model, tmp_path) as server:
        server.stop(sig)
        assert server.exit_code() == 0, server.stderr()
    _assert_clean(server)


def test_a_request_in_flight_finishes_while_new_work_is_refused(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    with _serve(scripted_model, tmp_path) as server:
        held = HeldUpload(server)
        server.stop()
        wait_until(lambda: _health(server)[0] == 503, "/health did not turn 503")
        assert _health(server) == (503, {"status": "shutting_down"})
        refused = _new_request(server, "/v1/audio/transcriptions")
        native = _new_request(server, "/transcribe")
        status, transcript = held.send_body()
        assert server.exit_code() == 0, server.stderr()
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "shutting_down"
    assert refused.json()["error"]["type"] == "server_error"
    assert (native.status_code, native.json()) == (503, {"detail": "Server shutting down"})
    assert status == 200, transcript
    assert isinstance(transcript["text"], str)
    assert transcript["text"]
    _assert_clean(server)


def test_work_left_at_the_shutdown_timeout_is_stopped_in_the_envelope(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    with _serve(scripted_model, tmp_path, "--shutdown-timeout-s", "0.5") as server:
        held = HeldUpload(server)
        server.stop()
        status, error = held.response()  # its body never comes: the bound stops it
        assert server.exit_code() == 0, server.stderr()
    assert status == 503
    assert error["error"]["code"] == "shutting_down"  # type: ignore[index]
    assert "Shutdown timeout reached: stopping 1 request(s)" in server.stderr()
    _assert_clean(server)


def test_a_second_signal_quits_at_once(scripted_model: ScriptedModel, tmp_path: Path) -> None:
    with _serve(scripted_model, tmp_path) as server:
        held = HeldUpload(server)
        server.stop()
        wait_until(lambda: _health(server)[0] == 503, "/health did not turn 503")
        server.stop()
        assert server.exit_code() == 128 + signal.SIGTERM, server.stderr()
        held.socket.close()


def _until_closed(connection: ClientConnection) -> tuple[list[dict[str, Any]], ConnectionClosed]:
    """Every message until the server closes the connection, and how it closed it."""
    messages: list[dict[str, Any]] = []
    while True:
        try:
            messages.append(json.loads(connection.recv(timeout=DEADLINE_S)))
        except ConnectionClosed as closed:
            return messages, closed


def _speech_pcm(rate: int) -> bytes:
    """The first half of the speech clip (it ends mid-speech) as 16-bit PCM at ``rate`` Hz."""
    samples = decode_audio(AudioSource(DATA / "speech.wav")).samples
    samples = samples[: len(samples) // 2]
    if rate != SAMPLE_RATE:
        times = np.arange(0, len(samples) / SAMPLE_RATE, 1 / rate)
        samples = np.interp(times, np.arange(len(samples)) / SAMPLE_RATE, samples)
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def test_an_open_stream_gets_its_final_then_closes(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    pcm = _speech_pcm(SAMPLE_RATE)
    metadata = {"streaming_params": {"encoding": "pcm_s16le", "sample_rate": 16000}}
    with _serve(scripted_model, tmp_path) as server:
        url = f"ws://127.0.0.1:{server.port}/v1/stream"
        with connect(url, open_timeout=DEADLINE_S, max_size=None) as stream:
            stream.send(json.dumps(metadata))
            stream.send(pcm)  # mid-speech: no silence has closed the utterance yet
            stream.send(json.dumps({"type": "health_check"}))
            before = [json.loads(stream.recv(timeout=DEADLINE_S))]
            while before[-1]["type"] != "health_check":  # answered once the audio was fed
                before.append(json.loads(stream.recv(timeout=DEADLINE_S)))
            server.stop()
            after, closed = _until_closed(stream)
        assert server.exit_code() == 0, server.stderr()
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (1012, SHUTTING_DOWN)
    finals = [m for m in after if m["type"] == "transcription" and m["is_final"] is True]
    assert len(finals) == 1, (before, after)
    assert after[-1]["type"] == "error", after  # why it closes, after the final
    _assert_clean(server)


def test_an_open_realtime_session_completes_its_turn_then_closes(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    audio = base64.b64encode(_speech_pcm(24000)).decode()
    with _serve(scripted_model, tmp_path) as server:
        url = f"ws://127.0.0.1:{server.port}/v1/realtime?intent=transcription"
        with connect(url, open_timeout=DEADLINE_S, max_size=None) as session:
            session.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
            session.send(json.dumps({"type": "not_an_event"}))
            before = [json.loads(session.recv(timeout=DEADLINE_S))]
            while before[-1]["type"] != "error":  # answered once the audio was fed
                before.append(json.loads(session.recv(timeout=DEADLINE_S)))
            server.stop()
            after, closed = _until_closed(session)
        assert server.exit_code() == 0, server.stderr()
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (1012, SHUTTING_DOWN)
    kinds = [event["type"] for event in after]
    assert "input_audio_buffer.committed" in kinds, (before, after)
    completed = "conversation.item.input_audio_transcription.completed"
    assert kinds.index("input_audio_buffer.committed") < kinds.index(completed), kinds
    assert after[-1]["type"] == "error", after
    assert after[-1]["error"]["code"] == "shutting_down"
    _assert_clean(server)

"""A local Ray instance for the Ray Serve tests, and clients of the app it serves.

Ray keeps its files in a directory of the test's temporary directory and runs whisperd's proxy
middlewares (the variable is set only while it runs); after ``ray.shutdown()`` no Ray process
of that directory may be left (checked through ``/proc``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import websockets

from waiting import DEADLINE_S
from whisperd.audio.decode import AudioSource, decode_audio
from whisperd.config import Settings
from whisperd.testing import ScriptedModel

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
serve = pytest.importorskip("ray.serve")

from whisperd.ray_serve.proxy import PROXY_CALLBACK, PROXY_CALLBACK_VARIABLE  # noqa: E402
from whisperd.ray_serve.run import deploy  # noqa: E402

DATA = Path(__file__).parents[1] / "data"
SPEECH = DATA / "speech.wav"


def free_port() -> int:
    """A TCP port of the loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def processes_under(directory: Path) -> list[int]:
    """Ids of the processes whose command line names ``directory`` (Ray's of this test)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(directory).encode() in command:
            found.append(int(entry.name))
    return found


@contextmanager
def short_path(directory: Path) -> Iterator[Path]:
    """A short link to ``directory``: Ray's socket paths under it must fit in 107 bytes, which a
    test's temporary directory (with xdist's worker folder) can exceed."""
    directory.mkdir(parents=True, exist_ok=True)
    link = Path(tempfile.mkdtemp(prefix="wr-")) / "r"
    link.symlink_to(directory, target_is_directory=True)
    try:
        yield link
    finally:
        link.unlink()
        link.parent.rmdir()


@contextmanager
def local_ray(temp_dir: Path, cpus: int = 4) -> Iterator[None]:
    """A Ray instance of ``cpus`` logical cores with its files in ``temp_dir`` (through a
    short link); stopped after, failing the test if a Ray process of it is left."""
    with short_path(temp_dir) as short, _ray_at(short, cpus):
        yield


def ray_environment() -> dict[str, str]:
    """Variables of a test's Ray: whisperd's proxy middlewares, no usage reports, and no token
    authentication (Ray would write a token to ``~/.ray``, and this process has read Ray's
    settings before a test could ask for tokens; the test machine's network is private)."""
    return {
        PROXY_CALLBACK_VARIABLE: PROXY_CALLBACK,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "disabled",
    }


@contextmanager
def _ray_at(temp_dir: Path, cpus: int) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in ray_environment().items():
            patch.setenv(name, value)
        ray.init(
            num_cpus=cpus,
            include_dashboard=False,
            namespace="serve",
            log_to_driver=False,
            _temp_dir=str(temp_dir),
        )
        try:
            yield
        finally:
            serve.shutdown()
            ray.shutdown()
            left = _stop_leftovers(temp_dir)
            assert not left, f"Ray processes left after shutdown: {left}"


def _stop_leftovers(temp_dir: Path) -> list[int]:
    """Wait a little for Ray's processes to exit; kill (and return) those that do not."""
    deadline = time.monotonic() + 20
    while processes_under(temp_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = processes_under(temp_dir)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left


def ray_settings(model: ScriptedModel, port: int, **overrides: Any) -> Settings:
    """Settings of a CPU deployment of the scripted model on ``port``."""
    values: dict[str, Any] = {
        "model": str(model.path),
        "device": "cpu",
        "compute_type": "int8",
        "offline": True,
        "host": "127.0.0.1",
        "port": port,
        "replicas": 2,
        "replica_cpus": 1,
        "shutdown_timeout_s": 2,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def deployed(settings: Settings) -> str:
    """Deploy whisperd with ``settings`` on the running Ray; its base URL."""
    deploy(settings)
    return f"http://{settings.host}:{settings.port}"


def replica_of(response: httpx.Response | Any) -> str:
    """The replica named by an answer's ``x-whisperd-replica`` header."""
    name = response.headers.get("x-whisperd-replica")
    assert name, f"no replica header in {dict(response.headers)}"
    return str(name)


def pcm16(rate: int, seconds_of_quiet: float = 0.0) -> bytes:
    """The test speech as 16-bit PCM at ``rate`` Hz, with quiet after it."""
    samples = decode_audio(AudioSource(SPEECH)).samples
    if rate != 16000:
        import soxr

        samples = soxr.resample(samples, 16000, rate)
    quiet = np.zeros(int(rate * seconds_of_quiet), dtype=np.float32)
    return (np.concatenate([samples, quiet]) * 32767).astype(np.int16).tobytes()


async def baseten_stream(url: str) -> tuple[str, list[dict[str, Any]]]:
    """A whole Baseten stream of the test speech: the replica that accepted it, its messages."""
    metadata = {
        "whisper_params": {"audio_language": "en"},
        "streaming_params": {"encoding": "pcm_s16le", "sample_rate": 16000},
    }
    audio = pcm16(16000)
    messages: list[dict[str, Any]] = []
    async with websockets.connect(url + "/v1/stream") as ws:
        replica = replica_of(ws.response)
        await ws.send(json.dumps(metadata))
        for start in range(0, len(audio), 8192):
            await ws.send(audio[start : start + 8192])
        await ws.send(json.dumps({"type": "end_audio"}))
        async with asyncio.timeout(DEADLINE_S):
            while not messages or messages[-1] != {
                "type": "end_audio",
                "body": {"status": "finished"},
            }:
                messages.append(json.loads(await ws.recv()))
    return replica, messages


async def realtime_transcript(url: str) -> str:
    """The transcript of the test speech sent over OpenAI's Realtime protocol (committed by
    the client)."""
    async with websockets.connect(url + "/v1/realtime?intent=transcription") as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        update = {
            "type": "session.update",
            "session": {
                "type": "transcription",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "transcription": {"model": "whisper-1", "language": "en"},
                        "turn_detection": None,
                    }
                },
            },
        }
        await ws.send(json.dumps(update))
        audio = pcm16(24000)
        for start in range(0, len(audio), 48000):
            chunk = base64.b64encode(audio[start : start + 48000]).decode()
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        async with asyncio.timeout(DEADLINE_S):
            while True:
                event = json.loads(await ws.recv())
                assert event["type"] != "error", event
                if event["type"] == "conversation.item.input_audio_transcription.completed":
                    return str(event["transcript"])

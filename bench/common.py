"""Shared pieces of the benchmarks: test models, audio, servers, statistics, reporting."""

from __future__ import annotations

import importlib.metadata
import io
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

from whisperd.testing import ModelShape, build_test_model

ROOT = Path(__file__).parents[1]
SHAPES = {"tiny": ModelShape.TINY, "base": ModelShape.BASE, "turbo": ModelShape.TURBO}
WORDS_PER_WINDOW = 88
"""Decoding work per 30 s window: about 3 tokens per second of speech, as real speech gives."""


def model_dir(
    shape: str, cache: Path, words: int = WORDS_PER_WINDOW, model_format: str = "ctranslate2"
) -> Path:
    """Build (once) the scripted random-weight model of ``shape`` under ``cache``.

    ``words`` is the text decoded per call: ~3 per second of the audio a call covers;
    ``model_format`` is ``ctranslate2`` or ``huggingface`` (the torch engine's).
    """
    path = cache / f"{shape}-scripted-{words}-{model_format}"
    weights = "model.safetensors" if model_format == "huggingface" else "model.bin"
    if not (path / weights).exists():
        build_test_model(path, shape=SHAPES[shape], n_words=words, model_format=model_format)
    return path


def timed(
    repeats: int, fn: Callable[[], object], sync: Callable[[], object] | None = None
) -> float:
    """Median wall time of ``fn`` after one warm-up call; ``sync`` (say, waiting for the GPU)
    ends each timing."""
    fn()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def noise(seconds: float, seed: int) -> np.ndarray:
    """Quiet white noise: fixed work per window since the scripted text ignores the audio."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(16000 * seconds)) * 0.05).astype(np.float32)


def wav_bytes(samples: np.ndarray) -> bytes:
    """16 kHz mono 16-bit WAV."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes())
    return buffer.getvalue()


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def server(command: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[int]:
    """Run a server subprocess until its /health answers; yield its pid."""
    merged = {**os.environ, **(env or {})}
    process = subprocess.Popen(
        command, env=merged, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server {command} did not start")
            time.sleep(0.2)
        yield process.pid
    finally:
        process.terminate()
        process.wait(60)


def whisperd_command(
    model: Path, port: int, device: str = "cpu", compute_type: str = "int8"
) -> list[str]:
    """``whisperd serve`` on the scripted model (CPU int8 unless told otherwise)."""
    return [
        sys.executable,
        "-m",
        "whisperd",
        "serve",
        "--model",
        str(model),
        "--port",
        str(port),
        "--device",
        device,
        "--compute-type",
        compute_type,
    ]


def baseline_command(model: Path, port: int) -> list[str]:
    """The one-request-at-a-time faster-whisper server of bench/baseline_server.py."""
    return [
        sys.executable,
        str(ROOT / "bench" / "baseline_server.py"),
        "--model",
        str(model),
        "--port",
        str(port),
    ]


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a process so far (Linux VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb(pid: int) -> float:
    """Current resident memory of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of ``values``."""
    return float(np.percentile(np.array(values), q)) if values else float("nan")


def machine() -> str:
    """One line describing where the benchmark ran: the CPU (its model name and AVX-512 where
    Linux gives them: CTranslate2's int8 speed differs between CPU generations), cores, system,
    and the versions of Python and of the libraries that decode (CTranslate2, faster-whisper)."""
    versions = ", ".join(f"{name} {_version(name)}" for name in ("ctranslate2", "faster-whisper"))
    return (
        f"{_cpu_model() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}, "
        f"Python {platform.python_version()}, {versions}"
    )


def _cpu_model() -> str | None:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    flags = next((line.split() for line in lines if line.startswith("flags")), [])
    if not names:
        return None
    return names[0] + (" with AVX-512" if "avx512f" in flags else "")


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def write_section(path: Path | None, title: str, body: str) -> None:
    """Print ``body`` and, with ``path``, replace or append its section in a markdown file."""
    print(body)
    if path is None:
        return
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    header = f"## {title}"
    start = text.find(header)
    section = f"{header}\n\n{body.strip()}\n"
    if start == -1:
        text = text.rstrip() + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(header))
        text = text[:start] + section + ("" if end == -1 else text[end:])
    path.write_text(text)

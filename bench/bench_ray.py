"""Per-request overhead of the Ray Serve path: the same requests to ``whisperd serve`` and to
``whisperd serve --ray --replicas 1``, in the same run, on the scripted tiny model (CPU int8).

Both servers run side by side on this machine; requests alternate between them one at a time
(never two in flight), so both see the same machine load, Ray's own processes included. Two
kinds of request:

- ``GET /status``: almost no work, so its latency is the HTTP path itself;
- ``POST /v1/audio/transcriptions`` of ``--clip-s`` seconds of quiet noise (the scripted model
  decodes ``--words`` words whatever the audio): a short transcription.

Reported per kind: p50 and p95 latency of each path, the p50 added by Ray (Ray minus direct)
and the ratio of the p50s. Ray's own processes start on this machine (no dashboard, files in a
temporary directory) and stop with the run.

    python bench/bench_ray.py [--requests 60] [--clip-s 2] [--words 12] \\
        [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from common import (
    free_port,
    machine,
    model_dir,
    noise,
    percentile,
    server,
    wav_bytes,
    whisperd_command,
    write_section,
)

_RAY_ENV = {
    "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH": "whisperd.ray_serve.proxy:proxy_middlewares",
    "RAY_USAGE_STATS_ENABLED": "0",
    # No token written to the home folder (a benchmark machine's network is private).
    "RAY_AUTH_MODE": "disabled",
}


@contextmanager
def _ray_server(command: list[str], port: int, env: dict[str, str]) -> Iterator[None]:
    """``whisperd serve --ray`` until its proxy answers /health (Ray and the replica take a
    while to start on a small machine); SIGTERM at the end (the replicas drain, Ray stops)."""
    process = subprocess.Popen(
        command,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600
        while not _healthy(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("whisperd serve --ray did not start")
            time.sleep(0.5)
        yield
    finally:
        process.terminate()
        process.wait(120)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _measure(
    requests: int, direct: Callable[[], httpx.Response], ray: Callable[[], httpx.Response]
) -> tuple[list[float], list[float]]:
    """Latencies in ms of ``requests`` calls to each path, alternating, after a warm-up."""
    times: tuple[list[float], list[float]] = ([], [])
    for call in (direct, ray):
        call().raise_for_status()
    for index in range(requests * 2):
        call = (direct, ray)[index % 2]
        began = time.perf_counter()
        answer = call()
        elapsed = (time.perf_counter() - began) * 1000
        answer.raise_for_status()
        times[index % 2].append(elapsed)
    return times


def _row(kind: str, direct: list[float], ray: list[float]) -> str:
    d50, r50 = percentile(direct, 50), percentile(ray, 50)
    return (
        f"| {kind} | {d50:.1f} | {percentile(direct, 95):.1f} | {r50:.1f} | "
        f"{percentile(ray, 95):.1f} | {r50 - d50:+.1f} | {r50 / d50:.2f}x |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--clip-s", type=float, default=2.0)
    parser.add_argument("--words", type=int, default=12)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()

    cache = Path(tempfile.gettempdir()) / "whisperd-bench-models"
    model = model_dir("tiny", cache, words=args.words)
    clip = wav_bytes(noise(args.clip_s, seed=3))
    direct_port, ray_port = free_port(), free_port()
    ray_command = [
        *whisperd_command(model, ray_port),
        "--ray",
        "--replicas",
        "1",
        "--offline",
    ]
    with tempfile.TemporaryDirectory(prefix="wr-") as ray_dir:
        env = {**_RAY_ENV, "RAY_TMPDIR": ray_dir}
        with (
            server([*whisperd_command(model, direct_port), "--offline"], direct_port),
            _ray_server(ray_command, ray_port, env),
            httpx.Client(base_url=f"http://127.0.0.1:{direct_port}", timeout=120) as direct,
            httpx.Client(base_url=f"http://127.0.0.1:{ray_port}", timeout=120) as ray,
        ):

            def transcribe(client: httpx.Client) -> Callable[[], httpx.Response]:
                files = {"file": ("clip.wav", clip, "audio/wav")}
                return lambda: client.post(
                    "/v1/audio/transcriptions", files=files, data={"model": "whisper-1"}
                )

            status = _measure(
                args.requests, lambda: direct.get("/status"), lambda: ray.get("/status")
            )
            speech = _measure(args.requests, transcribe(direct), transcribe(ray))

    body = "\n".join(
        [
            f"`python bench/bench_ray.py --requests {args.requests} --clip-s {args.clip_s:g} "
            f"--words {args.words}`, {machine()}, one replica, {args.requests} requests of each "
            "kind per path, alternating (ms):",
            "",
            "| request | direct p50 | direct p95 | Ray p50 | Ray p95 | added p50 | Ray/direct |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            _row("GET /status", *status),
            _row(f"transcription, {args.clip_s:g} s clip", *speech),
        ]
    )
    write_section(args.write, "Ray Serve path overhead (tiny shape, CPU) (random weights)", body)


if __name__ == "__main__":
    main()

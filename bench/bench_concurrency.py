"""Concurrent load and short-clip latency: whisperd against a one-request-at-a-time server.

Both servers run the same scripted random-weight model (fixed decoding work per window:
greedy, temperature 0, no VAD, ~3 tokens per audio second) as subprocesses on loopback. For N
clients (each sending clips of 5-60 s back to back) it reports aggregate audio seconds per
second and latency percentiles; then the latency of a 10 s clip sent while a 10-minute file is
being transcribed, against the same clip on the idle server; then memory. Every figure for
whisperd is also given as a ratio to the baseline measured in the same run.

    python bench/bench_concurrency.py [--shape base] [--clients 1 4 16 64] \\
        [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from common import (
    baseline_command,
    free_port,
    machine,
    model_dir,
    noise,
    peak_rss_mb,
    percentile,
    rss_mb,
    server,
    wav_bytes,
    whisperd_command,
    write_section,
)

FORM = {"model": "whisper-1", "beam_size": "1", "temperature": "0", "vad_filter": "false"}


@dataclass
class Load:
    """Results of one load level on one server."""

    throughput: float
    p50: float
    p95: float
    p99: float


async def _post(client: httpx.AsyncClient, url: str, audio: bytes) -> float:
    began = time.perf_counter()
    response = await client.post(url, files={"file": ("clip.wav", audio)}, data=FORM)
    response.raise_for_status()
    return time.perf_counter() - began


def clips(count: int, seed: int) -> list[tuple[float, bytes]]:
    """``count`` clips of 5-60 s (durations and noise fixed by ``seed``)."""
    rng = np.random.default_rng(seed)
    durations = rng.uniform(5, 60, size=count)
    return [(float(d), wav_bytes(noise(float(d), seed + i))) for i, d in enumerate(durations)]


async def load(url: str, clients: int, per_client: int) -> Load:
    """``clients`` concurrent clients, each sending ``per_client`` clips back to back."""
    work = [clips(per_client, seed=1000 * c) for c in range(clients)]
    latencies: list[float] = []

    async def client_loop(client: httpx.AsyncClient, mine: list[tuple[float, bytes]]) -> None:
        for _, audio in mine:
            latencies.append(await _post(client, url, audio))

    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(timeout=3600, limits=limits) as client:
        began = time.perf_counter()
        await asyncio.gather(*(client_loop(client, mine) for mine in work))
        wall = time.perf_counter() - began
    audio_seconds = sum(d for mine in work for d, _ in mine)
    return Load(
        audio_seconds / wall,
        percentile(latencies, 50),
        percentile(latencies, 95),
        percentile(latencies, 99),
    )


async def short_while_long(url: str) -> tuple[float, float]:
    """(idle latency of a 10 s clip, its latency while a 10-minute file runs)."""
    short = wav_bytes(noise(10, 7))
    long_audio = wav_bytes(noise(600, 8))
    async with httpx.AsyncClient(timeout=3600) as client:
        idle = sorted([await _post(client, url, short) for _ in range(3)])[1]
        long_task = asyncio.create_task(_post(client, url, long_audio))
        await asyncio.sleep(3.0)  # the long file is under way
        busy = await _post(client, url, short)
        await long_task
    return idle, busy


@dataclass
class ServerRun:
    """Everything measured on one server."""

    loads: dict[int, Load]
    idle_short: float
    busy_short: float
    rss_idle: float
    rss_peak: float


def run_server(command: list[str], port: int, levels: list[int]) -> ServerRun:
    """Start a server and measure it."""
    url = f"http://127.0.0.1:{port}/v1/audio/transcriptions"
    with server(command, port) as pid:
        asyncio.run(load(url, 1, 1))  # warm up: load the model
        rss_idle = rss_mb(pid)
        loads = {n: asyncio.run(load(url, n, 2 if n <= 16 else 1)) for n in levels}
        idle, busy = asyncio.run(short_while_long(url))
        return ServerRun(loads, idle, busy, rss_idle, peak_rss_mb(pid))


def report(shape: str, ours: ServerRun, base: ServerRun) -> str:
    """The markdown tables of one run."""
    lines = [
        f"Model: scripted random-weight Whisper, {shape} shape, CPU int8, greedy, temperature 0, "
        f"no VAD, ~3 tokens per audio second. Machine: {machine()}.",
        "",
        "| clients | whisperd audio s/s | baseline audio s/s | throughput ratio | "
        "whisperd p50 / p95 / p99 s | baseline p50 / p95 / p99 s | p95 ratio |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n, mine in ours.loads.items():
        theirs = base.loads[n]
        lines.append(
            f"| {n} | {mine.throughput:.1f} | {theirs.throughput:.1f} | "
            f"{mine.throughput / theirs.throughput:.2f}x | "
            f"{mine.p50:.1f} / {mine.p95:.1f} / {mine.p99:.1f} | "
            f"{theirs.p50:.1f} / {theirs.p95:.1f} / {theirs.p99:.1f} | "
            f"{mine.p95 / theirs.p95:.2f} |"
        )
    lines += [
        "",
        "| 10 s clip while a 10-min file runs | idle latency s | busy latency s | busy / idle |",
        "| --- | --- | --- | --- |",
        f"| whisperd (scheduler) | {ours.idle_short:.2f} | {ours.busy_short:.2f} | "
        f"{ours.busy_short / ours.idle_short:.1f}x |",
        f"| baseline (one at a time) | {base.idle_short:.2f} | {base.busy_short:.2f} | "
        f"{base.busy_short / base.idle_short:.1f}x |",
        "",
        "| memory (server process) | RSS with model loaded, idle | peak RSS under load |",
        "| --- | --- | --- |",
        f"| whisperd | {ours.rss_idle:.0f} MiB | {ours.rss_peak:.0f} MiB |",
        f"| baseline | {base.rss_idle:.0f} MiB | {base.rss_peak:.0f} MiB |",
    ]
    return "\n".join(lines)


def main() -> None:
    """Run both servers, print the tables, optionally write them to a markdown file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shape", default="base", choices=["tiny", "base", "turbo"])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        model = model_dir(args.shape, Path(cache))
        port = free_port()
        ours = run_server(whisperd_command(model, port), port, args.clients)
        port = free_port()
        base = run_server(baseline_command(model, port), port, args.clients)
    write_section(
        args.write,
        f"Concurrent load ({args.shape} shape, CPU)",
        "`python bench/bench_concurrency.py --shape "
        + args.shape
        + "`\n\n"
        + report(args.shape, ours, base),
    )


if __name__ == "__main__":
    main()

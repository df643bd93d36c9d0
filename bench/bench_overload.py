"""Goodput under overload: admission by estimated wait against the same server without it.

One whisperd server at a time runs the real Whisper tiny.en (CTranslate2 int8, CPU) as a
subprocess on loopback. First, closed-loop clients measure how many short clips (one espeak-ng
sentence with known text, spoken slowly: about 5 s) it answers per second. Then each server is
offered ``--overload`` times that rate, open loop (arrivals on a fixed schedule, whatever the
answers), for ``--seconds``; every client gives up after ``--deadline-s``, as real clients time
out. Two servers, same offered load:

- bounded: ``WHISPERD_MAX_QUEUE_WAIT_S`` at ``--wait-bound-s``;
- baseline: the same server with the wait bound disabled (a very large setting), so only the
  request and audio bounds refuse work, as before the bound existed.

Reported per server: goodput (answers within the deadline per second of offered load), the share
of requests refused with 503, the share that ran past the deadline, latency percentiles of the
answered ones and their WER (admission must not change the words); then the bounded server's
figures as ratios to the baseline.

    python bench/bench_overload.py [--seconds 60] [--deadline-s 30] [--wait-bound-s 15] \\
        [--overload 4] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from common import free_port, machine, percentile, server, whisperd_command, write_section
from whisperd.testing.speech import SENTENCES, conversation, real_model_path, word_error_rate

CLIP_SENTENCE = SENTENCES[6]
"""The clip: one sentence spoken slowly, about 5 s with its pauses."""
FORM = {"model": "whisper-1", "response_format": "json"}
DISABLED_BOUND_S = 1e9
"""The wait bound of the baseline server: far beyond any wait, so it never refuses."""


@dataclass
class Outcome:
    """One request: its status (None when the client gave up), its latency in seconds and
    the text of a 200 answer."""

    status: int | None
    latency: float
    text: str = ""


@dataclass
class Run:
    """One server under the offered load."""

    label: str
    seconds: float
    deadline_s: float
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: int | None) -> int:
        """Requests that ended with ``status``."""
        return sum(1 for o in self.outcomes if o.status == status)

    def answered(self) -> list[float]:
        """Latencies of the requests answered 200 within the deadline."""
        return [
            o.latency for o in self.outcomes if o.status == 200 and o.latency <= self.deadline_s
        ]

    def word_error_rate(self) -> float:
        """The WER of the answered requests' texts together against the clip's sentence."""
        texts = [o.text for o in self.outcomes if o.status == 200]
        return word_error_rate(" ".join([CLIP_SENTENCE] * len(texts)), " ".join(texts))

    def goodput(self) -> float:
        """Answers within the deadline per second of offered load."""
        return len(self.answered()) / self.seconds

    def share(self, status: int | None) -> float:
        """Share of the offered requests that ended with ``status``."""
        return self.count(status) / len(self.outcomes) if self.outcomes else 0.0


async def _post(client: httpx.AsyncClient, url: str, audio: bytes, deadline_s: float) -> Outcome:
    began = time.perf_counter()
    try:
        response = await client.post(
            url, files={"file": ("clip.wav", audio)}, data=FORM, timeout=deadline_s
        )
    except httpx.TimeoutException:
        return Outcome(None, time.perf_counter() - began)
    latency = time.perf_counter() - began
    text = response.json()["text"] if response.status_code == 200 else ""
    return Outcome(response.status_code, latency, text)


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=64)
    )


async def calibrate(url: str, audio: bytes, clients: int, seconds: float) -> float:
    """Clips answered per second by ``clients`` closed-loop clients over ``seconds``."""
    done = 0
    stop = time.perf_counter() + seconds

    async def loop(client: httpx.AsyncClient) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            outcome = await _post(client, url, audio, 600)
            if outcome.status == 200:
                done += 1

    began = time.perf_counter()
    async with _client() as client:
        await asyncio.gather(*(loop(client) for _ in range(clients)))
    return done / (time.perf_counter() - began)


async def offer(
    url: str, audio: bytes, rate: float, seconds: float, deadline_s: float
) -> list[Outcome]:
    """Send a request every ``1 / rate`` seconds for ``seconds``; wait for every outcome."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = []
    async with _client() as client:
        for index in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + index / rate - loop.time()))
            tasks.append(asyncio.create_task(_post(client, url, audio, deadline_s)))
        return list(await asyncio.gather(*tasks))


def run_server(
    label: str, model: Path, bound_s: float, args: argparse.Namespace, rate: float | None
) -> tuple[Run, float]:
    """Start a server with wait bound ``bound_s``, measure the clip rate if ``rate`` is None,
    warm it up so it has measured its speed, and offer ``args.overload`` times the rate."""
    audio = conversation([CLIP_SENTENCE], words_per_minute=(120,), pause_s=0.6).wav_bytes()
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/audio/transcriptions"
    env = {"WHISPERD_MAX_QUEUE_WAIT_S": str(bound_s), "WHISPERD_OFFLINE": "true"}
    with server(whisperd_command(model, port), port, env):
        if rate is None:
            rate = asyncio.run(calibrate(url, audio, args.calibration_clients, args.calibration_s))
        else:
            asyncio.run(calibrate(url, audio, 1, 2.0))  # a few answers: the speed is measured
        run = Run(label, args.seconds, args.deadline_s)
        run.outcomes = asyncio.run(
            offer(url, audio, rate * args.overload, args.seconds, args.deadline_s)
        )
    return run, rate


def _row(run: Run) -> str:
    answered = run.answered()
    return (
        f"| {run.label} | {len(run.outcomes)} | {run.goodput():.2f} | {run.share(503):.0%} | "
        f"{run.share(None):.0%} | {percentile(answered, 50):.1f} | {percentile(answered, 95):.1f} "
        f"| {run.word_error_rate():.1%} |"
    )


def _ratio(ours: float, base: float) -> str:
    return f"{ours / base:.2f}x" if base > 0 else "-"


def report(bounded: Run, base: Run, rate: float, args: argparse.Namespace) -> str:
    """The markdown table of both runs and the bounded server's ratios to the baseline."""
    ours_answered, base_answered = bounded.answered(), base.answered()
    setup = (
        f"{machine()}, {time.strftime('%Y-%m-%d')}: the absolute figures depend on the "
        "machine's load, the ratios of one run are what to compare. "
        "Real Whisper tiny.en (CTranslate2 int8, CPU), clips of one espeak-ng sentence "
        f"(about 5 s) to `/v1/audio/transcriptions`. Measured capacity: {rate:.2f} clips/s "
        f"({args.calibration_clients} closed-loop clients); offered {args.overload:g}x that "
        f"({rate * args.overload:.2f} clips/s, open loop) for {args.seconds:g} s to each server; "
        f"clients give up after {args.deadline_s:g} s. Bounded: `WHISPERD_MAX_QUEUE_WAIT_S="
        f"{args.wait_bound_s:g}`; baseline: the same server with the bound disabled."
    )
    ratios = (
        f"Bounded against baseline: goodput {_ratio(bounded.goodput(), base.goodput())}, "
        f"p50 {_ratio(percentile(ours_answered, 50), percentile(base_answered, 50))}, "
        f"p95 {_ratio(percentile(ours_answered, 95), percentile(base_answered, 95))}; "
        f"503 share {bounded.share(503):.0%} against {base.share(503):.0%}, past the deadline "
        f"{bounded.share(None):.0%} against {base.share(None):.0%}."
    )
    lines = [
        textwrap.fill(setup, 100),
        "",
        "| server | requests | goodput (answers in time / s) | 503 | past the deadline "
        "| p50 s (answered) | p95 s (answered) | WER (answered) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        _row(bounded),
        _row(base),
        "",
        textwrap.fill(ratios, 100),
    ]
    return "\n".join(lines)


def main() -> None:
    """Calibrate, run both servers under the same overload, print and optionally write."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--deadline-s", type=float, default=30.0)
    parser.add_argument("--wait-bound-s", type=float, default=15.0)
    parser.add_argument("--overload", type=float, default=4.0)
    parser.add_argument("--calibration-clients", type=int, default=16)
    parser.add_argument("--calibration-s", type=float, default=15.0)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    model = real_model_path()
    # Calibrated on the baseline: closed-loop clients would be refused by the bound.
    base, rate = run_server("baseline (bound disabled)", model, DISABLED_BOUND_S, args, None)
    bounded, _ = run_server("bounded", model, args.wait_bound_s, args, rate)
    command = (
        f"`python bench/bench_overload.py --seconds {args.seconds:g} --deadline-s "
        f"{args.deadline_s:g} --wait-bound-s {args.wait_bound_s:g} --overload {args.overload:g}`"
    )
    write_section(
        args.write, "Goodput under overload", command + "\n\n" + report(bounded, base, rate, args)
    )


if __name__ == "__main__":
    main()

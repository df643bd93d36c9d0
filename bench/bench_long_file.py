"""One long file: whisperd's engine against faster-whisper's two modes on the same model.

A 10-minute recording (the committed speech clip, repeated) is transcribed with VAD, greedy,
temperature 0 by: faster-whisper's sequential ``transcribe``, its ``BatchedInferencePipeline``,
and whisperd's engine (every model call through the batching scheduler) in both modes. Times
are medians of ``--repeats`` runs; ratios are against faster-whisper's faster mode.

    python bench/bench_long_file.py [--shape base] [--minutes 10] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel

from common import ROOT, machine, model_dir, write_section
from whisperd.audio.decode import AudioSource, decode_audio
from whisperd.engine.hub import ResolvedModel
from whisperd.engine.options import TranscribeOptions
from whisperd.engine.whisper import WhisperEngine

BATCH = 8


def long_audio(minutes: float) -> np.ndarray:
    """The speech clip repeated to ``minutes``."""
    clip = decode_audio(AudioSource(ROOT / "tests" / "data" / "speech.wav")).samples
    repeats = int(minutes * 60 * 16000 / len(clip)) + 1
    return np.tile(clip, repeats)[: int(minutes * 60 * 16000)]


def timed(repeats: int, fn: Callable[[], int]) -> tuple[float, int]:
    """Median wall time of ``fn`` and the segment count it returned."""
    times, count = [], 0
    for _ in range(repeats):
        began = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times), count


def main() -> None:
    """Run every mode, print the table, optionally write it to a markdown file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shape", default="base", choices=["tiny", "base", "turbo"])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    audio = long_audio(args.minutes)
    common = {"beam_size": 1, "temperature": 0.0, "vad_filter": True}
    with tempfile.TemporaryDirectory() as cache:
        path = model_dir(args.shape, Path(cache))
        reference = WhisperModel(str(path), device="cpu", compute_type="int8")
        engine = WhisperEngine(
            ResolvedModel("m", path, None, None), device="cpu", compute_type="int8"
        )
        pipeline = BatchedInferencePipeline(reference)
        rows = {
            "faster-whisper transcribe (sequential)": timed(
                args.repeats, lambda: len(list(reference.transcribe(audio, **common)[0]))
            ),
            f"faster-whisper BatchedInferencePipeline (batch {BATCH})": timed(
                args.repeats,
                lambda: len(
                    list(
                        pipeline.transcribe(
                            audio, batch_size=BATCH, without_timestamps=False, **common
                        )[0]
                    )
                ),
            ),
            "whisperd engine, sequential": timed(
                args.repeats,
                lambda: len(
                    engine.transcribe(audio, TranscribeOptions(beam_size=1, temperature=0)).segments
                ),
            ),
            f"whisperd engine, batched (batch_size={BATCH})": timed(
                args.repeats,
                lambda: len(
                    engine.transcribe(
                        audio, TranscribeOptions(beam_size=1, temperature=0, batch_size=BATCH)
                    ).segments
                ),
            ),
        }
        engine.close()
    best = min(rows[k][0] for k in list(rows)[:2])
    seconds = args.minutes * 60
    lines = [
        f"{args.minutes:g} min of speech (the test clip repeated), VAD on, greedy, temperature 0; "
        f"scripted random-weight model, {args.shape} shape, CPU int8; median of {args.repeats}. "
        f"Machine: {machine()}.",
        "",
        "| mode | seconds | audio s per s | segments | speed vs faster-whisper's best |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, (wall, segments) in rows.items():
        lines.append(
            f"| {name} | {wall:.2f} | {seconds / wall:.0f} | {segments} | {best / wall:.2f}x |"
        )
    write_section(
        args.write,
        f"One long file ({args.shape} shape, CPU)",
        f"`python bench/bench_long_file.py --shape {args.shape}`\n\n" + "\n".join(lines),
    )


if __name__ == "__main__":
    main()

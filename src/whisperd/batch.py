"""Transcribe files and folders to subtitle and text files (the ``whisperd transcribe`` work).

Folders are searched recursively for media files (by extension; a file named explicitly is
always tried, whatever its name, since decoding detects the format from the bytes). Outputs
mirror the folder layout under the output directory (or go to standard output: see
:mod:`whisperd.cli_output`).

Up to ``concurrency`` files are transcribed at once, all at ``BULK`` priority, so the
scheduler merges their windows into shared model calls (a folder of short files keeps every
batch full instead of running one window at a time), and one more file is opened (admitted and
decoded) ahead while they run. Files are opened in the order given; their results are
reported as each ends and returned in that order. Decoded audio counts against the same memory
budget as a server's requests (``max_decoded_audio_seconds``): a file refused for want of it
is opened again each time another file of the run ends, and is refused for good only alone
(alone, it always fits). A file that fails is reported and the others still run. A cancelled
run stops every running file at its next window, writes nothing for them and starts no other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeAlias

from whisperd.audio.decode import AudioSource
from whisperd.errors import CancelledError, QueueFullError, WhisperdError
from whisperd.scheduler.batcher import Priority
from whisperd.service import Cancellation, TranscriptionRequest

if TYPE_CHECKING:
    from collections.abc import Sequence

    from whisperd.cli_output import Output
    from whisperd.diarization import DiarizationOptions
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


Speakers: TypeAlias = "tuple[DiarizationOptions | None, tuple[tuple[str, AudioSource], ...]]"
"""The diarization a run asks for (None: none) and its known speakers' names and clips."""

DEFAULT_CONCURRENCY = 4
"""Files transcribed at once by ``whisperd transcribe``. Four fill the CPU's merged model calls
(two windows each by default) and overlap each file's decoding and VAD with the others' model
calls. On a shared 2-core CPU with tiny.en a folder of short clips took the same time and CPU
seconds as one file at a time (0.92-1.05x, ``bench/bench_folder.py``, docs/benchmarks.md):
there a merged call costs the sum of its parts; the gain is where it costs less (a GPU)."""


class _Holders:
    """The files of a run that hold (or are getting) capacity, and a signal each time one of
    them lets go of it: a file refused for capacity waits for that signal to try again."""

    def __init__(self) -> None:
        self.count = 0
        self._released = 0
        self._changed = asyncio.Condition()

    @property
    def released(self) -> int:
        """How many files have let go of their capacity so far."""
        return self._released

    async def release(self) -> None:
        """One file let go of its capacity (it ended, or will not run)."""
        async with self._changed:
            self.count -= 1
            self._released += 1
            self._changed.notify_all()

    async def wait_release(self, seen: int) -> None:
        """Wait until more than ``seen`` files have let go of their capacity."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._released > seen)


class BatchRunner:
    """Runs jobs through the service, ``concurrency`` files at once with one more opened ahead;
    ``cancel`` stops the run at each running file's next window."""

    def __init__(
        self,
        service: TranscriptionService,
        options: TranscribeOptions,
        output: Output,
        reporter: Reporter,
        *,
        model: str | None = None,
        cancel: Cancellation | None = None,
        concurrency: int = 1,
        speakers: Speakers = (None, ()),
    ) -> None:
        """Prepare a run; nothing starts before :meth:`run`.

        ``speakers`` is the diarization every file asks for and the known speakers' clips
        (:attr:`TranscriptionRequest.diarization
        <whisperd.service.requests.TranscriptionRequest.diarization>`).

        ``concurrency`` is how many files are transcribed at once (1: one after the other,
        the next decoded while the current one runs).

        Raises:
            ValueError: if ``concurrency`` is below 1.
        """
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._service = service
        self._options = options
        self._output = output
        self._reporter = reporter
        self._model = model
        self._cancel = cancel or Cancellation()
        self._concurrency = concurrency
        self._speakers = speakers

    async def run(self, jobs: Sequence[FileJob]) -> BatchSummary:
        """Transcribe every job until done or cancelled; failures are recorded, never raised.

        Returns:
            The results of the files that started, in the order given (a file opened ahead
            but not started before a cancellation has none).
        """
        began = time.perf_counter()
        room = asyncio.Semaphore(self._concurrency + 1)  # files opened ahead or running
        running = asyncio.Semaphore(self._concurrency)
        holders = _Holders()
        writing = asyncio.Lock()  # an output takes one transcript at a time
        tasks: list[asyncio.Task[FileResult | None]] = []
        turn: asyncio.Event | None = None
        try:
            for job in jobs:
                await room.acquire()
                if self._cancel.cancelled:
                    room.release()
                    break
                holders.count += 1
                started = asyncio.Event()
                file = self._file(job, _Slots(room, running, holders, writing, turn, started))
                turn = started
                tasks.append(asyncio.create_task(file))
            results = [await task for task in tasks]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        wall = time.perf_counter() - began
        done = [result for result in results if result is not None]
        return BatchSummary(done, wall, interrupted=self._cancel.cancelled)

    async def _file(self, job: FileJob, slots: _Slots) -> FileResult | None:
        """Open, run, write and report one file; None if it never started (cancelled)."""
        transcription: Transcription | None = None
        result = FileResult(job)
        try:
            try:
                transcription = await self._open(job, slots.holders, slots.started)
            except WhisperdError as exc:
                result.error = exc.message
            except Exception as exc:  # one file's bug must not stop the batch
                logger.exception("unexpected failure opening %s", job.source)
                result.error = f"internal error: {exc!r}"
            if transcription is None and result.error is None:
                return None  # cancelled while it waited for capacity
            if transcription is not None:
                if slots.turn is not None:
                    await slots.turn.wait()
                async with slots.running:
                    slots.started.set()
                    if self._cancel.cancelled:
                        return None
                    result = await self._transcribe(job, transcription, slots.writing)
        finally:
            slots.started.set()
            if transcription is not None:
                await transcription.aclose()
            slots.room.release()
            await slots.holders.release()
        self._reporter.finished(result)
        return result

    async def _open(
        self, job: FileJob, holders: _Holders, started: asyncio.Event
    ) -> Transcription | None:
        """Admit and decode ``job``; None if the run was cancelled while it waited.

        A refusal for capacity (the decoded-audio budget, above all) is retried each time
        another file of the run lets go of its capacity; alone, the refusal stands. A refused
        file gives up its turn (``started``), so the files after it need not wait for it.

        Raises:
            WhisperdError: if the file cannot be opened (capacity alone, a bad file, ...).
        """
        request = TranscriptionRequest(
            AudioSource(job.source),
            self._options,
            model=self._model,
            priority=Priority.BULK,
            diarization=self._speakers[0],
            speaker_references=self._speakers[1],
        )
        while True:
            seen = holders.released
            try:
                return await self._service.open(request)
            except QueueFullError:
                if holders.count <= 1:
                    raise
            started.set()
            await holders.wait_release(seen)
            if self._cancel.cancelled:
                return None

    async def _transcribe(
        self, job: FileJob, transcription: Transcription, writing: asyncio.Lock
    ) -> FileResult:
        result = FileResult(job)
        try:
            self._reporter.started(job, transcription.duration)

            def progress(segment: Segment) -> None:
                self._reporter.advanced(job, segment.end)

            transcript = await transcription.run(cancel=self._cancel, on_segment=progress)
            result.audio_seconds = transcript.duration
            async with writing:
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


@dataclass(frozen=True, slots=True)
class _Slots:
    """What the files of one run share: room to be opened, slots to run, the holders of
    capacity, and the output's lock."""

    room: asyncio.Semaphore
    running: asyncio.Semaphore
    holders: _Holders
    writing: asyncio.Lock
    turn: asyncio.Event | None
    """Set once the file before this one started running (or ended): files start in order."""
    started: asyncio.Event
    """This file's own ``turn`` event for the file after it."""

"""Transcribe files and folders to subtitle and text files (the ``whisperd transcribe`` work).

Folders are searched recursively for media files (by extension; a file named explicitly is
always tried, whatever its name, since decoding detects the format from the bytes). Outputs
mirror the folder layout under the output directory. The next file is decoded while the
current one is transcribed. A file that fails is reported and the others still run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from whisperd.audio.decode import AudioSource, DecodedAudio
from whisperd.audio.formats import FILE_EXTENSIONS, OutputFormat, render
from whisperd.errors import WhisperdError
from whisperd.scheduler.batcher import Priority

if TYPE_CHECKING:
    from collections.abc import Sequence

    from whisperd.engine.base import Segment, Transcript
    from whisperd.engine.options import TranscribeOptions
    from whisperd.service import TranscriptionService

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

    @property
    def ok(self) -> bool:
        """True when the file was transcribed and written."""
        return self.error is None


class Reporter(Protocol):
    """Receives progress; the CLI draws it, tests record it."""

    def started(self, job: FileJob, duration: float) -> None:
        """Decoding is done; ``duration`` seconds of audio will be transcribed."""

    def advanced(self, job: FileJob, position: float) -> None:
        """Transcription reached ``position`` seconds. May be called from a worker thread."""

    def finished(self, result: FileResult) -> None:
        """The file is done (successfully or not)."""


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


def write_outputs(
    transcript: Transcript, stem: Path, formats: Sequence[OutputFormat]
) -> list[Path]:
    """Write ``transcript`` next to ``stem`` in every format; return the files written."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        target = stem.with_name(f"{stem.name}.{FILE_EXTENSIONS[fmt]}")
        target.write_text(render(transcript, fmt), encoding="utf-8")
        written.append(target)
    return written


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """Totals of a batch run."""

    results: list[FileResult]
    wall_seconds: float

    @property
    def audio_seconds(self) -> float:
        """Audio transcribed, in seconds."""
        return sum(r.audio_seconds for r in self.results if r.ok)

    @property
    def failed(self) -> int:
        """Number of files that failed."""
        return sum(not r.ok for r in self.results)

    @property
    def speed(self) -> float:
        """Audio seconds per wall-clock second (the real-time factor's inverse)."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


class BatchRunner:
    """Runs jobs through a service, one at a time, decoding the next file ahead."""

    def __init__(
        self,
        service: TranscriptionService,
        options: TranscribeOptions,
        formats: Sequence[OutputFormat],
        reporter: Reporter,
        *,
        model: str | None = None,
    ) -> None:
        """Prepare a run; nothing starts before :meth:`run`."""
        self._service = service
        self._options = options
        self._formats = tuple(formats)
        self._reporter = reporter
        self._model = model

    async def run(self, jobs: Sequence[FileJob]) -> BatchSummary:
        """Transcribe every job; failures are recorded, never raised."""
        began = time.perf_counter()
        results = []
        pending = self._decode(jobs[0]) if jobs else None
        for index, job in enumerate(jobs):
            assert pending is not None
            decoding, pending = pending, None
            if index + 1 < len(jobs):
                pending = self._decode(jobs[index + 1])
            result = await self._transcribe(job, decoding)
            self._reporter.finished(result)
            results.append(result)
        return BatchSummary(results, time.perf_counter() - began)

    def _decode(self, job: FileJob) -> asyncio.Task[DecodedAudio]:
        return asyncio.create_task(self._service.decode(AudioSource(job.source)))

    async def _transcribe(self, job: FileJob, decoding: asyncio.Task[DecodedAudio]) -> FileResult:
        result = FileResult(job)
        try:
            audio = await decoding
            self._reporter.started(job, audio.duration)

            def progress(segment: Segment) -> None:
                self._reporter.advanced(job, segment.end)

            transcript = await self._service.transcribe_audio(
                audio,
                self._options,
                model=self._model,
                on_segment=progress,
                priority=Priority.BULK,
            )
            result.audio_seconds = transcript.duration
            result.outputs = await asyncio.to_thread(
                write_outputs, transcript, job.stem, self._formats
            )
        except WhisperdError as exc:
            result.error = exc.message
        except OSError as exc:
            result.error = f"could not write the output: {exc}"
        except Exception as exc:  # one file's bug must not stop the batch
            logger.exception("unexpected failure on %s", job.source)
            result.error = f"internal error: {exc!r}"
        return result

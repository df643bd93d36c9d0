"""Where ``whisperd transcribe`` puts a transcript: files next to an output stem, or stdout.

Files are written atomically (a hidden temporary file in the same folder, then a rename), so a
run that is interrupted or fails mid-write leaves either the whole file or nothing, never a
truncated one. ``verbose_json`` carries ``words`` whenever word timestamps were computed; every
other format is rendered exactly as the HTTP API renders it.
"""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING, Protocol

from whisperd.audio.formats import FILE_EXTENSIONS, render

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path
    from typing import IO

    from whisperd.audio.formats import Granularity, OutputFormat
    from whisperd.audio.subtitles import SubtitleStyle
    from whisperd.engine.base import Transcript


class Output(Protocol):
    """Receives each finished transcript (called from a worker thread, one file at a time)."""

    def write(self, transcript: Transcript, stem: Path) -> list[Path]:
        """Deliver ``transcript`` of the file whose output stem is ``stem``; return the files
        written.

        Raises:
            OSError: if it cannot be written.
        """


def granularities(*, word_timestamps: bool) -> tuple[Granularity, ...]:
    """The timestamp arrays of ``verbose_json``: words too whenever they were computed."""
    return ("segment", "word") if word_timestamps else ("segment",)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` so that no reader ever sees a partial file.

    The text goes to a hidden temporary file beside ``path`` (created with the usual
    permissions), which then replaces ``path`` in one step; on any failure or interruption the
    temporary file is removed and ``path`` is left as it was.

    Raises:
        OSError: if the folder is not writable or the disk is full.
    """
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with open(descriptor, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class FileOutput:
    """Writes every chosen format next to the output stem (``talk.srt``, ``talk.vtt``, ...)."""

    def __init__(
        self,
        formats: Sequence[OutputFormat],
        *,
        word_timestamps: bool = False,
        style: SubtitleStyle | None = None,
        logprobs: bool = False,
    ) -> None:
        """Write ``formats``; ``word_timestamps`` adds ``words`` to ``verbose_json``, ``style``
        shapes ``srt`` and ``vtt`` cues, ``logprobs`` adds token logprobs to ``json``."""
        self.formats = tuple(formats)
        self._granularities = granularities(word_timestamps=word_timestamps)
        self._style = style
        self._logprobs = logprobs

    def write(self, transcript: Transcript, stem: Path) -> list[Path]:
        """Write one file per format, each atomically; return them in format order.

        Raises:
            OSError: if a folder cannot be made or a file cannot be written.
        """
        stem.parent.mkdir(parents=True, exist_ok=True)
        written = []
        for fmt in self.formats:
            target = stem.with_name(f"{stem.name}.{FILE_EXTENSIONS[fmt]}")
            text = render(
                transcript,
                fmt,
                granularities=self._granularities,
                style=self._style,
                logprobs=self._logprobs,
            )
            write_atomically(target, text)
            written.append(target)
        return written


class StreamOutput:
    """Prints one format of each transcript to a text stream (standard output for ``-o -``)."""

    def __init__(
        self,
        fmt: OutputFormat,
        stream: IO[str],
        *,
        word_timestamps: bool = False,
        style: SubtitleStyle | None = None,
        logprobs: bool = False,
    ) -> None:
        """Print ``fmt`` to ``stream``; ``word_timestamps`` adds ``words`` to ``verbose_json``,
        ``style`` shapes ``srt`` and ``vtt`` cues, ``logprobs`` adds token logprobs to ``json``."""
        self.format = fmt
        self._stream = stream
        self._granularities = granularities(word_timestamps=word_timestamps)
        self._style = style
        self._logprobs = logprobs

    def write(self, transcript: Transcript, stem: Path) -> list[Path]:
        """Print the transcript, ending with a line break; no file is written.

        Raises:
            OSError: if the stream is closed (a pipe whose reader went away).
        """
        del stem  # nothing goes next to the input
        text = render(
            transcript,
            self.format,
            granularities=self._granularities,
            style=self._style,
            logprobs=self._logprobs,
        )
        self._stream.write(text if text.endswith("\n") else text + "\n")
        self._stream.flush()
        return []

"""Spooled job audio: one file per job under the data directory, durable before it is named.

A file is written under a temporary name, fsynced, renamed to its key and its directory
fsynced, so a key names either a whole file or nothing, even after a crash or a power loss.
A write that fails (the disk is full) leaves nothing behind. Calls block: run them on a thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import time
from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO

from whisperd.errors import JobStoreUnavailableError, StorageFullError

__all__ = ["Spool"]

_TEMP_PREFIX = ".partial-"
_CHUNK = 1024 * 1024
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class Spool:
    """The audio files of jobs, in one directory."""

    def __init__(self, root: Path) -> None:
        """Keep files in ``root`` (see :meth:`open`, which creates and checks it)."""
        self.root = root

    @classmethod
    def open(cls, root: Path) -> Spool:
        """Create ``root`` if needed and check that files can be written, synced and removed.

        Raises:
            JobStoreUnavailableError: if the directory cannot be created or written.
        """
        try:
            root.mkdir(parents=True, exist_ok=True)
            probe = root / f"{_TEMP_PREFIX}probe-{secrets.token_hex(4)}"
            with probe.open("wb") as file:
                file.write(b"whisperd")
                os.fsync(file.fileno())
            probe.unlink()
        except OSError as error:
            raise JobStoreUnavailableError(
                f"The job data directory {root} cannot be written: {error.strerror or error}"
            ) from error
        return cls(root)

    def path(self, key: str) -> Path:
        """The file of ``key``."""
        return self.root / key

    def write(self, source: bytes | BinaryIO | Path) -> str:
        """Store ``source`` (bytes, a binary file read from its position, or a file's path)
        durably under a new key.

        Returns:
            The key: 32 hex digits and ``.audio``.

        Raises:
            StorageFullError: if the disk has no room (nothing is left behind).
            JobStoreUnavailableError: if the file cannot be written for another reason.
        """
        key = f"{secrets.token_hex(16)}.audio"
        temp = self.root / f"{_TEMP_PREFIX}{key}"
        try:
            with temp.open("xb") as file:
                _copy(source, file)
                file.flush()
                os.fsync(file.fileno())
            temp.rename(self.root / key)
            _sync_directory(self.root)
        except OSError as error:
            temp.unlink(missing_ok=True)
            if error.errno in _NO_ROOM:
                raise StorageFullError(
                    "The server has no room to store this job's audio; nothing was kept. "
                    "Retry later."
                ) from error
            raise JobStoreUnavailableError(
                f"The job's audio cannot be stored: {error.strerror or error}"
            ) from error
        return key

    def remove(self, key: str | None) -> None:
        """Delete the file of ``key`` if there is one (None: nothing to do)."""
        if key is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path(key).unlink()

    def sweep(self, keep: Collection[str], *, older_than_s: float) -> int:
        """Delete files that no job names (left by a crash between spooling and storing the
        job, or by a failed write) once they are ``older_than_s`` seconds old.

        Returns:
            How many files were deleted.
        """
        cutoff = time.time() - older_than_s
        removed = 0
        for path in self.root.iterdir():
            if path.name in keep or not path.is_file():
                continue
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
        return removed


def _copy(source: bytes | BinaryIO | Path, file: BinaryIO) -> None:
    if isinstance(source, bytes):
        file.write(source)
    elif isinstance(source, Path):
        with source.open("rb") as given:
            shutil.copyfileobj(given, file, _CHUNK)
    else:
        shutil.copyfileobj(source, file, _CHUNK)


def _sync_directory(path: Path) -> None:
    """fsync a directory, so that a rename in it survives a power loss."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)

"""Spooled audio: whole files or nothing, and no room is a clear error that leaves nothing."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from whisperd.errors import JobStoreUnavailableError
from whisperd.jobs.spool import Spool


def test_every_kind_of_source_is_stored_whole_under_a_new_key(tmp_path: Path) -> None:
    spool = Spool.open(tmp_path / "audio")
    given = tmp_path / "given.wav"
    given.write_bytes(b"from a path")
    keys = [spool.write(b"some bytes"), spool.write(io.BytesIO(b"a stream")), spool.write(given)]
    assert [spool.path(key).read_bytes() for key in keys] == [
        b"some bytes",
        b"a stream",
        b"from a path",
    ]
    assert sorted(p.name for p in spool.root.iterdir()) == sorted(keys)
    spool.remove(keys[0])
    spool.remove(keys[0])
    spool.remove(None)
    assert not spool.path(keys[0]).exists()


def test_the_sweep_deletes_only_old_files_no_job_names(tmp_path: Path) -> None:
    spool = Spool.open(tmp_path)
    kept, orphan, young = spool.write(b"a"), spool.write(b"b"), spool.write(b"c")
    for key in (kept, orphan):
        os.utime(spool.path(key), (1, 1))
    assert spool.sweep({kept}, older_than_s=60) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([kept, young])


def test_an_unwritable_directory_is_refused_with_its_name(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(JobStoreUnavailableError, match="cannot be written"):
        Spool.open(blocker / "audio")


def test_a_full_disk_is_a_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    # A file-size limit makes the write fail as a full disk does (EFBIG), without root.
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        from pathlib import Path
        from whisperd.errors import StorageFullError
        from whisperd.jobs.spool import Spool
        spool = Spool.open(Path({str(tmp_path)!r}))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        try:
            spool.write(b"x" * 300_000)
        except StorageFullError as error:
            print(error.code, error.message)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("insufficient_storage The server has no room")
    assert list(tmp_path.iterdir()) == []

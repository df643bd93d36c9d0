"""A throwaway PostgreSQL server for tests: ``initdb`` and ``pg_ctl`` in a temporary directory.

The cluster listens only on a Unix socket in its own directory (no TCP port to collide on), trusts
local connections, and runs without fsync. PostgreSQL refuses to run as root, so when the tests
run as root the cluster's commands run as the ``postgres`` user (``runuser``). Binaries come
from ``PATH`` or from Debian's ``/usr/lib/postgresql/<version>/bin`` (the ``postgresql``
package). Without them the tests that need the server are skipped, except under CI (``CI`` set),
where they fail.

Fixtures (import their functions into a test module): ``postgres_cluster`` (one per test
session and xdist worker) and ``postgres_url`` (a new empty database per test).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

_DEBIAN_BINARIES = Path("/usr/lib/postgresql")


def _binaries() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None."""
    found = shutil.which("pg_ctl")
    if found is not None and shutil.which("initdb") is not None:
        return Path(found).resolve().parent
    versions = sorted(
        (p for p in _DEBIAN_BINARIES.glob("*/bin") if (p / "pg_ctl").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return versions[-1] if versions else None


@dataclass
class PostgresCluster:
    """A running throwaway cluster."""

    socket_dir: Path
    _names: Iterator[int]

    def url(self, database: str = "postgres") -> str:
        """The libpq URI of ``database`` on this cluster."""
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def new_database(self) -> str:
        """Create an empty database; return its name."""
        name = f"test_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return name

    def drop_database(self, name: str) -> None:
        """Drop the database ``name``, closing its connections."""
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _as_owner(command: list[str]) -> list[str]:
    """``command`` run as the ``postgres`` user when we are root."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is needed here: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session", name="postgres_cluster")
def postgres_cluster_fixture() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster for this test session (stopped and deleted afterwards)."""
    binaries = _binaries()
    if binaries is None:
        _missing("PostgreSQL's server binaries are not installed (Debian: postgresql)")
    assert binaries is not None
    if os.geteuid() == 0:
        # In /tmp, which the postgres user can reach whatever TMPDIR says.
        root = Path(tempfile.mkdtemp(prefix="whisperd-pg-", dir="/tmp"))
        shutil.chown(root, "postgres", "postgres")
    else:
        root = Path(tempfile.mkdtemp(prefix="whisperd-pg-"))
    data, socket_dir = root / "data", root
    done = subprocess.run(
        _as_owner(
            [
                str(binaries / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        ),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        _missing(f"initdb failed: {done.stderr.strip()}")
    options = (
        f"-c listen_addresses='' -c unix_socket_directories='{socket_dir}'"
        " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        " -c shared_buffers=16MB"
    )
    pg_ctl = str(binaries / "pg_ctl")
    started = subprocess.run(
        _as_owner([pg_ctl, "-D", str(data), "-l", str(root / "log"), "-o", options, "-w", "start"]),
        capture_output=True,
        text=True,
    )
    try:
        if started.returncode != 0:
            log = (root / "log").read_text() if (root / "log").exists() else ""
            _missing(f"PostgreSQL did not start: {started.stderr.strip()} {log[-2000:]}")
        yield PostgresCluster(socket_dir, itertools.count(1))
    finally:
        subprocess.run(
            _as_owner([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(name="postgres_url")
def postgres_url_fixture(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """The URI of a new, empty database on the session's cluster, dropped after the test."""
    name = postgres_cluster.new_database()
    try:
        yield postgres_cluster.url(name)
    finally:
        postgres_cluster.drop_database(name)

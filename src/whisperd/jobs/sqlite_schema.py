"""The SQLite job store's connection settings and schema, as numbered migrations applied in
order at open.

The applied version is SQLite's ``PRAGMA user_version``. A migration is never edited once
released: a change of schema is a new entry at the end of :data:`MIGRATIONS`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["MIGRATIONS", "SchemaError", "connect", "migrate"]

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        owner TEXT NOT NULL,
        status TEXT NOT NULL,
        options TEXT NOT NULL,
        audio TEXT,
        created_at REAL NOT NULL,
        max_attempts INTEGER NOT NULL,
        model TEXT,
        response_format TEXT NOT NULL,
        timestamp_granularities TEXT NOT NULL,
        metadata TEXT NOT NULL,
        webhook_url TEXT,
        idempotency_key TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        started_at REAL,
        finished_at REAL,
        run_after REAL NOT NULL DEFAULT 0,
        worker TEXT,
        lease_until REAL,
        progress_s REAL NOT NULL DEFAULT 0,
        duration_s REAL,
        error TEXT,
        webhook TEXT NOT NULL,
        webhook_attempts TEXT NOT NULL DEFAULT '[]'
    );
    CREATE UNIQUE INDEX jobs_idempotency ON jobs (owner, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE INDEX jobs_claim ON jobs (status, run_after, seq);
    CREATE INDEX jobs_owner ON jobs (owner, seq);
    CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
    CREATE TABLE results (
        job_id TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
        body TEXT NOT NULL
    );
    """,
)
"""Migration ``n`` (1-based) brings the schema from version ``n - 1`` to ``n``."""


class SchemaError(RuntimeError):
    """The database was written by a newer whisperd (a schema version this one lacks)."""


def migrate(connection: sqlite3.Connection) -> int:
    """Apply the migrations ``connection``'s database lacks, each in its own transaction.

    Returns:
        The schema version now in force.

    Raises:
        SchemaError: if the database's version is newer than this code knows.
        sqlite3.Error: if the database cannot be read or written.
    """
    version = _version(connection)
    if version > len(MIGRATIONS):
        raise SchemaError(
            f"the job database has schema version {version}, newer than this whisperd's "
            f"{len(MIGRATIONS)}: upgrade whisperd or use another data directory"
        )
    while version < len(MIGRATIONS):
        connection.execute("BEGIN IMMEDIATE")
        try:
            # Another server may have migrated while this one waited for the write lock.
            version = _version(connection)
            if version < len(MIGRATIONS):
                for statement in _statements(MIGRATIONS[version]):
                    connection.execute(statement)
                version += 1
                connection.execute(f"PRAGMA user_version = {version}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    return version


def _version(connection: sqlite3.Connection) -> int:
    row = connection.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]


def connect(path: Path) -> sqlite3.Connection:
    """Open ``path`` (creating it) in WAL mode with ``synchronous=FULL`` and a 5 s busy
    timeout, and migrate it. Blocking; the connection may move to another thread.

    Raises:
        sqlite3.Error: if the file cannot be opened, read or written.
        SchemaError: if a newer whisperd wrote it.
    """
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5)
    try:
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA busy_timeout = 5000")
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot use WAL journaling (got {mode})")
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA foreign_keys = ON")
        migrate(connection)
    except BaseException:
        connection.close()
        raise
    return connection

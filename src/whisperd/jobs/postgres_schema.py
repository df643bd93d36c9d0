"""The PostgreSQL job store's schema, as numbered migrations applied in order at open.

Applied versions are rows of ``whisperd_schema_version``. Every table's name starts with
``whisperd_``, so the store can share a database with other applications. A migration is never
edited once released: a change of schema is a new entry at the end of :data:`MIGRATIONS`.

Several servers may start together on one database: :func:`migrate` runs in one transaction
that first takes a transaction-scoped advisory lock, so one server migrates while the others
wait, then find the schema current. PostgreSQL's DDL is transactional, so a migration that
fails leaves the schema of before.
"""

from __future__ import annotations

from typing import Any, LiteralString

from psycopg import AsyncConnection

from whisperd.jobs.sqlite_schema import SchemaError

__all__ = ["MIGRATIONS", "SchemaError", "migrate"]

_LOCK_KEY = 0x7768_6973_7065_7264  # "whisperd" in ASCII: this schema's advisory lock
"""The key of the advisory lock that serialises migrations across servers."""

MIGRATIONS: tuple[LiteralString, ...] = (
    """
    CREATE TABLE whisperd_jobs (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        owner TEXT NOT NULL,
        status TEXT NOT NULL,
        options JSON NOT NULL,
        audio TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        max_attempts INTEGER NOT NULL,
        model TEXT,
        response_format TEXT NOT NULL,
        timestamp_granularities JSONB NOT NULL,
        metadata JSON NOT NULL,
        webhook_url TEXT,
        idempotency_key TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        started_at DOUBLE PRECISION,
        finished_at DOUBLE PRECISION,
        run_after DOUBLE PRECISION NOT NULL DEFAULT 0,
        worker TEXT,
        lease_until DOUBLE PRECISION,
        progress_s DOUBLE PRECISION NOT NULL DEFAULT 0,
        duration_s DOUBLE PRECISION,
        error JSONB,
        webhook TEXT NOT NULL,
        webhook_attempts JSONB NOT NULL DEFAULT '[]'
    );
    CREATE UNIQUE INDEX whisperd_jobs_idempotency ON whisperd_jobs (owner, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE INDEX whisperd_jobs_live ON whisperd_jobs (seq)
        WHERE status IN ('queued', 'running');
    CREATE INDEX whisperd_jobs_owner ON whisperd_jobs (owner, seq);
    CREATE INDEX whisperd_jobs_finished ON whisperd_jobs (finished_at)
        WHERE finished_at IS NOT NULL;
    CREATE INDEX whisperd_jobs_pending_webhooks ON whisperd_jobs (seq)
        WHERE webhook = 'pending';
    CREATE TABLE whisperd_job_results (
        job_id TEXT PRIMARY KEY REFERENCES whisperd_jobs (id) ON DELETE CASCADE,
        body JSON NOT NULL
    );
    """,
)
"""Migration ``n`` (1-based) brings the schema from version ``n - 1`` to ``n``. ``options``,
``metadata`` and result bodies are ``JSON`` (kept as written, key order included, since they
are echoed back); the fields the store reads or appends to are ``JSONB``."""


async def migrate(connection: AsyncConnection[Any]) -> int:
    """Apply the migrations ``connection``'s database lacks, in one transaction.

    Args:
        connection: A connection outside any transaction.

    Returns:
        The schema version now in force.

    Raises:
        SchemaError: if the database's version is newer than this code knows.
        psycopg.Error: if the database cannot be read or written.
    """
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS whisperd_schema_version ("
            " version INTEGER PRIMARY KEY,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        cursor = await connection.execute(
            "SELECT coalesce(max(version), 0) FROM whisperd_schema_version"
        )
        row = await cursor.fetchone()
        version = int(row[0]) if row is not None else 0
        if version > len(MIGRATIONS):
            raise SchemaError(
                f"the job database has schema version {version}, newer than this whisperd's "
                f"{len(MIGRATIONS)}: upgrade whisperd or use another database"
            )
        for number in range(version + 1, len(MIGRATIONS) + 1):
            await connection.execute(MIGRATIONS[number - 1])
            await connection.execute(
                "INSERT INTO whisperd_schema_version (version) VALUES (%s)", (number,)
            )
    return len(MIGRATIONS)

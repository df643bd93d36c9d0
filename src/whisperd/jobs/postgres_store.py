"""The shared job store: PostgreSQL, for several servers on several hosts.

Selected by ``WHISPERD_DATABASE_URL=postgresql://user:password@host:port/dbname`` (any libpq
connection URI; ``postgres://`` too). Every call borrows a connection from an asynchronous
psycopg 3 pool and runs as one transaction, so nothing blocks the event loop and a crash
leaves each change whole or absent.

How servers share the queue: :meth:`PostgresJobStore.claim` picks the oldest claimable job
with ``SELECT ... FOR UPDATE SKIP LOCKED``, so concurrent claimers skip each other's rows
instead of waiting on them or taking the same one; every later step of a runner (renew,
progress, finish, fail, release) updates the row only while that worker still holds it.
A server that dies stops renewing its lease; once it expires the next claim, on any server,
takes the job again (at-least-once execution). Times are the callers' unix seconds, never the
database's clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, LiteralString

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Json
from psycopg_pool import AsyncConnectionPool

from whisperd.jobs.model import Job, JobError, JobStatus, NewJob, WebhookAttempt, WebhookState
from whisperd.jobs.postgres_rows import INSERT, attempt_json, error_json, insert_values, job_of
from whisperd.jobs.postgres_schema import migrate

__all__ = ["PostgresJobStore"]

_LOCK_HELD = (
    "SELECT * FROM whisperd_jobs WHERE id = %(id)s AND worker = %(worker)s"
    " AND status = 'running' FOR UPDATE"
)
"""Lock a job that ``worker`` still holds (a runner's steps take effect only then)."""

_CLAIMABLE = (
    "SELECT * FROM whisperd_jobs WHERE status IN ('queued', 'running')"
    " AND ((status = 'queued' AND run_after <= %(now)s)"
    " OR (status = 'running' AND lease_until < %(now)s))"
    " ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED"
)

_END = (
    "UPDATE whisperd_jobs SET status = %(status)s, finished_at = %(now)s, lease_until = NULL,"
    " error = coalesce(%(error)s, error),"
    " webhook = CASE webhook WHEN 'waiting' THEN 'pending' ELSE webhook END"
    " WHERE id = %(id)s RETURNING *"
)
"""Move a job to a finished state; its webhook, if it waited for that, becomes pending."""

_LIST = (
    "SELECT * FROM whisperd_jobs WHERE (%(owner)s::text IS NULL OR owner = %(owner)s)"
    " AND (%(status)s::text IS NULL OR status = %(status)s)"
    " AND (%(after)s::text IS NULL OR seq < (SELECT seq FROM whisperd_jobs WHERE id = %(after)s"
    " AND (%(owner)s::text IS NULL OR owner = %(owner)s)))"
    " ORDER BY seq DESC LIMIT %(limit)s"
)

_Cursor = AsyncCursor[DictRow]


class PostgresJobStore:
    """A :class:`~whisperd.jobs.store.JobStore` in a PostgreSQL database (version 12 or later).

    Open it with :meth:`open`; :meth:`close` closes its pool.
    """

    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[Any]]) -> None:
        """Use an open ``pool`` on a migrated database (see :meth:`open`)."""
        self._pool = pool

    @classmethod
    async def open(
        cls, url: str, *, max_connections: int = 10, timeout_s: float = 30.0
    ) -> PostgresJobStore:
        """Connect to ``url`` and bring its schema up to date (safe with servers starting
        together: see :mod:`whisperd.jobs.postgres_schema`).

        Args:
            url: A libpq connection URI, ``postgresql://user:password@host:port/dbname``.
            max_connections: Most connections the store holds at once.
            timeout_s: Seconds to wait for the first connection (and, later, for a free one).

        Raises:
            psycopg.Error: if the database cannot be reached, read or written (the first
                connection is made directly, so its error says why).
            SchemaError: if a newer whisperd wrote it.
        """
        # libpq's connect_timeout is in whole seconds, 2 at least.
        first = await AsyncConnection.connect(
            url, connect_timeout=max(2, round(timeout_s)), prepare_threshold=None
        )
        async with first:
            await migrate(first)
        pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            open=False,
            timeout=timeout_s,
            check=AsyncConnectionPool.check_connection,
            # No server-side prepared statements: safe behind PgBouncer's transaction pooling.
            kwargs={"prepare_threshold": None},
            name="whisperd-jobs",
        )
        try:
            await pool.open(wait=True, timeout=timeout_s)
        except BaseException:
            await pool.close()
            raise
        return cls(pool)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[_Cursor]:
        """A cursor of dict rows inside one transaction, committed on leaving."""
        async with (
            self._pool.connection() as connection,
            connection.transaction(),
            connection.cursor(row_factory=dict_row) as cursor,
        ):
            yield cursor

    @staticmethod
    async def _one(cursor: _Cursor, sql: LiteralString, params: Mapping[str, Any]) -> Job | None:
        await cursor.execute(sql, params)
        row = await cursor.fetchone()
        return job_of(row) if row is not None else None

    @staticmethod
    async def _all(cursor: _Cursor, sql: LiteralString, params: Mapping[str, Any]) -> list[Job]:
        await cursor.execute(sql, params)
        return [job_of(row) for row in await cursor.fetchall()]

    # ----------------------------------------------------------------------------------------
    # Submission and reading

    async def create(self, job: NewJob) -> tuple[Job, bool]:
        """See :meth:`JobStore.create <whisperd.jobs.store.JobStore.create>`."""
        async with self._transaction() as cursor:
            # A concurrent insert of the same key waits here, then yields to the first one.
            created = await self._one(
                cursor,
                INSERT + " ON CONFLICT (owner, idempotency_key)"
                " WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING *",
                insert_values(job),
            )
            if created is not None:
                return created, True
            existing = await self._one(
                cursor,
                "SELECT * FROM whisperd_jobs WHERE owner = %(owner)s AND idempotency_key = %(key)s",
                {"owner": job.owner, "key": job.idempotency_key},
            )
        assert existing is not None
        return existing, False

    async def get(self, job_id: str, *, owner: str | None = None) -> Job | None:
        """See :meth:`JobStore.get <whisperd.jobs.store.JobStore.get>`."""
        async with self._transaction() as cursor:
            return await self._owned(cursor, job_id, owner, lock=False)

    @classmethod
    async def _owned(
        cls, cursor: _Cursor, job_id: str, owner: str | None, *, lock: bool
    ) -> Job | None:
        params = {"id": job_id, "owner": owner}
        if lock:
            return await cls._one(
                cursor,
                "SELECT * FROM whisperd_jobs WHERE id = %(id)s"
                " AND (%(owner)s::text IS NULL OR owner = %(owner)s) FOR UPDATE",
                params,
            )
        return await cls._one(
            cursor,
            "SELECT * FROM whisperd_jobs WHERE id = %(id)s"
            " AND (%(owner)s::text IS NULL OR owner = %(owner)s)",
            params,
        )

    async def list(
        self,
        owner: str | None,
        *,
        status: JobStatus | None = None,
        limit: int = 20,
        after: str | None = None,
    ) -> Sequence[Job]:
        """See :meth:`JobStore.list <whisperd.jobs.store.JobStore.list>`."""
        params = {
            "owner": owner,
            "status": status.value if status else None,
            "after": after,
            "limit": max(limit, 1),
        }
        async with self._transaction() as cursor:
            return await self._all(cursor, _LIST, params)

    async def result(self, job_id: str) -> Mapping[str, Any] | None:
        """See :meth:`JobStore.result <whisperd.jobs.store.JobStore.result>`."""
        async with self._transaction() as cursor:
            await cursor.execute(
                "SELECT body FROM whisperd_job_results WHERE job_id = %(id)s", {"id": job_id}
            )
            row = await cursor.fetchone()
        if row is None:
            return None
        body: Mapping[str, Any] = row["body"]
        return body

    async def audio_keys(self) -> frozenset[str]:
        """See :meth:`JobStore.audio_keys <whisperd.jobs.store.JobStore.audio_keys>`."""
        async with self._transaction() as cursor:
            await cursor.execute("SELECT audio FROM whisperd_jobs WHERE audio IS NOT NULL")
            return frozenset(row["audio"] for row in await cursor.fetchall())

    # ----------------------------------------------------------------------------------------
    # A runner's side

    async def claim(self, worker: str, *, lease_s: float, now: float) -> Job | None:
        """See :meth:`JobStore.claim <whisperd.jobs.store.JobStore.claim>`."""
        async with self._transaction() as cursor:
            while True:
                job = await self._one(cursor, _CLAIMABLE, {"now": now})
                if job is None:
                    return None
                if job.status is JobStatus.RUNNING and job.attempts >= job.max_attempts:
                    error = JobError(
                        f"The server running this job stopped during each of its "
                        f"{job.attempts} attempts.",
                        code="attempts_exhausted",
                    )
                    await self._end(cursor, job.id, JobStatus.FAILED, now, error=error)
                    continue
                return await self._one(
                    cursor,
                    "UPDATE whisperd_jobs SET status = 'running', worker = %(worker)s,"
                    " lease_until = %(lease_until)s, attempts = attempts + 1,"
                    " started_at = coalesce(started_at, %(now)s) WHERE id = %(id)s RETURNING *",
                    {"worker": worker, "lease_until": now + lease_s, "now": now, "id": job.id},
                )

    @classmethod
    async def _end(
        cls, cursor: _Cursor, job_id: str, status: JobStatus, now: float, *, error: JobError | None
    ) -> Job | None:
        params = {
            "status": status.value,
            "now": now,
            "error": error_json(error) if error else None,
            "id": job_id,
        }
        return await cls._one(cursor, _END, params)

    async def renew(self, job_id: str, worker: str, *, lease_s: float, now: float) -> bool:
        """See :meth:`JobStore.renew <whisperd.jobs.store.JobStore.renew>`."""
        async with self._transaction() as cursor:
            await cursor.execute(
                "UPDATE whisperd_jobs SET lease_until = %(lease_until)s WHERE id = %(id)s"
                " AND worker = %(worker)s AND status = 'running'",
                {"lease_until": now + lease_s, "id": job_id, "worker": worker},
            )
            return cursor.rowcount == 1

    async def progress(
        self, job_id: str, worker: str, *, done_s: float, duration_s: float | None
    ) -> bool:
        """See :meth:`JobStore.progress <whisperd.jobs.store.JobStore.progress>`."""
        async with self._transaction() as cursor:
            await cursor.execute(
                "UPDATE whisperd_jobs SET progress_s = %(done)s,"
                " duration_s = coalesce(%(duration)s, duration_s) WHERE id = %(id)s"
                " AND worker = %(worker)s AND status = 'running'",
                {"done": done_s, "duration": duration_s, "id": job_id, "worker": worker},
            )
            return cursor.rowcount == 1

    async def finish(
        self, job_id: str, worker: str, result: Mapping[str, Any], *, now: float
    ) -> Job | None:
        """See :meth:`JobStore.finish <whisperd.jobs.store.JobStore.finish>`."""
        held = {"id": job_id, "worker": worker}
        async with self._transaction() as cursor:
            if await self._one(cursor, _LOCK_HELD, held) is None:
                return None
            await cursor.execute(
                "INSERT INTO whisperd_job_results (job_id, body) VALUES (%(id)s, %(body)s)"
                " ON CONFLICT (job_id) DO UPDATE SET body = EXCLUDED.body",
                {"id": job_id, "body": Json(dict(result))},
            )
            await cursor.execute(
                "UPDATE whisperd_jobs SET progress_s = coalesce(duration_s, progress_s),"
                " error = NULL WHERE id = %(id)s",
                held,
            )
            return await self._end(cursor, job_id, JobStatus.SUCCEEDED, now, error=None)

    async def fail(
        self,
        job_id: str,
        worker: str,
        error: JobError,
        *,
        retry_at: float | None,
        now: float,
    ) -> Job | None:
        """See :meth:`JobStore.fail <whisperd.jobs.store.JobStore.fail>`."""
        held = {"id": job_id, "worker": worker}
        async with self._transaction() as cursor:
            job = await self._one(cursor, _LOCK_HELD, held)
            if job is None:
                return None
            if retry_at is None or job.attempts >= job.max_attempts:
                return await self._end(cursor, job_id, JobStatus.FAILED, now, error=error)
            return await self._one(
                cursor,
                "UPDATE whisperd_jobs SET status = 'queued', lease_until = NULL,"
                " run_after = %(retry_at)s, error = %(error)s WHERE id = %(id)s RETURNING *",
                {"retry_at": retry_at, "error": error_json(error), "id": job_id},
            )

    async def release(self, job_id: str, worker: str) -> bool:
        """See :meth:`JobStore.release <whisperd.jobs.store.JobStore.release>`."""
        async with self._transaction() as cursor:
            await cursor.execute(
                "UPDATE whisperd_jobs SET status = 'queued', lease_until = NULL, run_after = 0,"
                " attempts = greatest(attempts - 1, 0) WHERE id = %(id)s"
                " AND worker = %(worker)s AND status = 'running'",
                {"id": job_id, "worker": worker},
            )
            return cursor.rowcount == 1

    # ----------------------------------------------------------------------------------------
    # An owner's side, and retention

    async def cancel(self, job_id: str, *, owner: str | None, now: float) -> Job | None:
        """See :meth:`JobStore.cancel <whisperd.jobs.store.JobStore.cancel>`."""
        async with self._transaction() as cursor:
            job = await self._owned(cursor, job_id, owner, lock=True)
            if job is None or job.finished:
                return job
            await cursor.execute(
                "DELETE FROM whisperd_job_results WHERE job_id = %(id)s", {"id": job_id}
            )
            return await self._end(cursor, job_id, JobStatus.CANCELLED, now, error=None)

    async def delete(self, job_id: str, *, owner: str | None) -> Job | None:
        """See :meth:`JobStore.delete <whisperd.jobs.store.JobStore.delete>`."""
        async with self._transaction() as cursor:
            return await self._one(
                cursor,
                "DELETE FROM whisperd_jobs WHERE id = %(id)s"
                " AND (%(owner)s::text IS NULL OR owner = %(owner)s) RETURNING *",
                {"id": job_id, "owner": owner},
            )

    async def drop_audio(self, job_id: str) -> None:
        """See :meth:`JobStore.drop_audio <whisperd.jobs.store.JobStore.drop_audio>`."""
        async with self._transaction() as cursor:
            await cursor.execute(
                "UPDATE whisperd_jobs SET audio = NULL WHERE id = %(id)s", {"id": job_id}
            )

    async def purge(self, finished_before: float) -> Sequence[Job]:
        """See :meth:`JobStore.purge <whisperd.jobs.store.JobStore.purge>`."""
        async with self._transaction() as cursor:
            await cursor.execute(
                "DELETE FROM whisperd_jobs WHERE finished_at IS NOT NULL"
                " AND finished_at < %(before)s RETURNING *",
                {"before": finished_before},
            )
            rows = sorted(await cursor.fetchall(), key=lambda row: int(row["seq"]))
        return [job_of(row) for row in rows]

    # ----------------------------------------------------------------------------------------
    # Webhooks

    async def record_webhook(
        self, job_id: str, attempt: WebhookAttempt | None, *, state: WebhookState
    ) -> None:
        """See :meth:`JobStore.record_webhook <whisperd.jobs.store.JobStore.record_webhook>`."""
        async with self._transaction() as cursor:
            await cursor.execute(
                "UPDATE whisperd_jobs SET webhook = %(state)s,"
                " webhook_attempts = webhook_attempts || %(added)s WHERE id = %(id)s",
                {"state": state.value, "added": attempt_json(attempt), "id": job_id},
            )

    async def pending_webhooks(self) -> Sequence[Job]:
        """See :meth:`JobStore.pending_webhooks <whisperd.jobs.store.JobStore.pending_webhooks>`."""
        async with self._transaction() as cursor:
            return await self._all(
                cursor, "SELECT * FROM whisperd_jobs WHERE webhook = 'pending' ORDER BY seq", {}
            )

    async def close(self) -> None:
        """See :meth:`JobStore.close <whisperd.jobs.store.JobStore.close>`."""
        await self._pool.close()

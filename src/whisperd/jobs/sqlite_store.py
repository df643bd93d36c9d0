"""The embedded job store: one SQLite file, safe for several servers on one host.

Durability: WAL journal with ``synchronous=FULL`` (every commit is fsynced, so a committed
job survives a power loss), a 5 s busy timeout, and every write in a ``BEGIN IMMEDIATE``
transaction, so two servers never claim the same job. SQLite's WAL needs shared memory:
the file must be on a local disk, not NFS. Every call runs on the store's own thread, never
on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from whisperd.errors import JobStoreUnavailableError, StorageFullError
from whisperd.jobs.model import Job, JobError, JobStatus, NewJob, WebhookAttempt, WebhookState
from whisperd.jobs.sqlite_rows import INSERT, attempts_json, error_json, insert_values, job_of
from whisperd.jobs.sqlite_schema import connect

__all__ = ["SqliteJobStore"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

_LIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


class SqliteJobStore:
    """A :class:`~whisperd.jobs.store.JobStore` in one SQLite database file."""

    def __init__(self, connection: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        """Use an open, migrated ``connection`` owned by ``executor``'s one thread (see
        :meth:`open`)."""
        self._db = connection
        self._executor = executor

    @classmethod
    async def open(cls, path: Path) -> SqliteJobStore:
        """Open (creating it if needed) the database at ``path`` and bring its schema up to date.

        Raises:
            sqlite3.Error: if the file cannot be opened, read or written.
            SchemaError: if a newer whisperd wrote it.
        """
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisperd-jobs-db")
        loop = asyncio.get_running_loop()
        try:
            connection = await loop.run_in_executor(executor, connect, path)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(connection, executor)

    async def _run(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run ``fn`` on the store's thread.

        Raises:
            StorageFullError: if the disk is full (SQLITE_FULL); nothing was written.
            JobStoreUnavailableError: if the database cannot be read or written otherwise
                (locked by another server for longer than the busy timeout, I/O error, ...).
        """
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))
        except sqlite3.Error as error:
            if getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                raise StorageFullError(
                    "The server has no room left for its job database; nothing was kept. "
                    "Retry later."
                ) from error
            raise JobStoreUnavailableError(f"The job database cannot be used: {error}") from error

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _one(self, sql: str, *args: object) -> Job | None:
        row = self._db.execute(sql, args).fetchone()
        return job_of(row) if row is not None else None

    # ----------------------------------------------------------------------------------------
    # Submission and reading

    async def create(self, job: NewJob) -> tuple[Job, bool]:
        """See :meth:`JobStore.create <whisperd.jobs.store.JobStore.create>`."""
        return await self._run(self._create, job)

    def _create(self, job: NewJob) -> tuple[Job, bool]:
        with self._write() as db:
            if job.idempotency_key is not None:
                existing = self._one(
                    "SELECT * FROM jobs WHERE owner = ? AND idempotency_key = ?",
                    job.owner,
                    job.idempotency_key,
                )
                if existing is not None:
                    return existing, False
            db.execute(INSERT, insert_values(job))
            created = self._one("SELECT * FROM jobs WHERE id = ?", job.id)
        assert created is not None
        return created, True

    async def get(self, job_id: str, *, owner: str | None = None) -> Job | None:
        """See :meth:`JobStore.get <whisperd.jobs.store.JobStore.get>`."""
        return await self._run(self._get, job_id, owner)

    def _get(self, job_id: str, owner: str | None) -> Job | None:
        if owner is None:
            return self._one("SELECT * FROM jobs WHERE id = ?", job_id)
        return self._one("SELECT * FROM jobs WHERE id = ? AND owner = ?", job_id, owner)

    async def list(
        self,
        owner: str | None,
        *,
        status: JobStatus | None = None,
        limit: int = 20,
        after: str | None = None,
    ) -> Sequence[Job]:
        """See :meth:`JobStore.list <whisperd.jobs.store.JobStore.list>`."""
        return await self._run(self._list, owner, status, limit, after)

    def _list(
        self, owner: str | None, status: JobStatus | None, limit: int, after: str | None
    ) -> Sequence[Job]:
        rows = self._db.execute(
            "SELECT * FROM jobs WHERE (:owner IS NULL OR owner = :owner)"
            " AND (:status IS NULL OR status = :status)"
            " AND (:after IS NULL OR seq < (SELECT seq FROM jobs WHERE id = :after"
            " AND (:owner IS NULL OR owner = :owner)))"
            " ORDER BY seq DESC LIMIT :limit",
            {
                "owner": owner,
                "status": status.value if status else None,
                "after": after,
                "limit": max(limit, 1),
            },
        )
        return [job_of(row) for row in rows]

    async def result(self, job_id: str) -> Mapping[str, Any] | None:
        """See :meth:`JobStore.result <whisperd.jobs.store.JobStore.result>`."""
        return await self._run(self._result, job_id)

    def _result(self, job_id: str) -> Mapping[str, Any] | None:
        row = self._db.execute("SELECT body FROM results WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        body: Mapping[str, Any] = json.loads(row["body"])
        return body

    async def audio_keys(self) -> frozenset[str]:
        """See :meth:`JobStore.audio_keys <whisperd.jobs.store.JobStore.audio_keys>`."""
        return await self._run(self._audio_keys)

    def _audio_keys(self) -> frozenset[str]:
        rows = self._db.execute("SELECT audio FROM jobs WHERE audio IS NOT NULL")
        return frozenset(row["audio"] for row in rows)

    # ----------------------------------------------------------------------------------------
    # A runner's side

    async def claim(self, worker: str, *, lease_s: float, now: float) -> Job | None:
        """See :meth:`JobStore.claim <whisperd.jobs.store.JobStore.claim>`."""
        return await self._run(self._claim, worker, lease_s, now)

    def _claim(self, worker: str, lease_s: float, now: float) -> Job | None:
        with self._write() as db:
            while True:
                job = self._one(
                    "SELECT * FROM jobs WHERE (status = 'queued' AND run_after <= ?)"
                    " OR (status = 'running' AND lease_until < ?) ORDER BY seq LIMIT 1",
                    now,
                    now,
                )
                if job is None:
                    return None
                if job.status is JobStatus.RUNNING and job.attempts >= job.max_attempts:
                    error = JobError(
                        f"The server running this job stopped during each of its "
                        f"{job.attempts} attempts.",
                        code="attempts_exhausted",
                    )
                    self._end(job.id, JobStatus.FAILED, now, error=error)
                    continue
                db.execute(
                    "UPDATE jobs SET status = 'running', worker = ?, lease_until = ?,"
                    " attempts = attempts + 1, started_at = coalesce(started_at, ?)"
                    " WHERE id = ?",
                    (worker, now + lease_s, now, job.id),
                )
                return self._one("SELECT * FROM jobs WHERE id = ?", job.id)

    def _end(self, job_id: str, status: JobStatus, now: float, *, error: JobError | None) -> None:
        """Move a job to a finished ``status`` (inside a write transaction)."""
        self._db.execute(
            "UPDATE jobs SET status = ?, finished_at = ?, lease_until = NULL,"
            " error = coalesce(?, error),"
            " webhook = CASE webhook WHEN 'waiting' THEN 'pending' ELSE webhook END"
            " WHERE id = ?",
            (status.value, now, error_json(error) if error else None, job_id),
        )

    async def renew(self, job_id: str, worker: str, *, lease_s: float, now: float) -> bool:
        """See :meth:`JobStore.renew <whisperd.jobs.store.JobStore.renew>`."""
        return await self._run(self._renew, job_id, worker, lease_s, now)

    def _renew(self, job_id: str, worker: str, lease_s: float, now: float) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "UPDATE jobs SET lease_until = ? WHERE id = ? AND worker = ?"
                " AND status = 'running'",
                (now + lease_s, job_id, worker),
            )
        return cursor.rowcount == 1

    async def progress(
        self, job_id: str, worker: str, *, done_s: float, duration_s: float | None
    ) -> bool:
        """See :meth:`JobStore.progress <whisperd.jobs.store.JobStore.progress>`."""
        return await self._run(self._progress, job_id, worker, done_s, duration_s)

    def _progress(self, job_id: str, worker: str, done_s: float, duration_s: float | None) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "UPDATE jobs SET progress_s = ?, duration_s = coalesce(?, duration_s)"
                " WHERE id = ? AND worker = ? AND status = 'running'",
                (done_s, duration_s, job_id, worker),
            )
        return cursor.rowcount == 1

    async def finish(
        self, job_id: str, worker: str, result: Mapping[str, Any], *, now: float
    ) -> Job | None:
        """See :meth:`JobStore.finish <whisperd.jobs.store.JobStore.finish>`."""
        body = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
        return await self._run(self._finish, job_id, worker, body, now)

    def _finish(self, job_id: str, worker: str, body: str, now: float) -> Job | None:
        with self._write() as db:
            if not self._holds(job_id, worker):
                return None
            db.execute(
                "INSERT OR REPLACE INTO results (job_id, body) VALUES (?, ?)", (job_id, body)
            )
            db.execute(
                "UPDATE jobs SET progress_s = coalesce(duration_s, progress_s) WHERE id = ?",
                (job_id,),
            )
            self._end(job_id, JobStatus.SUCCEEDED, now, error=None)
            db.execute("UPDATE jobs SET error = NULL WHERE id = ?", (job_id,))
            return self._one("SELECT * FROM jobs WHERE id = ?", job_id)

    def _holds(self, job_id: str, worker: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM jobs WHERE id = ? AND worker = ? AND status = 'running'",
            (job_id, worker),
        ).fetchone()
        return row is not None

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
        return await self._run(self._fail, job_id, worker, error, retry_at, now)

    def _fail(
        self, job_id: str, worker: str, error: JobError, retry_at: float | None, now: float
    ) -> Job | None:
        with self._write() as db:
            job = self._one(
                "SELECT * FROM jobs WHERE id = ? AND worker = ? AND status = 'running'",
                job_id,
                worker,
            )
            if job is None:
                return None
            if retry_at is not None and job.attempts < job.max_attempts:
                db.execute(
                    "UPDATE jobs SET status = 'queued', lease_until = NULL, run_after = ?,"
                    " error = ? WHERE id = ?",
                    (retry_at, error_json(error), job_id),
                )
            else:
                self._end(job_id, JobStatus.FAILED, now, error=error)
            return self._one("SELECT * FROM jobs WHERE id = ?", job_id)

    async def release(self, job_id: str, worker: str) -> bool:
        """See :meth:`JobStore.release <whisperd.jobs.store.JobStore.release>`."""
        return await self._run(self._release, job_id, worker)

    def _release(self, job_id: str, worker: str) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "UPDATE jobs SET status = 'queued', lease_until = NULL, run_after = 0,"
                " attempts = max(attempts - 1, 0)"
                " WHERE id = ? AND worker = ? AND status = 'running'",
                (job_id, worker),
            )
        return cursor.rowcount == 1

    # ----------------------------------------------------------------------------------------
    # An owner's side, and retention

    async def cancel(self, job_id: str, *, owner: str | None, now: float) -> Job | None:
        """See :meth:`JobStore.cancel <whisperd.jobs.store.JobStore.cancel>`."""
        return await self._run(self._cancel, job_id, owner, now)

    def _cancel(self, job_id: str, owner: str | None, now: float) -> Job | None:
        with self._write() as db:
            job = self._get(job_id, owner)
            if job is None or job.finished:
                return job
            self._end(job_id, JobStatus.CANCELLED, now, error=None)
            db.execute("DELETE FROM results WHERE job_id = ?", (job_id,))
            return self._one("SELECT * FROM jobs WHERE id = ?", job_id)

    async def delete(self, job_id: str, *, owner: str | None) -> Job | None:
        """See :meth:`JobStore.delete <whisperd.jobs.store.JobStore.delete>`."""
        return await self._run(self._delete, job_id, owner)

    def _delete(self, job_id: str, owner: str | None) -> Job | None:
        with self._write() as db:
            job = self._get(job_id, owner)
            if job is not None:
                db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            return job

    async def drop_audio(self, job_id: str) -> None:
        """See :meth:`JobStore.drop_audio <whisperd.jobs.store.JobStore.drop_audio>`."""
        await self._run(self._drop_audio, job_id)

    def _drop_audio(self, job_id: str) -> None:
        with self._write() as db:
            db.execute("UPDATE jobs SET audio = NULL WHERE id = ?", (job_id,))

    async def purge(self, finished_before: float) -> Sequence[Job]:
        """See :meth:`JobStore.purge <whisperd.jobs.store.JobStore.purge>`."""
        return await self._run(self._purge, finished_before)

    def _purge(self, finished_before: float) -> Sequence[Job]:
        with self._write() as db:
            rows = db.execute(
                "SELECT * FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?",
                (finished_before,),
            ).fetchall()
            jobs = [job_of(row) for row in rows]
            db.executemany("DELETE FROM jobs WHERE id = ?", [(job.id,) for job in jobs])
        return jobs

    # ----------------------------------------------------------------------------------------
    # Webhooks

    async def record_webhook(
        self, job_id: str, attempt: WebhookAttempt | None, *, state: WebhookState
    ) -> None:
        """See :meth:`JobStore.record_webhook <whisperd.jobs.store.JobStore.record_webhook>`."""
        await self._run(self._record_webhook, job_id, attempt, state)

    def _record_webhook(
        self, job_id: str, attempt: WebhookAttempt | None, state: WebhookState
    ) -> None:
        with self._write() as db:
            job = self._one("SELECT * FROM jobs WHERE id = ?", job_id)
            if job is None:
                return
            added = () if attempt is None else (attempt,)
            attempts = attempts_json((*job.webhook_attempts, *added))
            db.execute(
                "UPDATE jobs SET webhook = ?, webhook_attempts = ? WHERE id = ?",
                (state.value, attempts, job_id),
            )

    async def pending_webhooks(self) -> Sequence[Job]:
        """See :meth:`JobStore.pending_webhooks <whisperd.jobs.store.JobStore.pending_webhooks>`."""
        return await self._run(self._pending_webhooks)

    def _pending_webhooks(self) -> Sequence[Job]:
        rows = self._db.execute("SELECT * FROM jobs WHERE webhook = 'pending' ORDER BY seq")
        return [job_of(row) for row in rows]

    async def close(self) -> None:
        """See :meth:`JobStore.close <whisperd.jobs.store.JobStore.close>`."""
        await self._run(self._db.close)
        self._executor.shutdown(wait=True)

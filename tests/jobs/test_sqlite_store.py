"""The SQLite job store: every JobStore rule, on a real database file."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from whisperd.errors import JobStoreUnavailableError
from whisperd.jobs.model import JobError, JobStatus, NewJob, WebhookAttempt, WebhookState
from whisperd.jobs.sqlite_schema import MIGRATIONS, SchemaError
from whisperd.jobs.sqlite_store import SqliteJobStore

T = TypeVar("T")


def _new(number: int, **changes: Any) -> NewJob:
    values: dict[str, Any] = {
        "id": f"job_{number:032x}",
        "owner": "alice",
        "options": {"task": "transcribe", "language": "en"},
        "audio": f"{number}.audio",
        "created_at": 1000.0 + number,
        "max_attempts": 2,
    }
    values.update(changes)
    return NewJob(**values)


def _with_store(path: Path, scenario: Callable[[SqliteJobStore], Awaitable[T]]) -> T:
    async def run() -> T:
        store = await SqliteJobStore.open(path)
        try:
            return await scenario(store)
        finally:
            await store.close()

    return asyncio.run(run())


def test_the_database_is_wal_with_full_sync_and_versioned(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"

    async def scenario(store: SqliteJobStore) -> None:
        await store.create(_new(1))

    _with_store(path, scenario)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert db.execute("SELECT count(*) FROM jobs").fetchone()[0] == 1


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(SchemaError, match="newer"):
        _with_store(path, lambda store: store.get("x"))


def test_an_idempotency_key_returns_the_owners_first_job(tmp_path: Path) -> None:
    async def scenario(store: SqliteJobStore) -> list[tuple[str, bool]]:
        first = await store.create(_new(1, idempotency_key="k"))
        again = await store.create(_new(2, idempotency_key="k"))
        other_owner = await store.create(_new(3, idempotency_key="k", owner="bob"))
        return [(job.id, created) for job, created in (first, again, other_owner)]

    assert _with_store(tmp_path / "db", scenario) == [
        (f"job_{1:032x}", True),
        (f"job_{1:032x}", False),
        (f"job_{3:032x}", True),
    ]


def test_owners_see_only_their_jobs_and_pages_go_newest_first(tmp_path: Path) -> None:
    async def scenario(store: SqliteJobStore) -> dict[str, Any]:
        for number in range(1, 6):
            await store.create(_new(number))
        await store.create(_new(9, owner="bob"))
        first = await store.list("alice", limit=2)
        second = await store.list("alice", limit=2, after=first[-1].id)
        third = await store.list("alice", limit=2, after=second[-1].id)
        return {
            "pages": [[job.id[-1] for job in page] for page in (first, second, third)],
            "bob's": await store.get(f"job_{9:032x}", owner="alice"),
            "cursor of bob's": await store.list("alice", after=f"job_{9:032x}"),
            "queued": len(await store.list("alice", status=JobStatus.QUEUED)),
            "running": len(await store.list("alice", status=JobStatus.RUNNING)),
        }

    seen = _with_store(tmp_path / "db", scenario)
    assert seen == {
        "pages": [["5", "4"], ["3", "2"], ["1"]],
        "bob's": None,
        "cursor of bob's": [],
        "queued": 5,
        "running": 0,
    }


def test_a_claim_takes_the_oldest_job_once_and_an_expired_lease_frees_it(tmp_path: Path) -> None:
    async def scenario(store: SqliteJobStore) -> None:
        await store.create(_new(1))
        await store.create(_new(2))
        a = await store.claim("a", lease_s=10, now=2000)
        b = await store.claim("b", lease_s=10, now=2000)
        assert (a and a.id[-1], b and b.id[-1]) == ("1", "2")
        assert a is not None
        assert (a.status, a.worker, a.attempts, a.lease_until) == (
            JobStatus.RUNNING,
            "a",
            1,
            2010,
        )
        assert await store.claim("c", lease_s=10, now=2005) is None
        assert await store.renew(a.id, "a", lease_s=10, now=2005)
        # b's server died: its lease ends at 2010; a renewed until 2015.
        taken = await store.claim("c", lease_s=10, now=2011)
        assert taken is not None
        assert (taken.id, taken.attempts, taken.worker) == (b.id, 2, "c")
        assert not await store.renew(b.id, "b", lease_s=10, now=2011)
        assert await store.finish(b.id, "b", {"text": "late"}, now=2012) is None
        assert await store.result(b.id) is None

    _with_store(tmp_path / "db", scenario)


def test_a_job_whose_server_keeps_dying_ends_failed(tmp_path: Path) -> None:
    async def scenario(store: SqliteJobStore) -> None:
        job, _ = await store.create(_new(1))
        await store.claim("a", lease_s=1, now=2000)
        await store.claim("b", lease_s=1, now=2002)
        assert await store.claim("c", lease_s=1, now=2004) is None
        failed = await store.get(job.id)
        assert failed is not None
        assert failed.status is JobStatus.FAILED
        assert failed.error is not None
        assert failed.error.code == "attempts_exhausted"
        assert failed.finished_at == 2004

    _with_store(tmp_path / "db", scenario)


def test_finish_stores_the_result_and_failures_retry_until_attempts_run_out(
    tmp_path: Path,
) -> None:
    async def scenario(store: SqliteJobStore) -> None:
        done, _ = await store.create(_new(1, webhook_url="https://example.com/hook"))
        flaky, _ = await store.create(_new(2))
        await store.claim("w", lease_s=10, now=2000)
        await store.progress(done.id, "w", done_s=3.0, duration_s=8.0)
        finished = await store.finish(done.id, "w", {"text": "hello"}, now=2001)
        assert finished is not None
        assert (finished.status, finished.progress_s, finished.webhook) == (
            JobStatus.SUCCEEDED,
            8.0,
            WebhookState.PENDING,
        )
        assert await store.result(done.id) == {"text": "hello"}

        error = JobError("boom", code="transcription_failed")
        await store.claim("w", lease_s=10, now=2002)
        retried = await store.fail(flaky.id, "w", error, retry_at=2100, now=2003)
        assert retried is not None
        assert (retried.status, retried.error) == (JobStatus.QUEUED, error)
        assert await store.claim("w", lease_s=10, now=2050) is None
        await store.claim("w", lease_s=10, now=2100)
        ended = await store.fail(flaky.id, "w", error, retry_at=2200, now=2101)
        assert ended is not None
        assert (ended.status, ended.attempts) == (JobStatus.FAILED, 2)
        assert [job.id for job in await store.pending_webhooks()] == [done.id]

    _with_store(tmp_path / "db", scenario)


def test_cancel_release_delete_and_purge(tmp_path: Path) -> None:
    async def scenario(store: SqliteJobStore) -> None:
        for number in range(1, 5):
            await store.create(_new(number))
        one = await store.claim("w", lease_s=10, now=2000)
        assert one is not None
        cancelled = await store.cancel(one.id, owner="alice", now=2001)
        assert cancelled is not None
        assert cancelled.status is JobStatus.CANCELLED
        assert not await store.renew(one.id, "w", lease_s=10, now=2002)
        assert await store.cancel(one.id, owner="bob", now=2001) is None

        two = await store.claim("w", lease_s=10, now=2003)
        assert two is not None
        assert await store.release(two.id, "w")
        again = await store.get(two.id)
        assert again is not None
        assert (again.status, again.attempts) == (JobStatus.QUEUED, 0)

        deleted = await store.delete(f"job_{4:032x}", owner="alice")
        assert deleted is not None
        assert deleted.audio == "4.audio"
        assert await store.get(f"job_{4:032x}") is None

        purged = await store.purge(finished_before=2001.5)
        assert [job.id for job in purged] == [one.id]
        assert {job.id[-1] for job in await store.list(None)} == {"2", "3"}
        assert await store.audio_keys() == frozenset({"2.audio", "3.audio"})

    _with_store(tmp_path / "db", scenario)


def test_webhook_attempts_are_kept_in_order(tmp_path: Path) -> None:
    async def scenario(store: SqliteJobStore) -> None:
        job, _ = await store.create(_new(1, webhook_url="https://example.com/hook"))
        failed = WebhookAttempt(at=1.0, status_code=500, error="HTTP 500")
        await store.record_webhook(job.id, failed, state=WebhookState.PENDING)
        delivered = WebhookAttempt(at=2.0, status_code=204, error=None)
        await store.record_webhook(job.id, delivered, state=WebhookState.DELIVERED)
        stored = await store.get(job.id)
        assert stored is not None
        assert (stored.webhook, stored.webhook_attempts) == (
            WebhookState.DELIVERED,
            (failed, delivered),
        )

    _with_store(tmp_path / "db", scenario)


def test_a_database_locked_by_another_server_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"

    async def scenario(store: SqliteJobStore) -> None:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # holds the write lock past the busy timeout
        try:
            with pytest.raises(JobStoreUnavailableError, match="database is locked"):
                await store.create(_new(1))
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert (await store.create(_new(1)))[1] is True

    _with_store(path, scenario)

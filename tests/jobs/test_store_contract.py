"""The ``JobStore`` contract, run against every store: SQLite and a real PostgreSQL server."""

from __future__ import annotations

import asyncio

from postgres_server import postgres_cluster_fixture, postgres_url_fixture  # noqa: F401
from store_contract import StoreOpener, new_job, open_store_fixture, run  # noqa: F401

from whisperd.jobs.model import JobError, JobStatus, WebhookAttempt, WebhookState
from whisperd.jobs.store import JobStore

LEASE = 10.0
ERROR = JobError("The model ran out of memory.", code="transcription_failed")


# ------------------------------------------------------------------------- submission, reading


def test_a_created_job_is_queued_with_every_field_kept(open_store: StoreOpener) -> None:
    async def scenario(store: JobStore) -> None:
        submitted = new_job(
            1,
            model="tiny",
            response_format="verbose_json",
            timestamp_granularities=("segment", "word"),
            metadata={"z": 1, "a": {"nested": ["é", 2]}},
            webhook_url="https://hooks.example.com/x",
            idempotency_key="key-1",
        )
        job, created = await store.create(submitted)
        assert created is True
        assert job == await store.get(job.id)
        assert job.status is JobStatus.QUEUED
        assert (job.id, job.owner, job.audio, job.created_at) == (
            submitted.id,
            "owner-a",
            "audio-1",
            1.0,
        )
        assert job.options == {"language": "en", "temperature": [0.0, 0.2]}
        assert job.model == "tiny"
        assert job.response_format == "verbose_json"
        assert job.timestamp_granularities == ("segment", "word")
        assert list(job.metadata) == ["z", "a"]  # the submitter's order is echoed back
        assert job.metadata == {"z": 1, "a": {"nested": ["é", 2]}}
        assert job.webhook_url == "https://hooks.example.com/x"
        assert job.webhook is WebhookState.WAITING
        assert (job.attempts, job.started_at, job.finished_at, job.worker) == (0, None, None, None)
        assert (job.progress_s, job.duration_s, job.error, job.webhook_attempts) == (
            0.0,
            None,
            None,
            (),
        )
        plain, _ = await store.create(new_job(2))
        assert plain.webhook is WebhookState.NONE
        assert plain.metadata == {}

    run(open_store, scenario)


def test_an_idempotency_key_gives_the_owners_existing_job(open_store: StoreOpener) -> None:
    async def scenario(store: JobStore) -> None:
        first, created = await store.create(new_job(1, idempotency_key="k"))
        again, created_again = await store.create(new_job(2, idempotency_key="k"))
        other, created_other = await store.create(new_job(3, idempotency_key="k", owner="b"))
        assert (created, created_again, created_other) == (True, False, True)
        assert again == first
        assert other.id == new_job(3).id
        assert await store.get(new_job(2).id) is None

    run(open_store, scenario)


def test_owners_see_only_their_jobs(open_store: StoreOpener) -> None:
    async def scenario(store: JobStore) -> None:
        job, _ = await store.create(new_job(1))
        assert await store.get(job.id, owner="owner-a") == job
        assert await store.get(job.id, owner="someone-else") is None
        assert await store.get("job_unknown") is None
        assert await store.cancel(job.id, owner="someone-else", now=5.0) is None
        assert await store.delete(job.id, owner="someone-else") is None
        assert await store.list("someone-else") == []

    run(open_store, scenario)


def test_list_is_newest_first_filtered_and_paged(open_store: StoreOpener) -> None:
    async def scenario(store: JobStore) -> None:
        for number in range(1, 8):
            await store.create(new_job(number, owner="a" if number != 4 else "b"))
        await store.claim("w", lease_s=LEASE, now=100.0)  # job 1 runs
        ids = [job.id for job in await store.list("a")]
        assert ids == [new_job(n).id for n in (7, 6, 5, 3, 2, 1)]
        assert [job.id for job in await store.list(None, limit=2)] == [
            new_job(7).id,
            new_job(6).id,
        ]
        page = await store.list("a", limit=2, after=new_job(5).id)
        assert [job.id for job in page] == [new_job(3).id, new_job(2).id]
        running = await store.list("a", status=JobStatus.RUNNING)
        assert [job.id for job in running] == [new_job(1).id]
        assert await store.list("a", after="job_unknown") == []
        assert await store.list("a", after=new_job(4).id) == []  # b's job is no cursor of a's
        assert len(await store.list(None, limit=0)) == 1

    run(open_store, scenario)


# ------------------------------------------------------------------------- a runner's steps


def test_claim_takes_the_oldest_due_job_and_starts_an_attempt(open_store: StoreOpener) -> None:
    async def scenario(store: JobStore) -> None:
        assert await store.claim("w1", lease_s=LEASE, now=50.0) is None
        await store.create(new_job(1))
        await store.create(new_job(2))
        job = await store.claim("w1", lease_s=LEASE, now=50.0)
        assert job is not None
        assert job.id == new_job(1).id
        assert job.status is JobStatus.RUNNING
        assert (job.worker, job.lease_until, job.attempts, job.started_at) == (
            "w1",
            60.0,
            1,
            50.0,
        )
        second = await store.claim("w2", lease_s=LEASE, now=51.0)
        assert second is not None
        assert second.id == new_job(2).id
        assert await store.claim("w3", lease_s=LEASE, now=52.0) is None

    run(open_store, scenario)


def test_only_the_holder_renews_records_progress_and_finishes(open_store: StoreOpener) -> None:
    async def scenario(store: JobStore) -> None:
        created, _ = await store.create(new_job(1, webhook_url="https://h.example.com/"))
        await store.claim("w1", lease_s=LEASE, now=50.0)
        assert await store.renew(created.id, "w1", lease_s=LEASE, now=55.0) is True
        assert await store.renew(created.id, "w2", lease_s=LEASE, now=55.0) is False
        assert await store.progress(created.id, "w1", done_s=3.0, duration_s=12.5) is True
        assert await store.progress(created.id, "w2", done_s=9.0, duration_s=None) is False
        job = await store.get(created.id)
        assert job is not None
        assert (job.lease_until, job.progress_s, job.duration_s) == (65.0, 3.0, 12.5)
        result = {"text": "héllo", "segments": [{"id": 0, "words": None}], "duration": 12.5}
        assert await store.finish(created.id, "w2", {"text": "no"}, now=58.0) is None
        assert await store.result(created.id) is None
        done = await store.finish(created.id, "w1", result, now=60.0)
        assert done is not None
        assert done.status is JobStatus.SUCCEEDED
        assert (done.finished_at, done.progress_s, done.lease_until) == (60.0, 12.5, None)
        assert done.webhook is WebhookState.PENDING
        assert await store.result(created.id) == result
        assert list(await store.result(created.id) or {}) == ["text", "segments", "duration"]
        assert await store.renew(created.id, "w1", lease_s=LEASE, now=61.0) is False
        assert await store.finish(created.id, "w1", result, now=62.0) is None

    run(open_store, scenario)


def test_a_failed_attempt_is_retried_after_its_back_off(open_store: StoreOpener) -> None:
    async def scenario(store: JobStore) -> None:
        created, _ = await store.create(new_job(1, max_attempts=2))
        await store.claim("w1", lease_s=LEASE, now=10.0)
        assert await store.fail(created.id, "w2", ERROR, retry_at=20.0, now=11.0) is None
        queued = await store.fail(created.id, "w1", ERROR, retry_at=20.0, now=11.0)
        assert queued is not None
        assert queued.status is JobStatus.QUEUED
        assert (queued.run_after, queued.error, queued.attempts) == (20.0, ERROR, 1)
        assert await store.claim("w1", lease_s=LEASE, now=19.0) is None
        again = await store.claim("w2", lease_s=LEASE, now=20.0)
        assert again is not None
        assert (again.attempts, again.error, again.started_at) == (2, ERROR, 10.0)
        failed = await store.fail(created.id, "w2", ERROR, retry_at=30.0, now=21.0)
        assert failed is not None
        assert failed.status is JobStatus.FAILED  # no attempts left, whatever retry_at says
        assert (failed.finished_at, failed.error) == (21.0, ERROR)

    run(open_store, scenario)


def test_a_failure_without_retry_ends_the_job(open_store: StoreOpener) -> None:
    async def scenario(store: JobStore) -> None:
        created, _ = await store.create(new_job(1, webhook_url="https://h.example.com/"))
        await store.claim("w1", lease_s=LEASE, now=10.0)
        failed = await store.fail(created.id, "w1", ERROR, retry_at=None, now=11.0)
        assert failed is not None
        assert (failed.status, failed.error, failed.attempts) == (JobStatus.FAILED, ERROR, 1)
        assert failed.webhook is WebhookState.PENDING

    run(open_store, scenario)


def test_an_expired_lease_is_reclaimed_and_the_old_holder_is_shut_out(
    open_store: StoreOpener,
) -> None:
    async def scenario(store: JobStore) -> None:
        created, _ = await store.create(new_job(1))
        await store.claim("dead", lease_s=LEASE, now=0.0)
        assert await store.claim("alive", lease_s=LEASE, now=10.0) is None  # not yet expired
        taken = await store.claim("alive", lease_s=LEASE, now=10.5)
        assert taken is not None
        assert (taken.worker, taken.attempts, taken.lease_until) == ("alive", 2, 20.5)
        assert await store.renew(created.id, "dead", lease_s=LEASE, now=11.0) is False
        assert await store.progress(created.id, "dead", done_s=1.0, duration_s=None) is False
        assert await store.finish(created.id, "dead", {"text": "x"}, now=11.0) is None
        assert await store.fail(created.id, "dead", ERROR, retry_at=None, now=11.0) is None
        assert await store.release(created.id, "dead") is False
        done = await store.finish(created.id, "alive", {"text": "y"}, now=12.0)
        assert done is not None
        assert done.status is JobStatus.SUCCEEDED

    run(open_store, scenario)


def test_attempts_are_bounded_when_servers_keep_dying(open_store: StoreOpener) -> None:
    async def scenario(store: JobStore) -> None:
        doomed, _ = await store.create(new_job(1, max_attempts=2))
        healthy, _ = await store.create(new_job(2))
        first = await store.claim("a", lease_s=LEASE, now=0.0)
        assert first is not None
        assert first.id == doomed.id
        second = await store.claim("b", lease_s=LEASE, now=0.0)
        assert second is not None
        assert second.id == healthy.id
        await store.finish(healthy.id, "b", {"text": "ok"}, now=1.0)
        retaken = await store.claim("b", lease_s=LEASE, now=11.0)
        assert retaken is not None
        assert (retaken.id, retaken.attempts) == (doomed.id, 2)
        assert await store.claim("c", lease_s=LEASE, now=22.0) is None
        failed = await store.get(doomed.id)
        assert failed is not None
        assert failed.status is JobStatus.FAILED
        assert failed.error is not None
        assert failed.error.code == "attempts_exhausted"
        assert failed.finished_at == 22.0

    run(open_store, scenario)


def test_a_released_job_goes_back_without_using_an_attempt(open_store: StoreOpener) -> None:
    async def scenario(store: JobStore) -> None:
        created, _ = await store.create(new_job(1))
        await store.claim("w1", lease_s=LEASE, now=5.0)
        assert await store.release(created.id, "w2") is False
        assert await store.release(created.id, "w1") is True
        job = await store.get(created.id)
        assert job is not None
        assert (job.status, job.attempts, job.lease_until) == (JobStatus.QUEUED, 0, None)
        again = await store.claim("w2", lease_s=LEASE, now=5.0)
        assert again is not None
        assert again.attempts == 1

    run(open_store, scenario)


# ------------------------------------------------------------------------- owners, retention


def test_cancel_ends_live_jobs_only(open_store: StoreOpener) -> None:
    async def scenario(store: JobStore) -> None:
        queued, _ = await store.create(new_job(1, webhook_url="https://h.example.com/"))
        running, _ = await store.create(new_job(2))
        await store.claim("w1", lease_s=LEASE, now=1.0)  # job 1
        await store.claim("w2", lease_s=LEASE, now=1.0)  # job 2
        cancelled = await store.cancel(queued.id, owner="owner-a", now=3.0)
        assert cancelled is not None
        assert (cancelled.status, cancelled.finished_at) == (JobStatus.CANCELLED, 3.0)
        assert cancelled.webhook is WebhookState.PENDING
        assert cancelled.audio == "audio-1"
        assert await store.renew(queued.id, "w1", lease_s=LEASE, now=4.0) is False
        await store.finish(running.id, "w2", {"text": "done"}, now=4.0)
        unchanged = await store.cancel(running.id, owner=None, now=5.0)
        assert unchanged is not None
        assert unchanged.status is JobStatus.SUCCEEDED
        assert await store.result(running.id) == {"text": "done"}
        assert await store.cancel("job_unknown", owner=None, now=5.0) is None

    run(open_store, scenario)


def test_delete_purge_and_audio_keys(open_store: StoreOpener) -> None:
    async def scenario(store: JobStore) -> None:
        for number in (1, 2, 3):
            await store.create(new_job(number))
        for _ in (1, 2):
            job = await store.claim("w", lease_s=LEASE, now=0.0)
            assert job is not None
            await store.finish(job.id, "w", {"n": job.id}, now=float(job.created_at * 100))
        assert await store.audio_keys() == {"audio-1", "audio-2", "audio-3"}
        await store.drop_audio(new_job(3).id)
        assert await store.audio_keys() == {"audio-1", "audio-2"}
        purged = await store.purge(finished_before=150.0)  # job 1 finished at 100, job 2 at 200
        assert [job.id for job in purged] == [new_job(1).id]
        assert purged[0].audio == "audio-1"
        assert await store.get(new_job(1).id) is None
        assert await store.result(new_job(1).id) is None
        deleted = await store.delete(new_job(2).id, owner="owner-a")
        assert deleted is not None
        assert deleted.status is JobStatus.SUCCEEDED
        assert await store.result(new_job(2).id) is None
        assert await store.delete(new_job(2).id, owner=None) is None
        assert [job.id for job in await store.list(None)] == [new_job(3).id]

    run(open_store, scenario)


def test_webhook_attempts_and_pending_webhooks(open_store: StoreOpener) -> None:
    async def scenario(store: JobStore) -> None:
        for number in (1, 2, 3):
            await store.create(new_job(number, webhook_url="https://h.example.com/"))
            job = await store.claim("w", lease_s=LEASE, now=0.0)
            assert job is not None
            await store.finish(job.id, "w", {}, now=1.0)
        assert [job.id for job in await store.pending_webhooks()] == [
            new_job(n).id for n in (1, 2, 3)
        ]
        failed = WebhookAttempt(at=2.0, status_code=500, error="The receiver answered HTTP 500.")
        timed_out = WebhookAttempt(at=3.5, status_code=None, error="timeout")
        delivered = WebhookAttempt(at=9.0, status_code=204, error=None)
        job_id = new_job(2).id
        await store.record_webhook(job_id, failed, state=WebhookState.PENDING)
        await store.record_webhook(job_id, timed_out, state=WebhookState.PENDING)
        await store.record_webhook(job_id, delivered, state=WebhookState.PENDING)
        await store.record_webhook(job_id, None, state=WebhookState.DELIVERED)
        job = await store.get(job_id)
        assert job is not None
        assert job.webhook is WebhookState.DELIVERED
        assert job.webhook_attempts == (failed, timed_out, delivered)
        await store.record_webhook(new_job(3).id, None, state=WebhookState.FAILED)
        assert [job.id for job in await store.pending_webhooks()] == [new_job(1).id]

    run(open_store, scenario)


def test_jobs_outlive_the_store(open_store: StoreOpener) -> None:
    async def scenario(store: JobStore) -> None:
        job, _ = await store.create(new_job(1))
        await store.claim("w", lease_s=LEASE, now=1.0)
        await store.finish(job.id, "w", {"text": "kept"}, now=2.0)

    async def reopened(store: JobStore) -> None:
        job = await store.get(new_job(1).id)
        assert job is not None
        assert job.status is JobStatus.SUCCEEDED
        assert await store.result(job.id) == {"text": "kept"}

    run(open_store, scenario)
    run(open_store, reopened)


# ------------------------------------------------------------------------- several servers


def test_concurrent_claimers_never_claim_one_job_twice(open_store: StoreOpener) -> None:
    """Several stores (as several servers would) claim from one database at once."""
    jobs, servers, claimers_each = 60, 3, 3

    async def main() -> list[str]:
        stores = [await open_store() for _ in range(servers)]
        try:
            for number in range(1, jobs + 1):
                await stores[0].create(new_job(number))

            async def claimer(store: JobStore, name: str) -> list[str]:
                claimed: list[str] = []
                while (job := await store.claim(name, lease_s=60.0, now=1.0)) is not None:
                    claimed.append(job.id)
                    assert await store.finish(job.id, name, {"by": name}, now=2.0) is not None
                return claimed

            done = await asyncio.gather(
                *(
                    claimer(store, f"server{s}-claimer{c}")
                    for s, store in enumerate(stores)
                    for c in range(claimers_each)
                )
            )
            return [job_id for claimed in done for job_id in claimed]
        finally:
            for store in stores:
                await store.close()

    claimed = asyncio.run(main())
    assert sorted(claimed) == [new_job(n).id for n in range(1, jobs + 1)]

"""What only the PostgreSQL store does, on a real PostgreSQL server: row locks skipped by
claims, migrations shared by servers starting together and applied whole or not at all,
racing idempotent submissions, and the URL handling of its opening."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from postgres_server import (  # noqa: F401 - fixtures
    PostgresCluster,
    postgres_cluster_fixture,
    postgres_url_fixture,
)
from store_contract import new_job

from whisperd.errors import JobStoreUnavailableError
from whisperd.jobs import postgres_schema
from whisperd.jobs.database_url import is_postgres_url, shown_url
from whisperd.jobs.postgres_opening import check_postgres
from whisperd.jobs.postgres_schema import MIGRATIONS, SchemaError
from whisperd.jobs.postgres_store import PostgresJobStore


def test_a_claim_skips_a_job_another_transaction_has_locked(postgres_url: str) -> None:
    async def main() -> None:
        store = await PostgresJobStore.open(postgres_url)
        try:
            for number in (1, 2):
                await store.create(new_job(number))
            async with await psycopg.AsyncConnection.connect(postgres_url) as other:
                await other.execute(
                    "SELECT id FROM whisperd_jobs WHERE id = %s FOR UPDATE", (new_job(1).id,)
                )
                # Job 1 is locked by an open transaction (another server mid-claim): the claim
                # neither waits for it nor takes it.
                job = await store.claim("w", lease_s=10.0, now=1.0)
                assert job is not None
                assert job.id == new_job(2).id
                assert await store.claim("w", lease_s=10.0, now=1.0) is None
                await other.rollback()
            job = await store.claim("w", lease_s=10.0, now=1.0)
            assert job is not None
            assert job.id == new_job(1).id
        finally:
            await store.close()

    asyncio.run(main())


def _versions(url: str) -> list[int]:
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT version FROM whisperd_schema_version ORDER BY 1")
        return [row[0] for row in rows]


def test_servers_starting_together_migrate_once(postgres_url: str) -> None:
    async def main() -> None:
        stores = await asyncio.gather(*(PostgresJobStore.open(postgres_url) for _ in range(6)))
        for store in stores:
            await store.close()

    asyncio.run(main())
    assert _versions(postgres_url) == list(range(1, len(MIGRATIONS) + 1))

    async def reopen() -> None:
        store = await PostgresJobStore.open(postgres_url)
        await store.close()

    asyncio.run(reopen())
    assert _versions(postgres_url) == list(range(1, len(MIGRATIONS) + 1))


def test_a_database_from_a_newer_whisperd_is_refused(postgres_url: str) -> None:
    async def open_store() -> None:
        store = await PostgresJobStore.open(postgres_url)
        await store.close()

    asyncio.run(open_store())
    with psycopg.connect(postgres_url) as connection:
        connection.execute(
            "INSERT INTO whisperd_schema_version (version) VALUES (%s)", (len(MIGRATIONS) + 1,)
        )
    with pytest.raises(SchemaError, match="newer than this whisperd"):
        asyncio.run(open_store())


def _columns(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'whisperd_jobs'"
        )
        return {row[0] for row in rows}


def test_a_new_migration_applies_whole_or_not_at_all(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def open_store() -> None:
        store = await PostgresJobStore.open(postgres_url)
        await store.close()

    asyncio.run(open_store())
    released = len(MIGRATIONS)
    broken = "ALTER TABLE whisperd_jobs ADD COLUMN note TEXT; ALTER TABLE no_such_table ADD x INT"
    monkeypatch.setattr(postgres_schema, "MIGRATIONS", (*MIGRATIONS, broken))
    with pytest.raises(psycopg.errors.UndefinedTable):
        asyncio.run(open_store())
    assert _versions(postgres_url) == list(range(1, released + 1))
    assert "note" not in _columns(postgres_url)  # the first statement was rolled back too

    fixed = "ALTER TABLE whisperd_jobs ADD COLUMN note TEXT"
    monkeypatch.setattr(postgres_schema, "MIGRATIONS", (*MIGRATIONS, fixed))
    asyncio.run(open_store())
    assert _versions(postgres_url) == list(range(1, released + 2))
    assert "note" in _columns(postgres_url)


def test_racing_submissions_with_one_idempotency_key_make_one_job(postgres_url: str) -> None:
    async def main() -> list[tuple[str, bool]]:
        stores = [await PostgresJobStore.open(postgres_url) for _ in range(3)]
        try:
            done = await asyncio.gather(
                *(stores[n % 3].create(new_job(n, idempotency_key="same")) for n in range(1, 13))
            )
            return [(job.id, created) for job, created in done]
        finally:
            for store in stores:
                await store.close()

    done = asyncio.run(main())
    assert sum(created for _, created in done) == 1
    assert len({job_id for job_id, _ in done}) == 1


def test_a_database_that_cannot_be_reached_fails_to_open(
    postgres_cluster: PostgresCluster,
) -> None:
    url = postgres_cluster.url("no_such_database")
    with pytest.raises(psycopg.OperationalError, match="no_such_database"):
        asyncio.run(PostgresJobStore.open(url, timeout_s=1.0))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://whisperd:s3cret@db:5432/jobs", "postgresql://whisperd:***@db:5432/jobs"),
        ("postgres://:s3cret@db/jobs?sslmode=require", "postgres://:***@db/jobs?sslmode=require"),
        ("postgresql://db/jobs?user=w&password=s3cret", "postgresql://db/jobs?user=w&password=***"),
        ("postgresql://whisperd@db/jobs", "postgresql://whisperd@db/jobs"),
        ("postgresql:///jobs?host=/run/postgresql", "postgresql:///jobs?host=/run/postgresql"),
    ],
)
def test_urls_are_shown_without_their_password(url: str, shown: str) -> None:
    assert is_postgres_url(url)
    assert shown_url(url) == shown


def test_other_urls_are_not_postgres() -> None:
    assert not is_postgres_url(None)
    assert not is_postgres_url("sqlite:///var/lib/whisperd/jobs.sqlite3")
    assert not is_postgres_url("mysql://db/jobs")


def test_the_startup_check_migrates_or_names_what_fails(postgres_cluster: PostgresCluster) -> None:
    name = postgres_cluster.new_database()
    try:
        check_postgres(postgres_cluster.url(name))
        assert _versions(postgres_cluster.url(name)) == list(range(1, len(MIGRATIONS) + 1))
    finally:
        postgres_cluster.drop_database(name)
    missing = postgres_cluster.url("no_such_database").replace("postgres@", "postgres:pw@")
    with pytest.raises(JobStoreUnavailableError) as caught:
        check_postgres(missing, timeout_s=1.0)
    assert "postgres:***@" in caught.value.message
    assert 'database "no_such_database" does not exist' in caught.value.message
    assert ":pw@" not in caught.value.message

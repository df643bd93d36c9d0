"""Helpers shared by the job store tests: a store fixture over every implementation, new jobs,
and running a scenario on an event loop of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from whisperd.jobs.model import NewJob
from whisperd.jobs.postgres_store import PostgresJobStore
from whisperd.jobs.sqlite_store import SqliteJobStore
from whisperd.jobs.store import JobStore

T = TypeVar("T")

StoreOpener = Callable[[], Awaitable[JobStore]]
"""Opens one more store on the test's database (each one is like another server)."""


def sqlite_opener(path: Path) -> StoreOpener:
    async def open_store() -> JobStore:
        return await SqliteJobStore.open(path)

    return open_store


def postgres_opener(url: str) -> StoreOpener:
    async def open_store() -> JobStore:
        return await PostgresJobStore.open(url, max_connections=4)

    return open_store


@pytest.fixture(params=["sqlite", "postgres"], name="open_store")
def open_store_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreOpener]:
    """Opens stores on a new, empty database of each implementation."""
    if request.param == "sqlite":
        yield sqlite_opener(tmp_path / "jobs.sqlite3")
    else:
        yield postgres_opener(request.getfixturevalue("postgres_url"))


def run(open_store: StoreOpener, scenario: Callable[[JobStore], Awaitable[T]]) -> T:
    """Run ``scenario`` with one open store, closed afterwards, on a new event loop."""

    async def main() -> T:
        store = await open_store()
        try:
            return await scenario(store)
        finally:
            await store.close()

    return asyncio.run(main())


def new_job(number: int, **fields: Any) -> NewJob:
    """A queued job numbered ``number`` (ids sort by number), created at ``number`` seconds."""
    values: dict[str, Any] = {
        "id": f"job_{number:032x}",
        "owner": "owner-a",
        "options": {"language": "en", "temperature": [0.0, 0.2]},
        "audio": f"audio-{number}",
        "created_at": float(number),
        "max_attempts": 3,
    }
    values.update(fields)
    return NewJob(**values)

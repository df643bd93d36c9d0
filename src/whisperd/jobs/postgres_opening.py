"""Choosing and opening the PostgreSQL job store from ``WHISPERD_DATABASE_URL``.

A ``database_url`` starting ``postgresql://`` or ``postgres://`` (any libpq connection URI, for
example ``postgresql://whisperd:PASSWORD@db.internal:5432/whisperd?sslmode=verify-full``;
:func:`whisperd.jobs.database_url.is_postgres_url`) selects
:class:`~whisperd.jobs.postgres_store.PostgresJobStore`. Imported only when it does, so other
servers never load the PostgreSQL driver. Failures become one
:class:`~whisperd.errors.JobStoreUnavailableError` whose message never shows the password.
"""

from __future__ import annotations

import asyncio

import psycopg

from whisperd.errors import JobStoreUnavailableError
from whisperd.jobs.database_url import shown_url
from whisperd.jobs.postgres_schema import SchemaError
from whisperd.jobs.postgres_store import PostgresJobStore

__all__ = ["check_postgres", "open_postgres"]


async def open_postgres(url: str, *, timeout_s: float = 30.0) -> PostgresJobStore:
    """:meth:`PostgresJobStore.open` for a server: failures as one user-facing error.

    Raises:
        JobStoreUnavailableError: the database cannot be reached, read or written, or a newer
            whisperd wrote it; the message names the URL without its password.
    """
    try:
        return await PostgresJobStore.open(url, timeout_s=timeout_s)
    except (psycopg.Error, SchemaError) as error:
        raise JobStoreUnavailableError(
            f"The job database {shown_url(url)} cannot be used: {error}"
        ) from error


def check_postgres(url: str, *, timeout_s: float = 10.0) -> None:
    """Connect to ``url`` and bring its schema up to date, then disconnect. Blocking: for the
    checks before a server listens, never from a running event loop.

    Raises:
        JobStoreUnavailableError: as :func:`open_postgres`.
    """

    async def check() -> None:
        store = await open_postgres(url, timeout_s=timeout_s)
        await store.close()

    asyncio.run(check())

"""Choosing and opening the PostgreSQL job store from ``WHISPERD_DATABASE_URL``.

A ``database_url`` starting ``postgresql://`` or ``postgres://`` (any libpq connection URI, for
example ``postgresql://whisperd:PASSWORD@db.internal:5432/whisperd?sslmode=verify-full``) selects
:class:`~whisperd.jobs.postgres_store.PostgresJobStore`. Failures become one
:class:`~whisperd.errors.JobStoreUnavailableError` whose message never shows the password.
"""

from __future__ import annotations

import asyncio
from typing import TypeGuard
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import psycopg

from whisperd.errors import JobStoreUnavailableError
from whisperd.jobs.postgres_schema import SchemaError
from whisperd.jobs.postgres_store import PostgresJobStore

__all__ = ["POSTGRES_SCHEMES", "check_postgres", "is_postgres_url", "open_postgres", "shown_url"]

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
"""How a ``database_url`` naming PostgreSQL starts."""


def is_postgres_url(url: str | None) -> TypeGuard[str]:
    """True if ``url`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return url is not None and url.startswith(POSTGRES_SCHEMES)


def shown_url(url: str) -> str:
    """``url`` fit for messages and logs: any password (in the user part or the ``password``
    parameter) replaced by ``***``."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if parts.password is None and all(name != "password" for name, _ in pairs):
        return url
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@" + netloc.rsplit("@", 1)[-1]
    query = "&".join(
        f"{name}=***" if name == "password" else f"{name}={value}" for name, value in pairs
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


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

"""Which database a ``WHISPERD_DATABASE_URL`` names, and how to show it without its password.

Kept apart from the PostgreSQL store so that choosing the store, and naming it in messages,
does not load the PostgreSQL driver (psycopg and its pool, about 9 MiB of resident memory) in a
server whose jobs use SQLite or are off.
"""

from __future__ import annotations

from typing import TypeGuard
from urllib.parse import parse_qsl, urlsplit, urlunsplit

__all__ = ["POSTGRES_SCHEMES", "is_postgres_url", "shown_url"]

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

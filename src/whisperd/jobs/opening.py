"""Open (and check) a server's jobs from its settings: the store, the spool, the runner.

Jobs are on when ``data_dir`` is set. The store is the SQLite file ``jobs.sqlite3`` there
unless ``database_url`` names another (``sqlite:///PATH``) or a PostgreSQL database
(``postgresql://...``, :mod:`whisperd.jobs.postgres_opening`, imported only then: the driver
costs memory every other server would carry); audio is spooled to
``data_dir/audio``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from whisperd.errors import JobStoreUnavailableError
from whisperd.jobs.attempt import AttemptConfig
from whisperd.jobs.database_url import is_postgres_url
from whisperd.jobs.runner import JobRunner, RunnerConfig, worker_id
from whisperd.jobs.service import JobService
from whisperd.jobs.spool import Spool
from whisperd.jobs.sqlite_schema import SchemaError, connect
from whisperd.jobs.sqlite_store import SqliteJobStore
from whisperd.jobs.webhooks import webhook_sender

if TYPE_CHECKING:
    from whisperd.config import Settings
    from whisperd.jobs.store import JobStore
    from whisperd.service import TranscriptionService

__all__ = ["check_jobs", "open_jobs", "sqlite_path"]

_SQLITE_PREFIX = "sqlite:///"


def sqlite_path(settings: Settings) -> Path:
    """The SQLite database file the settings name.

    Raises:
        JobStoreUnavailableError: if ``database_url`` is not a ``sqlite:///`` URL.
    """
    url = settings.database_url
    if url is None:
        assert settings.data_dir is not None
        return settings.data_dir / "jobs.sqlite3"
    if url.startswith(_SQLITE_PREFIX):
        return Path(url.removeprefix(_SQLITE_PREFIX))
    raise JobStoreUnavailableError(
        f"The job database URL {url.split('://')[0]}://... is not supported by this server: "
        "use sqlite:///PATH or postgresql://... (or leave it unset)."
    )


def check_jobs(settings: Settings) -> None:
    """Check, before a server listens, that its jobs can be stored: the data directory can be
    written and the database opened and migrated. Nothing to check with jobs off. Blocking.

    Raises:
        JobStoreUnavailableError: naming what cannot be used, and why.
    """
    if settings.data_dir is None:
        return
    Spool.open(settings.data_dir / "audio")
    if is_postgres_url(settings.database_url):
        from whisperd.jobs.postgres_opening import check_postgres

        check_postgres(settings.database_url)
        return
    path = sqlite_path(settings)
    try:
        connect(path).close()
    except (sqlite3.Error, SchemaError) as error:
        raise _unavailable(path, error) from error


async def open_jobs(settings: Settings, service: TranscriptionService) -> JobService | None:
    """Open the server's jobs and start its runner; None with jobs off (no ``data_dir``).

    Raises:
        JobStoreUnavailableError: if the data directory or the database cannot be used.
    """
    if settings.data_dir is None:
        return None
    spool = await asyncio.to_thread(Spool.open, settings.data_dir / "audio")
    store: JobStore
    if is_postgres_url(settings.database_url):
        from whisperd.jobs.postgres_opening import open_postgres

        store = await open_postgres(settings.database_url)
    else:
        path = sqlite_path(settings)
        try:
            store = await SqliteJobStore.open(path)
        except (sqlite3.Error, SchemaError) as error:
            raise _unavailable(path, error) from error
    webhooks = webhook_sender(settings)
    runner = JobRunner(
        store,
        spool,
        service,
        config=RunnerConfig(max_running=settings.max_running_jobs, ttl_s=settings.job_ttl),
        attempts=AttemptConfig(worker=worker_id(), lease_s=settings.job_lease_s),
        webhooks=webhooks,
    )
    await runner.start()
    return JobService(
        store,
        spool,
        runner,
        max_attempts=settings.job_max_attempts,
        webhooks=webhooks,
        metrics=service.metrics,
    )


def _unavailable(path: Path, error: Exception) -> JobStoreUnavailableError:
    return JobStoreUnavailableError(f"The job database {path} cannot be used: {error}")

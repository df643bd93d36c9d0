"""Job records to SQLite rows and back (JSON columns for the structured fields)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from whisperd.jobs.model import (
    Job,
    JobError,
    JobStatus,
    NewJob,
    WebhookAttempt,
    WebhookState,
    job_from_columns,
)

__all__ = ["attempts_json", "error_json", "insert_values", "job_of"]

INSERT = (
    "INSERT INTO jobs (id, owner, status, options, audio, created_at, max_attempts, model, "
    "response_format, timestamp_granularities, metadata, webhook_url, idempotency_key, webhook) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
"""The insert of a new job; its values come from :func:`insert_values`."""


def insert_values(job: NewJob) -> tuple[Any, ...]:
    """The values of :data:`INSERT` for ``job`` (queued)."""
    webhook = WebhookState.WAITING if job.webhook_url else WebhookState.NONE
    return (
        job.id,
        job.owner,
        JobStatus.QUEUED.value,
        _dumps(job.options),
        job.audio,
        job.created_at,
        job.max_attempts,
        job.model,
        job.response_format,
        _dumps(list(job.timestamp_granularities)),
        _dumps(job.metadata),
        job.webhook_url,
        job.idempotency_key,
        webhook.value,
    )


def error_json(error: JobError) -> str:
    """``error`` as the JSON text of the ``error`` column."""
    return _dumps(
        {"message": error.message, "type": error.type, "code": error.code, "param": error.param}
    )


def attempts_json(attempts: tuple[WebhookAttempt, ...]) -> str:
    """``attempts`` as the JSON text of the ``webhook_attempts`` column."""
    return _dumps([{"at": a.at, "status_code": a.status_code, "error": a.error} for a in attempts])


_JSON_COLUMNS = ("options", "timestamp_granularities", "metadata", "error", "webhook_attempts")


def job_of(row: sqlite3.Row) -> Job:
    """The job a ``SELECT * FROM jobs`` row holds."""
    columns = {key: row[key] for key in row.keys()}  # noqa: SIM118 (sqlite3.Row)
    for key in _JSON_COLUMNS:
        columns[key] = json.loads(columns[key]) if columns[key] else None
    return job_from_columns(columns)


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

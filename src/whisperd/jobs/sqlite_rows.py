"""Job records to SQLite rows and back (JSON columns for the structured fields)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from whisperd.jobs.model import Job, JobError, JobStatus, NewJob, WebhookAttempt, WebhookState

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


def job_of(row: sqlite3.Row) -> Job:
    """The job a ``SELECT * FROM jobs`` row holds."""
    error = json.loads(row["error"]) if row["error"] else None
    return Job(
        id=row["id"],
        owner=row["owner"],
        status=JobStatus(row["status"]),
        options=json.loads(row["options"]),
        audio=row["audio"],
        created_at=row["created_at"],
        max_attempts=row["max_attempts"],
        model=row["model"],
        response_format=row["response_format"],
        timestamp_granularities=tuple(json.loads(row["timestamp_granularities"])),
        metadata=json.loads(row["metadata"]),
        webhook_url=row["webhook_url"],
        idempotency_key=row["idempotency_key"],
        attempts=row["attempts"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        run_after=row["run_after"],
        worker=row["worker"],
        lease_until=row["lease_until"],
        progress_s=row["progress_s"],
        duration_s=row["duration_s"],
        error=JobError(**error) if error else None,
        webhook=WebhookState(row["webhook"]),
        webhook_attempts=tuple(
            WebhookAttempt(**attempt) for attempt in json.loads(row["webhook_attempts"])
        ),
    )


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

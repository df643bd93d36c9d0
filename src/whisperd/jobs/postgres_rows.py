"""Job records to PostgreSQL rows and back (``JSON``/``JSONB`` columns for structured fields)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg.types.json import Json, Jsonb

from whisperd.jobs.model import (
    Job,
    JobError,
    JobStatus,
    NewJob,
    WebhookAttempt,
    WebhookState,
    job_from_columns,
)

__all__ = ["INSERT", "attempt_json", "error_json", "insert_values", "job_of"]

INSERT = (
    "INSERT INTO whisperd_jobs (id, owner, status, options, audio, created_at, max_attempts,"
    " model, response_format, timestamp_granularities, metadata, webhook_url, idempotency_key,"
    " webhook) VALUES (%(id)s, %(owner)s, %(status)s, %(options)s, %(audio)s, %(created_at)s,"
    " %(max_attempts)s, %(model)s, %(response_format)s, %(timestamp_granularities)s,"
    " %(metadata)s, %(webhook_url)s, %(idempotency_key)s, %(webhook)s)"
)
"""The insert of a new job; its values come from :func:`insert_values`."""


def insert_values(job: NewJob) -> dict[str, Any]:
    """The parameters of :data:`INSERT` for ``job`` (queued)."""
    webhook = WebhookState.WAITING if job.webhook_url else WebhookState.NONE
    return {
        "id": job.id,
        "owner": job.owner,
        "status": JobStatus.QUEUED.value,
        "options": Json(dict(job.options)),
        "audio": job.audio,
        "created_at": job.created_at,
        "max_attempts": job.max_attempts,
        "model": job.model,
        "response_format": job.response_format,
        "timestamp_granularities": Jsonb(list(job.timestamp_granularities)),
        "metadata": Json(dict(job.metadata)),
        "webhook_url": job.webhook_url,
        "idempotency_key": job.idempotency_key,
        "webhook": webhook.value,
    }


def error_json(error: JobError) -> Jsonb:
    """``error`` as the value of the ``error`` column."""
    return Jsonb(
        {"message": error.message, "type": error.type, "code": error.code, "param": error.param}
    )


def attempt_json(attempt: WebhookAttempt | None) -> Jsonb:
    """``attempt`` as a JSON array to append to ``webhook_attempts`` (empty for None)."""
    if attempt is None:
        return Jsonb([])
    return Jsonb([{"at": attempt.at, "status_code": attempt.status_code, "error": attempt.error}])


def job_of(row: Mapping[str, Any]) -> Job:
    """The job a ``SELECT * FROM whisperd_jobs`` row (as a dict) holds."""
    return job_from_columns(row)

"""What a durable transcription job is: its states, its error, its webhook state, its record.

A job moves ``queued -> running -> succeeded | failed``, back from ``running`` to ``queued``
when an attempt fails with attempts left (or its server died and its lease expired), and to
``cancelled`` from ``queued`` or ``running`` when its owner deletes it. Every store
(:mod:`whisperd.jobs.store`) keeps exactly these fields; times are unix seconds (floats).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FINISHED",
    "Job",
    "JobError",
    "JobStatus",
    "NewJob",
    "WebhookAttempt",
    "WebhookState",
]


class JobStatus(enum.StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    """Waiting for a runner (new, retried after a failed attempt, or its server died)."""
    RUNNING = "running"
    """Claimed by a runner, whose lease (renewed by its heartbeat) has not expired."""
    SUCCEEDED = "succeeded"
    """The transcript is stored."""
    FAILED = "failed"
    """Gave up: a bad input, or every attempt failed; :attr:`Job.error` says why."""
    CANCELLED = "cancelled"
    """Its owner deleted it before it finished."""


FINISHED: frozenset[JobStatus] = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}
)
"""The states a job never leaves (until retention deletes it)."""


class WebhookState(enum.StrEnum):
    """Where the delivery of a job's webhook is."""

    NONE = "none"
    """The job has no ``webhook_url``."""
    WAITING = "waiting"
    """The job has not finished yet."""
    PENDING = "pending"
    """The job finished; the event is being delivered (again after a restart)."""
    DELIVERED = "delivered"
    """The receiver answered 2xx."""
    FAILED = "failed"
    """Every attempt failed; no more will be made."""


@dataclass(frozen=True, slots=True)
class JobError:
    """Why a job failed, in the OpenAI error envelope's shape."""

    message: str
    """Text meant for the user, as is."""
    type: str = "server_error"
    """``invalid_request_error`` (the input was at fault) or ``server_error``."""
    code: str | None = None
    """Stable machine-readable code (a :class:`~whisperd.errors.WhisperdError` code)."""
    param: str | None = None
    """The request field at fault, if any."""


@dataclass(frozen=True, slots=True)
class WebhookAttempt:
    """One delivery attempt of a job's webhook."""

    at: float
    """When it was made, unix seconds."""
    status_code: int | None
    """The receiver's HTTP status; None if no answer came (see :attr:`error`)."""
    error: str | None
    """Why it failed (connection error, timeout, non-2xx); None if it succeeded."""


@dataclass(frozen=True, slots=True)
class NewJob:
    """What a submission stores (see :meth:`JobStore.create <whisperd.jobs.store.JobStore>`)."""

    id: str
    """The new job's id (``job_`` and 32 hex digits); ignored if the idempotency key matches."""
    owner: str
    """Hash of the submitting API key (SHA-256, hex); "" on a server without API keys."""
    options: Mapping[str, Any]
    """The decoding options as JSON (``TranscribeOptions.model_dump(mode="json")``), with the
    speakers to label under ``"diarization"`` (:mod:`whisperd.jobs.speakers`)."""
    audio: str
    """The spooled audio's key in the spool (:mod:`whisperd.jobs.spool`)."""
    created_at: float
    """Submission time, unix seconds."""
    max_attempts: int
    """Attempts before the job ends ``failed``."""
    model: str | None = None
    """Model name as asked for; None: the server's default model."""
    response_format: str = "json"
    """The result's default format (json, text, srt, verbose_json, vtt)."""
    timestamp_granularities: tuple[str, ...] = ()
    """``verbose_json``'s granularities (``segment``, ``word``); empty: segments."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """The submitter's small JSON object, echoed back."""
    webhook_url: str | None = None
    """Where ``job.succeeded`` / ``job.failed`` / ``job.cancelled`` are posted."""
    idempotency_key: str | None = None
    """The ``Idempotency-Key`` header: a second submission with it (same owner) gets this job."""


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored. Results are stored apart (:meth:`JobStore.result`)."""

    id: str
    owner: str
    status: JobStatus
    options: Mapping[str, Any]
    audio: str | None
    """The spool key of its audio; None once the audio is deleted."""
    created_at: float
    max_attempts: int
    model: str | None = None
    response_format: str = "json"
    timestamp_granularities: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    webhook_url: str | None = None
    idempotency_key: str | None = None
    attempts: int = 0
    """Attempts started so far (a claim starts one)."""
    started_at: float | None = None
    """When the first attempt started."""
    finished_at: float | None = None
    """When it reached a finished state."""
    run_after: float = 0.0
    """Not claimed before this time (a retry's back-off)."""
    worker: str | None = None
    """The runner holding (or last holding) it."""
    lease_until: float | None = None
    """While running: the runner's lease ends then unless renewed."""
    progress_s: float = 0.0
    """Seconds of audio transcribed so far."""
    duration_s: float | None = None
    """Seconds of decoded audio, once known."""
    error: JobError | None = None
    """Why it failed (or why the last attempt failed, while retried)."""
    webhook: WebhookState = WebhookState.NONE
    webhook_attempts: tuple[WebhookAttempt, ...] = ()

    @property
    def finished(self) -> bool:
        """True in a state the job never leaves."""
        return self.status in FINISHED


def job_from_columns(row: Mapping[str, Any]) -> Job:
    """The job a stored row holds, its JSON columns already decoded (both job stores)."""
    error = row["error"]
    return Job(
        id=row["id"],
        owner=row["owner"],
        status=JobStatus(row["status"]),
        options=row["options"],
        audio=row["audio"],
        created_at=row["created_at"],
        max_attempts=row["max_attempts"],
        model=row["model"],
        response_format=row["response_format"],
        timestamp_granularities=tuple(row["timestamp_granularities"]),
        metadata=row["metadata"],
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
        webhook_attempts=tuple(WebhookAttempt(**attempt) for attempt in row["webhook_attempts"]),
    )

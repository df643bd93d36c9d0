"""The jobs use cases of one server: submit, read, list, cancel, delete, and its shutdown.

Each call is what one route needs; the routes (``api/jobs.py``) only translate the wire.
Submitting spools the audio durably (written and fsynced) before the job is stored, and the
job is stored (committed) before the caller answers: a 202 is never lost. Before that,
:func:`check_submission` refuses a job that surely cannot run, as the synchronous routes would.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from whisperd.engine.base import check_english_only
from whisperd.engine.catalogue import known_model, known_model_by_repo_id
from whisperd.engine.hub import check_model
from whisperd.errors import JobNotFinishedError, JobNotFoundError
from whisperd.jobs.model import Job, JobStatus, NewJob
from whisperd.jobs.results import transcript_of
from whisperd.jobs.speakers import stored_options

if TYPE_CHECKING:
    from whisperd.diarization import DiarizationOptions
    from whisperd.engine.base import Transcript
    from whisperd.engine.options import TranscribeOptions
    from whisperd.jobs.runner import JobRunner
    from whisperd.jobs.spool import Spool
    from whisperd.jobs.store import JobStore
    from whisperd.jobs.webhooks import WebhookSender
    from whisperd.service import TranscriptionService
    from whisperd.service.metrics import ServiceMetrics

__all__ = ["JobService", "Submission", "check_submission"]


@dataclass(frozen=True, slots=True)
class Submission:
    """A job as a client submits it (the audio apart)."""

    owner: str
    """Hash of the caller's API key; "" without auth."""
    options: TranscribeOptions
    """Decoding options, already checked."""
    model: str | None = None
    response_format: str = "json"
    timestamp_granularities: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    webhook_url: str | None = None
    idempotency_key: str | None = None
    diarization: DiarizationOptions | None = None
    """Speakers to label (known speakers as embeddings only: see :mod:`whisperd.jobs.speakers`);
    None: none."""


class JobService:
    """The jobs of one server (built by :func:`whisperd.jobs.opening.open_jobs`)."""

    def __init__(
        self,
        store: JobStore,
        spool: Spool,
        runner: JobRunner,
        *,
        max_attempts: int,
        webhooks: WebhookSender | None = None,
        clock: Callable[[], float] = time.time,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        """Serve jobs from ``store`` and ``spool``, run by ``runner`` (already started);
        ``metrics`` count the jobs submitted and cancelled."""
        self._metrics = metrics
        self.store = store
        self.spool = spool
        self.runner = runner
        self.webhooks = webhooks
        self._max_attempts = max_attempts
        self._clock = clock

    async def submit(self, submission: Submission, audio: bytes | Path) -> tuple[Job, bool]:
        """Spool ``audio`` and store the job, or find the owner's job of the same idempotency
        key (then nothing new is kept).

        Returns:
            The job and whether it is new.

        Raises:
            StorageFullError: if the disk has no room for the audio (nothing is kept).
            JobStoreUnavailableError: if the audio cannot be written.
        """
        key = await asyncio.to_thread(self.spool.write, audio)
        new = NewJob(
            id=f"job_{secrets.token_hex(16)}",
            owner=submission.owner,
            options=stored_options(submission.options, submission.diarization),
            audio=key,
            created_at=self._clock(),
            max_attempts=self._max_attempts,
            model=submission.model,
            response_format=submission.response_format,
            timestamp_granularities=submission.timestamp_granularities,
            metadata=dict(submission.metadata),
            webhook_url=submission.webhook_url,
            idempotency_key=submission.idempotency_key,
        )
        try:
            job, created = await self.store.create(new)
        except BaseException:
            await asyncio.to_thread(self.spool.remove, key)
            raise
        if created:
            self.runner.wake()
            if self._metrics is not None:
                self._metrics.jobs_submitted.inc()
        else:
            await asyncio.to_thread(self.spool.remove, key)
        return job, created

    async def get(self, job_id: str, owner: str) -> Job:
        """The owner's job.

        Raises:
            JobNotFoundError: if the owner has no job of that id.
        """
        job = await self.store.get(job_id, owner=owner)
        if job is None:
            raise _missing(job_id)
        return job

    async def list(
        self, owner: str, *, status: JobStatus | None, limit: int, after: str | None
    ) -> Sequence[Job]:
        """The owner's jobs, newest first (see :meth:`JobStore.list
        <whisperd.jobs.store.JobStore.list>`)."""
        return await self.store.list(owner, status=status, limit=limit, after=after)

    async def transcript(self, job_id: str, owner: str) -> tuple[Job, Transcript]:
        """The owner's job and its transcript.

        Raises:
            JobNotFoundError: if the owner has no job of that id.
            JobNotFinishedError: if the job has not succeeded (queued, running, failed or
                cancelled).
        """
        job = await self.get(job_id, owner)
        stored = await self.store.result(job_id) if job.status is JobStatus.SUCCEEDED else None
        if stored is None:
            detail = f" ({job.error.message})" if job.error and job.finished else ""
            raise JobNotFinishedError(
                f"Job {job_id} has no result: it is {job.status.value}{detail}.", param="job_id"
            )
        return job, transcript_of(stored)

    async def delete(self, job_id: str, owner: str) -> Job:
        """Cancel a queued or running job (a run here stops at its next window; one on another
        server at its next heartbeat) and delete its audio; delete a finished job for good.

        Returns:
            The job: cancelled, or as it was before it was deleted.

        Raises:
            JobNotFoundError: if the owner has no job of that id.
        """
        job = await self.get(job_id, owner)
        if job.finished:
            gone = await self.store.delete(job_id, owner=owner)
            if gone is None:
                raise _missing(job_id)
            await asyncio.to_thread(self.spool.remove, gone.audio)
            return gone
        cancelled = await self.store.cancel(job_id, owner=owner, now=self._clock())
        if cancelled is None:
            raise _missing(job_id)
        self.runner.cancel(job_id)
        await asyncio.to_thread(self.spool.remove, job.audio)
        await self.store.drop_audio(job_id)
        if cancelled.status is JobStatus.CANCELLED:
            self.runner.announce(cancelled)
            if self._metrics is not None:
                self._metrics.jobs_finished.labels(JobStatus.CANCELLED.value).inc()
        return cancelled

    async def close(self) -> None:
        """Stop the runner (its jobs go back to the queue), then close the store and sender."""
        await self.runner.stop()
        await self.store.close()
        if self.webhooks is not None:
            await self.webhooks.aclose()


async def check_submission(
    service: TranscriptionService, model: str | None, options: TranscribeOptions
) -> None:
    """Refuse a job that surely cannot run, with the errors the synchronous routes give for
    the same model and options, without loading a model.

    A model already loaded checks the options itself, as for a synchronous request (an
    English-only model refuses translation, other languages and multilingual decoding; a
    prefix must leave the decoder room). A model not loaded is checked as far as its name
    tells: it must select a model and, offline, be in the cache; a known English-only model
    (``*.en``) refuses what it cannot do. What only loading tells (a local directory's
    vocabulary, a prefix's length in tokens, a download that fails) fails the job when it runs.

    Args:
        service: The server's service (its settings and model manager).
        model: The model the job names; None: the server's default model.
        options: The job's decoding options.

    Raises:
        UnknownModelError: if ``model`` is no known name, repo id or model directory, or
            one the allow-list refuses (``allowed_models``).
        ModelUnavailableError: if, offline, ``model`` is not in the cache.
        InvalidOptionError: if the options do not suit the model (``param`` names the field).
    """
    settings = service.settings
    name = model or settings.model
    loaded = service.models.peek(name, device=settings.device, compute_type=settings.compute_type)
    if loaded is not None:
        loaded.check(options)
        return
    if model is not None:  # the default model's failures are the server's, not the job's
        service.allowed.check(model)
        await asyncio.to_thread(
            check_model,
            name,
            models_dir=settings.models_dir,
            offline=settings.offline,
            fmt=service.models.fmt,
        )
    known = known_model(name) or known_model_by_repo_id(name.strip())
    if known is not None and known.english_only:
        check_english_only(known.name, options)


def _missing(job_id: str) -> JobNotFoundError:
    return JobNotFoundError(f"No job found with id '{job_id}'.")

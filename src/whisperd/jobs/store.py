"""The ``JobStore`` protocol: the durable state of jobs, shared by every server of a deployment.

Implementations: :class:`~whisperd.jobs.sqlite_store.SqliteJobStore` (the embedded default)
and the PostgreSQL one (:mod:`whisperd.jobs.postgres_store`). Both keep the fields of
:class:`~whisperd.jobs.model.Job` and follow the same rules:

- Every method is atomic: a crash leaves the state of before or of after, never a mix.
- A job runs under one runner at a time: :meth:`JobStore.claim` gives a job to a worker id with
  a lease; the methods a runner calls afterwards (renew, progress, finish, fail) take effect
  only while that worker still holds it (status ``running``, same ``worker``), and answer
  False (or None) otherwise, which tells the runner to stop. A lease that expires (the server
  died) lets the next claim take the job again: at-least-once execution.
- :meth:`JobStore.finish` stores the result and marks the job succeeded in one transaction.
- Owners are opaque strings (a hash of the API key); ``owner=None`` means any owner (the
  runner's view), a string restricts a call to that owner's jobs.
- Times are unix seconds, passed in by the caller (a clock the tests can control).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from whisperd.jobs.model import Job, JobError, JobStatus, NewJob, WebhookAttempt, WebhookState

__all__ = ["JobStore"]


class JobStore(Protocol):
    """Durable job records, their results and their webhook state."""

    async def create(self, job: NewJob) -> tuple[Job, bool]:
        """Insert ``job`` as ``queued``, or return the owner's job of the same idempotency key.

        Returns:
            The stored job and True if it was inserted, or the existing job (same owner and
            ``idempotency_key``) and False; the caller then drops ``job``'s spooled audio.
        """
        ...

    async def get(self, job_id: str, *, owner: str | None = None) -> Job | None:
        """The job, or None if there is none of that id (for that owner)."""
        ...

    async def list(
        self,
        owner: str | None,
        *,
        status: JobStatus | None = None,
        limit: int = 20,
        after: str | None = None,
    ) -> Sequence[Job]:
        """Up to ``limit`` jobs, newest first (by submission order).

        Args:
            owner: Only this owner's jobs (None: everyone's).
            status: Only jobs in this state.
            limit: Most jobs returned (1 or more).
            after: A job id (the last of the previous page): only jobs submitted before it.
                An id that is unknown (or not the owner's) gives an empty page.
        """
        ...

    async def claim(self, worker: str, *, lease_s: float, now: float) -> Job | None:
        """Take the oldest claimable job for ``worker`` and start an attempt.

        Claimable: ``queued`` with ``run_after <= now``, or ``running`` with an expired lease
        (its runner died). The job becomes ``running`` with ``worker``, ``lease_until = now +
        lease_s``, ``attempts + 1`` and ``started_at`` set on the first attempt; its error is
        kept. An expired job that has used all its attempts is marked ``failed`` instead (the
        error says that its server stopped while it ran) and the next one is looked at.

        Returns:
            The claimed job as now stored, or None if no job is claimable.
        """
        ...

    async def renew(self, job_id: str, worker: str, *, lease_s: float, now: float) -> bool:
        """Extend ``worker``'s lease to ``now + lease_s``; False if it no longer holds the job
        (cancelled, or taken over after its lease expired)."""
        ...

    async def progress(
        self, job_id: str, worker: str, *, done_s: float, duration_s: float | None
    ) -> bool:
        """Record ``done_s`` seconds of ``duration_s`` transcribed; False as :meth:`renew`."""
        ...

    async def finish(
        self, job_id: str, worker: str, result: Mapping[str, Any], *, now: float
    ) -> Job | None:
        """Store ``result`` (the transcript as JSON) and mark the job succeeded, atomically.

        The progress becomes the whole duration; the webhook state moves to ``pending``
        if the job has a webhook URL.

        Returns:
            The job as now stored, or None if ``worker`` no longer holds it (nothing stored).
        """
        ...

    async def fail(
        self,
        job_id: str,
        worker: str,
        error: JobError,
        *,
        retry_at: float | None,
        now: float,
    ) -> Job | None:
        """End ``worker``'s attempt with ``error``.

        With ``retry_at`` set and attempts left (``attempts < max_attempts``), the job goes
        back to ``queued`` and is not claimed before ``retry_at``; otherwise it ends
        ``failed`` (webhook ``pending`` if it has a URL).

        Returns:
            The job as now stored, or None if ``worker`` no longer holds it.
        """
        ...

    async def release(self, job_id: str, worker: str) -> bool:
        """Give a running job back to the queue without using up its attempt (its server is
        stopping); False as :meth:`renew`."""
        ...

    async def cancel(self, job_id: str, *, owner: str | None, now: float) -> Job | None:
        """Cancel a ``queued`` or ``running`` job (a runner notices at its next renew or
        progress), dropping its result and audio key; a finished job is left as it is.

        Returns:
            The job as now stored (the caller deletes the audio it had), or None if unknown.
        """
        ...

    async def delete(self, job_id: str, *, owner: str | None) -> Job | None:
        """Remove the job and its result for good.

        Returns:
            The job as it was (the caller deletes its audio), or None if unknown.
        """
        ...

    async def purge(self, finished_before: float) -> Sequence[Job]:
        """Remove the finished jobs (and results) that finished before ``finished_before``.

        Returns:
            The removed jobs, as they were (the caller deletes their audio).
        """
        ...

    async def result(self, job_id: str) -> Mapping[str, Any] | None:
        """The stored result of a succeeded job; None if there is none."""
        ...

    async def drop_audio(self, job_id: str) -> None:
        """Forget the job's audio key (its file was deleted)."""
        ...

    async def audio_keys(self) -> frozenset[str]:
        """The audio keys of every stored job (for removing orphaned spool files)."""
        ...

    async def record_webhook(
        self, job_id: str, attempt: WebhookAttempt | None, *, state: WebhookState
    ) -> None:
        """Set the job's webhook ``state``, appending ``attempt`` (if any) to its attempts."""
        ...

    async def pending_webhooks(self) -> Sequence[Job]:
        """Finished jobs whose webhook is ``pending`` (to deliver again after a restart)."""
        ...

    async def close(self) -> None:
        """Release connections and threads; the store is unusable afterwards."""
        ...

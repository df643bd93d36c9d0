"""The job runner of one server: claims jobs, runs a bounded number at once, sweeps old ones.

- A claim loop takes queued jobs (and jobs whose server died: their lease expired) from the
  store while fewer than ``max_running`` run here, each as an :class:`~whisperd.jobs.attempt.
  Attempt` through the same :class:`~whisperd.service.TranscriptionService` as HTTP requests,
  at bulk priority, so interactive requests keep their speed. A submission on this server wakes
  it at once; jobs submitted elsewhere are seen within ``poll_s``.
- A finished job's audio is deleted; its webhook event is delivered (at-least-once, its state
  and attempts kept in the store, resumed after a restart).
- A sweep deletes finished jobs, their results and audio after ``ttl_s``, and spool files that
  no job names.
- :meth:`JobRunner.stop` stops the jobs running here at their next window and gives them back
  to the queue without using up an attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from whisperd.jobs.attempt import Attempt, AttemptConfig
from whisperd.jobs.model import Job, JobStatus, WebhookAttempt, WebhookState
from whisperd.jobs.public import job_json
from whisperd.service.log_context import JOB_ID, KEY_FINGERPRINT, key_fingerprint

if TYPE_CHECKING:
    from whisperd.jobs.spool import Spool
    from whisperd.jobs.store import JobStore
    from whisperd.service import TranscriptionService

__all__ = ["JobRunner", "RunnerConfig", "Webhooks", "worker_id"]

logger = logging.getLogger(__name__)

_ORPHAN_AGE_S = 3600.0
"""Spool files no job names are deleted once this old (a submission takes far less)."""

_EVENTS = {
    JobStatus.SUCCEEDED: "job.succeeded",
    JobStatus.FAILED: "job.failed",
    JobStatus.CANCELLED: "job.cancelled",
}


class Webhooks(Protocol):
    """What the runner needs of a webhook sender (:mod:`whisperd.jobs.webhooks`)."""

    async def deliver(
        self,
        url: str,
        event_type: str,
        payload: Mapping[str, object],
        on_attempt: Callable[[WebhookAttempt], Awaitable[None]],
        *,
        message_id: str | None = None,
        occurred_at: float | None = None,
    ) -> bool:
        """Deliver one event, retrying; True once the receiver answered 2xx."""
        ...


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    """How a runner schedules its work."""

    max_running: int
    """Jobs run here at once; 0: none (the runner then only sweeps and delivers webhooks)."""
    ttl_s: float
    """Seconds finished jobs are kept."""
    poll_s: float = 1.0
    """Seconds between two looks for claimable jobs while idle."""

    @property
    def sweep_s(self) -> float:
        """Seconds between two retention sweeps."""
        return min(max(self.ttl_s / 2, 0.2), 60.0)


def worker_id() -> str:
    """A new runner id: host, process and a random suffix (unique across restarts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class JobRunner:
    """Runs jobs from a store on this server (see the module's docstring)."""

    def __init__(
        self,
        store: JobStore,
        spool: Spool,
        service: TranscriptionService,
        *,
        config: RunnerConfig,
        attempts: AttemptConfig,
        webhooks: Webhooks | None = None,
    ) -> None:
        """Prepare a runner; nothing runs before :meth:`start`."""
        self._store = store
        self._spool = spool
        self._service = service
        self._config = config
        self._attempt_config = attempts
        self._webhooks = webhooks
        self._slots = asyncio.Semaphore(config.max_running)
        self._wake = asyncio.Event()
        self._running: dict[str, tuple[Attempt, asyncio.Task[None]]] = {}
        self._background: set[asyncio.Task[None]] = set()

    @property
    def worker(self) -> str:
        """This runner's worker id."""
        return self._attempt_config.worker

    async def start(self) -> None:
        """Start claiming, sweeping, and delivering the webhooks left pending by a restart."""
        if self._config.max_running > 0:
            self._spawn(self._claim_loop())
        self._spawn(self._sweep_loop())
        for job in await self._store.pending_webhooks():
            self._announce(job)

    @property
    def running(self) -> frozenset[str]:
        """Ids of the jobs running here now."""
        return frozenset(self._running)

    def wake(self) -> None:
        """Look for work now (a job was just submitted)."""
        self._wake.set()

    def cancel(self, job_id: str) -> None:
        """Stop ``job_id`` at its next window if it runs here (its record is the caller's)."""
        running = self._running.get(job_id)
        if running is not None:
            running[0].cancel.cancel()

    def announce(self, job: Job) -> None:
        """Deliver ``job``'s webhook event if it has one pending (a job cancelled by the API)."""
        self._announce(job)

    async def stop(self) -> None:
        """Stop everything; jobs running here go back to the queue (attempt not counted)."""
        held = [attempt.job.id for attempt, _ in self._running.values()]
        tasks = [task for _, task in self._running.values()] + list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for job_id in held:
            with contextlib.suppress(Exception):
                await self._store.release(job_id, self.worker)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _claim_loop(self) -> None:
        while True:
            await self._slots.acquire()
            self._wake.clear()
            try:
                job = await self._store.claim(
                    self.worker,
                    lease_s=self._attempt_config.lease_s,
                    now=self._attempt_config.clock(),
                )
            except Exception:
                logger.exception("Cannot claim jobs from the job store")
                job = None
            if job is None:
                self._slots.release()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._config.poll_s)
                continue
            logger.info("Job %s: attempt %d of %d", job.id, job.attempts, job.max_attempts)
            attempt = Attempt(
                job,
                store=self._store,
                spool=self._spool,
                service=self._service,
                config=self._attempt_config,
            )
            self._running[job.id] = (attempt, asyncio.create_task(self._run(attempt)))

    async def _run(self, attempt: Attempt) -> None:
        # This task's own context: its log lines, and its threads', name the job and its key.
        JOB_ID.set(attempt.job.id)
        KEY_FINGERPRINT.set(key_fingerprint(attempt.job.owner) or None)
        metrics = self._service.metrics
        metrics.jobs_running.inc()
        try:
            finished = await attempt.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Job %s: the job store failed during its attempt", attempt.job.id)
            finished = None
        finally:
            metrics.jobs_running.dec()
            self._running.pop(attempt.job.id, None)
            self._slots.release()
            self._wake.set()
        if finished is not None:
            logger.info("Job %s: %s", finished.id, finished.status.value)
            if finished.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
                metrics.jobs_finished.labels(finished.status.value).inc()
            await self._forget_audio(finished)
            self._announce(finished)

    async def _forget_audio(self, job: Job) -> None:
        await asyncio.to_thread(self._spool.remove, job.audio)
        await self._store.drop_audio(job.id)

    def _announce(self, job: Job) -> None:
        if self._webhooks is None or job.webhook_url is None:
            return
        if job.webhook not in (WebhookState.PENDING, WebhookState.WAITING):
            return
        self._spawn(self._deliver(self._webhooks, job, job.webhook_url))

    async def _deliver(self, webhooks: Webhooks, job: Job, url: str) -> None:
        event = _EVENTS.get(job.status)
        if event is None:
            return

        async def on_attempt(attempt: WebhookAttempt) -> None:
            state = WebhookState.DELIVERED if attempt.error is None else WebhookState.PENDING
            await self._store.record_webhook(job.id, _own(attempt), state=state)

        try:
            delivered = await webhooks.deliver(
                url,
                event,
                job_json(job),
                on_attempt,
                # One id per job: a delivery resumed after a restart keeps it (receivers dedupe).
                message_id=f"msg_{job.id.removeprefix('job_')}",
                occurred_at=job.finished_at,
            )
        except Exception:
            logger.exception("Job %s: webhook delivery failed", job.id)
            delivered = False
        final = WebhookState.DELIVERED if delivered else WebhookState.FAILED
        await self._store.record_webhook(job.id, None, state=final)

    async def _sweep_loop(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                logger.exception("The job retention sweep failed")
            await asyncio.sleep(self._config.sweep_s)

    async def sweep(self) -> int:
        """Delete finished jobs older than the TTL (with their results and audio), and spool
        files no job names.

        Returns:
            How many jobs were deleted.
        """
        now = self._attempt_config.clock()
        purged = await self._store.purge(now - self._config.ttl_s)
        for job in purged:
            await asyncio.to_thread(self._spool.remove, job.audio)
        keep = await self._store.audio_keys()
        await asyncio.to_thread(self._spool.sweep, keep, older_than_s=_ORPHAN_AGE_S)
        if purged:
            logger.info(
                "Deleted %d finished jobs older than %.0f s", len(purged), self._config.ttl_s
            )
        return len(purged)


def _own(attempt: WebhookAttempt) -> WebhookAttempt:
    """The store's record of a sender's attempt (any object with the same three fields)."""
    return WebhookAttempt(at=attempt.at, status_code=attempt.status_code, error=attempt.error)

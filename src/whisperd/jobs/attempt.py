"""One attempt at one claimed job: transcribe its spooled audio at bulk priority while a
heartbeat renews the lease and records progress; store the result, or the failure.

The attempt stops at the next window when its job is cancelled or its lease is lost (another
server took the job after this one stalled): nothing is stored then. Input errors end the job
``failed`` at once; other failures are retried after a back-off while attempts remain.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from whisperd.audio.source import AudioSource
from whisperd.errors import (
    AudioError,
    CancelledError,
    InvalidOptionError,
    UnknownModelError,
    UrlError,
    WhisperdError,
)
from whisperd.jobs.model import Job, JobError
from whisperd.jobs.results import transcript_json
from whisperd.jobs.speakers import job_options
from whisperd.scheduler.batcher import Priority
from whisperd.service import Cancellation, TranscriptionRequest

if TYPE_CHECKING:
    from whisperd.engine.base import Segment
    from whisperd.jobs.spool import Spool
    from whisperd.jobs.store import JobStore
    from whisperd.service import TranscriptionService

__all__ = ["Attempt", "AttemptConfig", "job_error"]

logger = logging.getLogger(__name__)

_INPUT_ERRORS = (AudioError, InvalidOptionError, UnknownModelError, UrlError)
"""Failures a retry cannot mend: the job's input is at fault."""


@dataclass(frozen=True, slots=True)
class AttemptConfig:
    """How attempts run."""

    worker: str
    """This runner's id, holder of the leases it claims."""
    lease_s: float
    """Lease length, seconds; the heartbeat renews it every third of it (at most 2 s)."""
    retry_delay_s: float = 5.0
    """Back-off before the second attempt, seconds; it doubles for each later one."""
    max_retry_delay_s: float = 300.0
    """Longest back-off, seconds."""
    clock: Callable[[], float] = time.time
    """Unix time, seconds."""

    @property
    def beat_s(self) -> float:
        """Seconds between two heartbeats."""
        return min(self.lease_s / 3, 2.0)

    def retry_at(self, attempts: int) -> float:
        """When a job that failed its ``attempts``-th attempt may be tried again."""
        delay = self.retry_delay_s * 2.0 ** max(attempts - 1, 0)
        return self.clock() + min(delay, self.max_retry_delay_s)


def job_error(error: BaseException) -> tuple[JobError, bool]:
    """``error`` as a job's error, and whether another attempt may succeed."""
    if isinstance(error, _INPUT_ERRORS):
        return JobError(error.message, "invalid_request_error", error.code, error.param), False
    if isinstance(error, WhisperdError):
        return JobError(error.message, "server_error", error.code, error.param), True
    return JobError("The transcription failed on the server.", code="internal_error"), True


class Attempt:
    """Runs one claimed job once (see the module's docstring)."""

    def __init__(
        self,
        job: Job,
        *,
        store: JobStore,
        spool: Spool,
        service: TranscriptionService,
        config: AttemptConfig,
    ) -> None:
        """Prepare to run ``job``, claimed by ``config.worker``."""
        self.job = job
        self.cancel = Cancellation()
        self._store = store
        self._spool = spool
        self._service = service
        self._config = config
        self._done_s = 0.0
        self._duration_s: float | None = None

    async def run(self) -> Job | None:
        """Run the attempt to its end.

        Returns:
            The job as stored afterwards if it finished (succeeded, or failed for good); None
            if it was retried later, cancelled, or its lease was lost.
        """
        beat = asyncio.create_task(self._heartbeat())
        try:
            return await self._transcribe()
        except asyncio.CancelledError:
            self.cancel.cancel()
            raise
        except CancelledError:
            return None
        except Exception as error:  # every failure ends in the job's record
            return await self._fail(error)
        finally:
            beat.cancel()

    async def _transcribe(self) -> Job | None:
        job, config = self.job, self._config
        if job.audio is None:
            raise CancelledError("The job's audio was deleted.")
        options, diarization = job_options(job.options)
        source = AudioSource(self._spool.path(job.audio))
        request = TranscriptionRequest(
            source, options, model=job.model, priority=Priority.BULK, diarization=diarization
        )
        transcription = await self._service.open(request)
        self._duration_s = transcription.duration
        held = await self._store.progress(
            job.id, config.worker, done_s=0.0, duration_s=transcription.duration
        )
        if not held:  # cancelled while its audio was decoded: stop before the first window
            self.cancel.cancel()
        transcript = await transcription.run(cancel=self.cancel, on_segment=self._on_segment)
        done = await self._store.finish(
            job.id, config.worker, transcript_json(transcript), now=config.clock()
        )
        if done is None:
            logger.info("Job %s: lost before its result was stored", job.id)
        return done

    def _on_segment(self, segment: Segment) -> None:
        """Called on the request's thread; a float store is atomic enough for the heartbeat."""
        self._done_s = max(self._done_s, segment.end)

    async def _heartbeat(self) -> None:
        """Renew the lease and record progress until cancelled; a lost lease stops the run.

        A beat that fails (the database did not answer) is logged and the next beat tries
        again: the lease lasts at least three beats, so a passing failure does not lose it. If
        it did expire meanwhile, the next renewal answers False and the run stops.
        """
        job = self.job
        recorded, failing = 0.0, False
        while True:
            await asyncio.sleep(self._config.beat_s)
            try:
                held, recorded = await self._beat(recorded)
            except Exception as error:  # a store error: the lease may still be ours, try again
                logger.warning(
                    "Job %s: renewing its lease failed (%s); trying again at the next beat",
                    job.id,
                    error,
                    exc_info=not failing,  # the traceback once per outage
                )
                failing = True
                continue
            failing = False
            if not held:
                logger.info("Job %s: cancelled or taken over; stopping", job.id)
                self.cancel.cancel()
                return

    async def _beat(self, recorded: float) -> tuple[bool, float]:
        """Renew the lease, then record the progress if it moved past ``recorded`` seconds.

        Returns:
            Whether this worker still holds the job, and the seconds now recorded.

        Raises:
            Exception: whatever the store raises (the beat is then tried again).
        """
        job, config = self.job, self._config
        held = await self._store.renew(
            job.id, config.worker, lease_s=config.lease_s, now=config.clock()
        )
        done = self._done_s
        if held and done > recorded:
            held = await self._store.progress(
                job.id, config.worker, done_s=done, duration_s=self._duration_s
            )
            recorded = done
        return held, recorded

    async def _fail(self, error: Exception) -> Job | None:
        job, config = self.job, self._config
        failure, retry = job_error(error)
        if isinstance(error, WhisperdError):
            logger.warning("Job %s: attempt %d failed: %s", job.id, job.attempts, error.message)
        else:
            logger.exception("Job %s: attempt %d failed", job.id, job.attempts)
        stored = await self._store.fail(
            job.id,
            config.worker,
            failure,
            retry_at=config.retry_at(job.attempts) if retry else None,
            now=config.clock(),
        )
        return stored if stored is not None and stored.finished else None

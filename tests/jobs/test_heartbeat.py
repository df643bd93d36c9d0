"""The heartbeat of a running job: a renewal that fails (a database hiccup) is tried again at
the next beat, so the job keeps its lease and finishes once; a lease found lost stops the run
and stores nothing."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from job_servers import SPEECH

from waiting import until
from whisperd.config import Settings
from whisperd.engine.options import TranscribeOptions
from whisperd.jobs import Job, JobStatus, NewJob, Spool
from whisperd.jobs.attempt import Attempt, AttemptConfig
from whisperd.jobs.sqlite_store import SqliteJobStore
from whisperd.service import TranscriptionService
from whisperd.testing import ScriptedModel, fake_loader

_NOW = 1000.0
"""The attempts' clock: fixed, so no lease ever expires by time alone."""


class _FlakyStore(SqliteJobStore):
    """A store whose first renewal raises, as a database that did not answer; every renewal's
    outcome is recorded. ``taken_by`` claims the job for another server during that failure."""

    taken_by: str | None = None
    renewals: list[str]

    async def renew(self, job_id: str, worker: str, *, lease_s: float, now: float) -> bool:
        if not self.renewals:
            self.renewals.append("failed")
            if self.taken_by is not None:  # the lease expired meanwhile; another server claims
                await self.claim(self.taken_by, lease_s=lease_s, now=now + 3600)
            raise sqlite3.OperationalError("database is locked")
        held = await super().renew(job_id, worker, lease_s=lease_s, now=now)
        self.renewals.append("held" if held else "lost")
        return held


@dataclass
class _Run:
    store: _FlakyStore
    attempt: Attempt
    gate: threading.Event


@asynccontextmanager
async def _claimed(model: ScriptedModel, tmp_path: Path) -> AsyncIterator[_Run]:
    """A job claimed by ``worker-a``, whose attempt (not started) holds every window after the
    first until the gate opens."""
    settings = Settings(
        _env_file=None, model=str(model.path), device="cpu", compute_type="int8", offline=True
    )
    gate = threading.Event()
    service = TranscriptionService.create(settings, loader=fake_loader(gate=gate))
    store = await _FlakyStore.open(tmp_path / "jobs.sqlite3")
    store.renewals = []
    spool = Spool.open(tmp_path / "audio")
    options = TranscribeOptions(chunk_length=1).model_dump(mode="json")
    new = NewJob(
        id="job_" + "0" * 32,
        owner="",
        options=options,
        audio=spool.write(SPEECH),
        created_at=_NOW,
        max_attempts=3,
    )
    await store.create(new)
    job = await store.claim("worker-a", lease_s=0.3, now=_NOW)
    assert job is not None
    config = AttemptConfig(worker="worker-a", lease_s=0.3, clock=lambda: _NOW)
    attempt = Attempt(job, store=store, spool=spool, service=service, config=config)
    try:
        yield _Run(store, attempt, gate)
    finally:
        gate.set()
        await store.close()
        service.close()


def test_a_failed_renewal_is_tried_again_and_the_job_finishes_once(
    scripted_model: ScriptedModel, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> tuple[Job | None, Job | None, list[str]]:
        async with _claimed(scripted_model, tmp_path) as run:
            running = asyncio.create_task(run.attempt.run())
            await until(
                lambda: run.store.renewals.count("held") >= 2,
                "the heartbeat stopped after a failed renewal",
            )
            run.gate.set()
            done = await running
            return done, await run.store.get(run.attempt.job.id), list(run.store.renewals)

    with caplog.at_level(logging.WARNING, logger="whisperd.jobs.attempt"):
        done, stored, renewals = asyncio.run(scenario())
    assert done is not None
    assert (done.status, done.attempts, done.worker) == (JobStatus.SUCCEEDED, 1, "worker-a")
    assert stored == done
    assert renewals[:3] == ["failed", "held", "held"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"Job {done.id}: renewing its lease failed (database is locked); trying again at the "
        "next beat"
    ]


def test_a_lease_lost_during_a_failed_renewal_stops_the_run_and_stores_nothing(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    async def scenario() -> tuple[Job | None, Job | None, list[str], bool]:
        async with _claimed(scripted_model, tmp_path) as run:
            run.store.taken_by = "worker-b"
            running = asyncio.create_task(run.attempt.run())
            await until(lambda: run.attempt.cancel.cancelled, "the lost lease did not stop it")
            run.gate.set()
            done = await running
            stored = await run.store.get(run.attempt.job.id)
            result = await run.store.result(run.attempt.job.id)
            return done, stored, list(run.store.renewals), result is None

    done, stored, renewals, no_result = asyncio.run(scenario())
    assert done is None
    # The next beat, or the attempt's own first progress record, finds the lease lost.
    assert renewals[0] == "failed"
    assert "held" not in renewals
    assert stored is not None
    assert (stored.status, stored.worker, stored.attempts) == (JobStatus.RUNNING, "worker-b", 2)
    assert no_result

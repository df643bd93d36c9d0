"""The runner on its own: bounded retries that end with the reason, and a stop that gives
running jobs back to the queue without using up an attempt."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from job_servers import SPEECH

from waiting import DEADLINE_S, until
from whisperd.config import Settings
from whisperd.engine.options import TranscribeOptions
from whisperd.jobs import JobService, JobStatus, Spool, Submission
from whisperd.jobs.attempt import AttemptConfig
from whisperd.jobs.runner import JobRunner, RunnerConfig
from whisperd.jobs.sqlite_store import SqliteJobStore
from whisperd.service import TranscriptionService
from whisperd.testing import ScriptedModel, fake_loader


@asynccontextmanager
async def _jobs(
    model: ScriptedModel, tmp_path: Path, gate: threading.Event, gate_timeout_s: float
) -> AsyncIterator[JobService]:
    settings = Settings(
        _env_file=None, model=str(model.path), device="cpu", compute_type="int8", offline=True
    )
    loader = fake_loader(gate=gate, gate_timeout_s=gate_timeout_s)
    service = TranscriptionService.create(settings, loader=loader)
    store = await SqliteJobStore.open(tmp_path / "jobs.sqlite3")
    spool = Spool.open(tmp_path / "audio")
    runner = JobRunner(
        store,
        spool,
        service,
        config=RunnerConfig(max_running=1, ttl_s=3600, poll_s=0.05),
        attempts=AttemptConfig(worker="test", lease_s=5, retry_delay_s=0),
    )
    jobs = JobService(store, spool, runner, max_attempts=2)
    await runner.start()
    try:
        yield jobs
    finally:
        await jobs.close()
        gate.set()
        service.close()


def _submission() -> Submission:
    return Submission(owner="", options=TranscribeOptions(chunk_length=1))


def test_a_job_that_keeps_failing_ends_failed_with_the_reason(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with _jobs(scripted_model, tmp_path, threading.Event(), 0.01) as jobs:
            job, _ = await jobs.submit(_submission(), SPEECH)
            deadline = time.monotonic() + DEADLINE_S
            # The runner deletes a finished job's audio last.
            while (await jobs.get(job.id, "")).audio is not None:
                assert time.monotonic() < deadline, "the job did not end"
                await asyncio.sleep(0.01)
            stored = await jobs.get(job.id, "")
            assert (stored.status, stored.attempts) == (JobStatus.FAILED, 2)
            assert stored.error is not None
            assert stored.error.code == "transcription_failed"
            assert "gate stayed closed" in stored.error.message
            assert list((tmp_path / "audio").iterdir()) == []

    asyncio.run(scenario())


def test_stopping_gives_running_jobs_back_without_using_an_attempt(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    async def scenario() -> str:
        gate = threading.Event()
        async with _jobs(scripted_model, tmp_path, gate, 60) as jobs:
            job, _ = await jobs.submit(_submission(), SPEECH)
            await until(lambda: job.id in jobs.runner.running, "the job did not start")
        return job.id

    job_id = asyncio.run(scenario())

    async def reopened() -> None:
        store = await SqliteJobStore.open(tmp_path / "jobs.sqlite3")
        try:
            stored = await store.get(job_id)
            assert stored is not None
            assert (stored.status, stored.attempts, stored.lease_until) == (
                JobStatus.QUEUED,
                0,
                None,
            )
        finally:
            await store.close()

    asyncio.run(reopened())

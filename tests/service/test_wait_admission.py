"""The service admits interactive requests by their estimated wait; bulk work always waits."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from whisperd.audio.decode import AudioSource
from whisperd.config import Settings
from whisperd.engine.manager import ModelManager
from whisperd.engine.options import TranscribeOptions
from whisperd.errors import QueueFullError
from whisperd.scheduler.admission import Admission
from whisperd.scheduler.batcher import Priority
from whisperd.service import TranscriptionRequest, TranscriptionService
from whisperd.service.pools import Pools
from whisperd.testing import ScriptedModel, fake_loader

DATA = Path(__file__).parents[1] / "data"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_long_wait_refuses_interactive_requests_and_not_bulk_ones(
    scripted_model: ScriptedModel,
) -> None:
    settings = Settings(
        _env_file=None, model=str(scripted_model.path), device="cpu", compute_type="int8"
    )
    clock = Clock()
    admission = Admission(10, max_wait_s=5, clock=clock)
    service = TranscriptionService(
        settings,
        ModelManager(fake_loader(), offline=True),
        pools=Pools.create(settings),
        admission=admission,
    )

    def request(priority: Priority) -> TranscriptionRequest:
        return TranscriptionRequest(
            AudioSource(DATA / "speech.wav"), TranscribeOptions(), priority=priority
        )

    async def scenario() -> tuple[float, QueueFullError, float]:
        async with admission.slot(), admission.running_work(10):
            clock.now += 5  # the server has measured its speed
        async with admission.slot(), admission.running_work(20):  # 20 s of audio under way
            wait = admission.estimated_wait()
            assert wait is not None
            with pytest.raises(QueueFullError) as refused:
                await service.open(request(Priority.INTERACTIVE))
            bulk = await service.open(request(Priority.BULK))
            transcript = await bulk.run()
        return wait, refused.value, transcript.duration

    try:
        wait, refusal, bulk_duration = asyncio.run(scenario())
    finally:
        service.close()
    assert wait == 20 / (10 / 5)
    assert refusal.retry_after == math.ceil(wait - admission.max_wait_s)
    assert bulk_duration > 0
    assert admission.in_flight == 0

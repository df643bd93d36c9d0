"""Admission: bounded requests and audio seconds, 503 with a reason and a retry time."""

from __future__ import annotations

import asyncio
import math

import pytest

from whisperd.errors import QueueFullError
from whisperd.scheduler.admission import _MAX_RETRY_S, _MIN_RETRY_S, Admission


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def transcribed(admission: Admission, clock: Clock, *, audio_s: float, took_s: float) -> None:
    """One request of ``audio_s`` seconds that runs for ``took_s`` seconds of the clock."""
    async with admission.slot(), admission.running_work(audio_s):
        clock.now += took_s


def test_request_slots_are_bounded() -> None:
    async def scenario() -> QueueFullError:
        admission = Admission(2)
        async with admission.slot(), admission.slot():
            assert admission.in_flight == 2
            with pytest.raises(QueueFullError) as info:
                async with admission.slot():
                    pass
        assert admission.in_flight == 0
        return info.value

    error = asyncio.run(scenario())
    assert "2 request slots" in error.message
    assert error.retry_after >= 1


def test_audio_budget_refuses_what_would_overflow_it() -> None:
    async def scenario() -> QueueFullError:
        admission = Admission(10, max_audio_seconds=100)
        async with admission.running_work(60):
            assert admission.audio_seconds == 60
            assert admission.running == 1
            async with admission.running_work(30):
                assert admission.audio_seconds == 90
            with pytest.raises(QueueFullError) as info:
                async with admission.running_work(50):
                    pass
        assert admission.audio_seconds == 0
        return info.value

    error = asyncio.run(scenario())
    assert "100 s queue" in error.message


def test_one_request_longer_than_the_budget_still_runs_alone() -> None:
    async def scenario() -> None:
        admission = Admission(10, max_audio_seconds=100)
        async with admission.running_work(500):
            assert admission.audio_seconds == 500

    asyncio.run(scenario())


def test_retry_after_follows_measured_throughput() -> None:
    clock = Clock()

    async def scenario() -> None:
        assert admission.retry_after() == 5  # nothing measured yet
        await transcribed(admission, clock, audio_s=300, took_s=1)
        async with admission.running_work(600):
            assert admission.retry_after() == math.ceil(600 / admission.throughput)

    admission = Admission(4, max_audio_seconds=1000, clock=clock)
    asyncio.run(scenario())
    assert _MIN_RETRY_S <= admission.retry_after() <= _MAX_RETRY_S


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        Admission(0)


def test_stream_decodes_count_in_the_budget_and_are_never_refused() -> None:
    async def scenario() -> None:
        admission = Admission(10, max_audio_seconds=100)
        # 30 s of stream audio over the budget: admitted anyway (the stream already was)
        async with admission.running_work(90), admission.stream_work(30):
            assert admission.stream_decodes == 1
            assert admission.audio_seconds == 120
            with pytest.raises(QueueFullError):  # HTTP work now sees the streams' audio
                async with admission.running_work(5):
                    pass
        assert admission.stream_decodes == 0
        assert admission.audio_seconds == 0

    asyncio.run(scenario())

"""Admission by estimated wait: queued audio over the measured speed, against a bound."""

from __future__ import annotations

import asyncio
import math
from contextlib import AsyncExitStack

import pytest

from whisperd.errors import QueueFullError
from whisperd.scheduler.admission import FIRST_COME_AUDIO_S, Admission
from whisperd.scheduler.batcher import Priority


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _measure(admission: Admission, clock: Clock, *, audio_s: float, took_s: float) -> None:
    """One request of ``audio_s`` seconds that runs for ``took_s`` seconds of the clock."""
    async with admission.slot(), admission.running_work(audio_s):
        clock.now += took_s


async def _admitted_until_refused(
    admission: Admission, limit: int = 100
) -> tuple[int, QueueFullError]:
    """Hold new slots until one is refused; how many were admitted and the refusal."""
    async with AsyncExitStack() as held:
        for admitted in range(limit):
            try:
                await held.enter_async_context(admission.slot())
            except QueueFullError as refusal:
                return admitted, refusal
    pytest.fail(f"{limit} requests were admitted")


def test_until_the_speed_is_measured_only_the_fixed_bounds_apply() -> None:
    admission = Admission(5, max_wait_s=1, clock=Clock())
    assert admission.estimated_wait() is None
    admitted, refusal = asyncio.run(_admitted_until_refused(admission))
    assert admitted == 5
    assert "5 request slots" in refusal.message


def test_requests_are_admitted_while_their_estimated_wait_is_within_the_bound() -> None:
    clock = Clock()
    admission = Admission(100, max_wait_s=25, clock=clock)

    async def scenario() -> tuple[int, QueueFullError]:
        await _measure(admission, clock, audio_s=20, took_s=10)
        return await _admitted_until_refused(admission)

    admitted, refusal = asyncio.run(scenario())
    rate = admission.throughput
    assert rate == 20 / 10
    # Each admitted request still decoding counts as one recent request (20 s of audio), so
    # the n-th new request waits (n - 1) * 20 / 2 s: 0, 10 and 20 s fit under 25 s, 30 s not.
    assert admitted == 3
    refused_wait = admitted * 20 / rate
    assert refusal.retry_after == math.ceil(refused_wait - admission.max_wait_s)
    assert f"estimated wait of {refused_wait:.0f} s" in refusal.message
    assert "25 s bound" in refusal.message
    assert admission.in_flight == 0


def test_running_audio_counts_up_to_its_first_come_share() -> None:
    clock = Clock()
    admission = Admission(100, max_wait_s=1000, clock=clock)

    async def scenario() -> tuple[float, list[float | None]]:
        await _measure(admission, clock, audio_s=10, took_s=5)
        waits = [admission.estimated_wait()]
        async with admission.slot(), admission.running_work(30):
            waits.append(admission.estimated_wait())
            async with admission.slot(), admission.running_work(3600):  # a long file
                waits.append(admission.estimated_wait())
                async with admission.stream_work(4):  # streams run first: all of it is ahead
                    waits.append(admission.estimated_wait())
                    return admission.throughput, waits

    rate, waits = asyncio.run(scenario())
    assert rate == 10 / 5
    assert waits == [
        0.0,
        30 / rate,
        (30 + FIRST_COME_AUDIO_S) / rate,
        (34 + FIRST_COME_AUDIO_S) / rate,
    ]


def test_bulk_work_is_neither_refused_for_its_wait_nor_counted_ahead() -> None:
    clock = Clock()
    admission = Admission(100, max_wait_s=10, clock=clock)

    async def scenario() -> tuple[float, float | None, float | None]:
        await _measure(admission, clock, audio_s=10, took_s=5)
        rate = admission.throughput
        async with admission.slot(), admission.running_work(40):
            blocked = admission.estimated_wait()
            with pytest.raises(QueueFullError):
                async with admission.slot():
                    pass
            async with admission.slot(Priority.BULK), admission.running_work(40, Priority.BULK):
                clock.now += 40 / rate
            clock.now += 40 / rate
        async with admission.slot(Priority.BULK), admission.running_work(600, Priority.BULK):
            behind_bulk = admission.estimated_wait()
            async with admission.slot():
                pass
        return rate, blocked, behind_bulk

    rate, blocked, behind_bulk = asyncio.run(scenario())
    assert blocked == 40 / rate
    assert behind_bulk == 0.0


def test_a_wait_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_wait_s"):
        Admission(4, max_wait_s=0)

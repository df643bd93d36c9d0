"""The measured speed: audio seconds per busy second, idle time and failures left out."""

from __future__ import annotations

import pytest

from whisperd.scheduler.throughput import Throughput


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_nothing_is_measured_before_a_request_finishes() -> None:
    clock = Clock()
    meter = Throughput(clock)
    meter.started()
    clock.now = 10
    assert meter.rate == 0.0
    assert meter.mean_audio == 0.0


def test_idle_time_does_not_count() -> None:
    clock = Clock()
    meter = Throughput(clock)
    for began in (0.0, 100.0, 1000.0):  # 12 s of audio in 4 s, with long idle gaps
        clock.now = began
        meter.started()
        clock.now = began + 4
        meter.finished(12)
    assert meter.rate == pytest.approx(12 / 4)
    assert meter.mean_audio == pytest.approx(12)


def test_concurrent_requests_count_their_shared_time_once() -> None:
    clock = Clock()
    meter = Throughput(clock)
    meter.started()
    meter.started()
    clock.now = 4
    meter.finished(8)
    clock.now = 8
    meter.finished(8)
    assert meter.rate == pytest.approx((8 + 8) / 8)  # two requests, 16 s of audio in 8 busy seconds


def test_a_failed_request_adds_its_time_but_no_audio() -> None:
    clock = Clock()
    meter = Throughput(clock)
    meter.started()
    clock.now = 5
    meter.finished(0)  # failed or cancelled: no audio transcribed
    assert meter.rate == 0.0
    meter.started()
    clock.now = 10
    meter.finished(20)
    assert meter.rate == pytest.approx(
        20 / 10
    )  # the failed request's 5 s count with the next finish


def test_requests_finishing_together_count_at_their_batch_speed() -> None:
    clock = Clock()
    meter = Throughput(clock)
    for batch in range(3):  # three batches of eight 5 s clips, 10 s each
        for _ in range(8):
            meter.started()
        clock.now = 10.0 * (batch + 1)
        for _ in range(8):
            meter.finished(5)
        assert meter.rate == pytest.approx(8 * 5 / 10)

"""The service's metrics: exact counts from admission, budgets, batches, loads and failures."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from whisperd.engine.base import ModelInfo
from whisperd.errors import (
    CorruptAudioError,
    InvalidOptionError,
    QueueFullError,
    ShuttingDownError,
    TranscriptionError,
    UnknownModelError,
    UrlBlockedError,
)
from whisperd.scheduler.admission import Admission
from whisperd.scheduler.batcher import Priority
from whisperd.service.decoding_budget import DecodedAudioBudget
from whisperd.service.metrics import ServiceMetrics, failure_reason

INFO = ModelInfo(
    name="tiny", path="/models/tiny", multilingual=True, languages=("en",), device="cpu",
    compute_type="int8",
)  # fmt: skip


def samples(metrics: ServiceMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    registry = CollectorRegistry()
    registry.register(metrics)
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: ServiceMetrics, name: str, **labels: str) -> float:
    return samples(metrics).get((name, frozenset(labels.items())), 0.0)


def test_rejections_are_counted_by_reason() -> None:
    admission = Admission(1, max_audio_seconds=10, max_streams=1)
    budget = DecodedAudioBudget(5)
    metrics = ServiceMetrics()
    metrics.watch(admission, lambda: [INFO], lambda: budget.rejections)

    async def refuse() -> None:
        async with admission.slot():
            for _ in range(2):
                with pytest.raises(QueueFullError):
                    async with admission.slot():
                        pass
            async with admission.running_work(8.0):
                with pytest.raises(QueueFullError):
                    async with admission.running_work(8.0):
                        pass
        async with admission.stream_slot():
            with pytest.raises(QueueFullError):
                async with admission.stream_slot():
                    pass

    asyncio.run(refuse())
    with budget.reservation() as first, budget.reservation() as second:
        first(4.0)
        with pytest.raises(QueueFullError):
            second(3.0)
    reasons = {"requests": 2, "audio": 1, "streams": 1, "decoded_audio": 1, "wait": 0}
    for reason, count in reasons.items():
        assert value(metrics, "whisperd_admission_rejections_total", reason=reason) == count
    assert value(metrics, "whisperd_models_loaded") == 1
    labels = {"model": "tiny", "device": "cpu", "compute_type": "int8"}
    assert value(metrics, "whisperd_model_loaded_info", **labels) == 1


def test_gauges_read_the_admission_when_scraped() -> None:
    admission = Admission(4)
    metrics = ServiceMetrics()
    metrics.watch(admission, list, lambda: 0)

    async def hold() -> dict[str, float]:
        async with admission.slot(), admission.slot(), admission.running_work(12.5):
            return {
                name: value(metrics, name)
                for name in (
                    "whisperd_requests_in_flight",
                    "whisperd_requests_waiting",
                    "whisperd_queued_audio_seconds",
                )
            }

    held = asyncio.run(hold())
    assert held == {
        "whisperd_requests_in_flight": 2,
        "whisperd_requests_waiting": 1,
        "whisperd_queued_audio_seconds": 12.5,
    }
    assert value(metrics, "whisperd_requests_in_flight") == 0
    assert value(metrics, "whisperd_models_loaded") == 0


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (CorruptAudioError("x"), "audio"),
        (UrlBlockedError("x"), "url"),
        (InvalidOptionError("x"), "options"),
        (UnknownModelError("x"), "model"),
        (TranscriptionError("x"), "transcription"),
        (asyncio.CancelledError(), "cancelled"),
        (QueueFullError("x"), None),
        (ShuttingDownError("x"), None),
        (RuntimeError("x"), None),
    ],
)
def test_failure_reasons_come_from_a_fixed_set(error: BaseException, reason: str | None) -> None:
    assert failure_reason(error) == reason
    metrics = ServiceMetrics()
    metrics.record_failure(error)
    counted = {
        dict(labels)["reason"]: count
        for (name, labels), count in samples(metrics).items()
        if name == "whisperd_transcription_failures_total"
    }
    assert sum(counted.values()) == (0 if reason is None else 1)
    if reason is not None:
        assert counted[reason] == 1


def test_transcribed_audio_and_real_time_factor() -> None:
    metrics = ServiceMetrics()
    metrics.record_transcribed(Priority.INTERACTIVE, 10.0, 2.0)
    metrics.record_transcribed(Priority.BULK, 30.0, 3.0)
    metrics.record_transcribed(Priority.INTERACTIVE, 0.0, 0.1)
    assert value(metrics, "whisperd_audio_seconds_total", priority="interactive") == 10.0
    assert value(metrics, "whisperd_audio_seconds_total", priority="bulk") == 30.0
    assert value(metrics, "whisperd_real_time_factor_count", priority="interactive") == 1
    assert value(metrics, "whisperd_real_time_factor_sum", priority="interactive") == 0.2
    assert value(metrics, "whisperd_real_time_factor_bucket", priority="bulk", le="0.1") == 1


def test_batches_and_timed_loads() -> None:
    metrics = ServiceMetrics()
    metrics.record_batch("encode", 3, 0.004)
    metrics.record_batch("encode", 1, 0.0)
    assert value(metrics, "whisperd_batch_size_count", kind="encode") == 2
    assert value(metrics, "whisperd_batch_size_sum", kind="encode") == 4
    assert value(metrics, "whisperd_batch_size_bucket", kind="encode", le="2.0") == 1
    assert value(metrics, "whisperd_batch_wait_seconds_bucket", kind="encode", le="0.005") == 2

    def loader(model: Any, device: str, compute_type: str) -> Any:
        return (model, device, compute_type)

    timed = metrics.timed(loader)
    assert timed("m", "cpu", "int8") == ("m", "cpu", "int8")
    assert value(metrics, "whisperd_model_load_seconds_count") == 1


def test_two_services_never_share_counts() -> None:
    one, two = ServiceMetrics(), ServiceMetrics()
    one.record_batch("generate", 2, 0.0)
    assert value(two, "whisperd_batch_size_count", kind="generate") == 0

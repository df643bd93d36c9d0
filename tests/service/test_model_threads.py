"""How a CTranslate2 model on the CPU shares the cores: parallel one-thread calls by default,
one window each."""

from __future__ import annotations

import asyncio

import pytest

from whisperd.config import Settings
from whisperd.service import TranscriptionService, loading
from whisperd.service.loading import ModelThreads, max_batch_size, model_threads
from whisperd.testing import ScriptedModel


def _settings(**fields: object) -> Settings:
    return Settings(_env_file=None, **fields)  # type: ignore[call-arg, arg-type]


@pytest.mark.parametrize(
    ("cores", "expected"),
    [
        (1, ModelThreads(1, 1)),
        (2, ModelThreads(2, 1)),
        (4, ModelThreads(4, 1)),
        (8, ModelThreads(4, 2)),
        (18, ModelThreads(4, 4)),
    ],
)
def test_the_cpu_runs_one_call_per_core_at_most_four(
    monkeypatch: pytest.MonkeyPatch, cores: int, expected: ModelThreads
) -> None:
    monkeypatch.setattr(loading, "available_cores", lambda: cores)
    assert model_threads(_settings(), "ctranslate2", "cpu") == expected


def test_chosen_threading_is_kept_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loading, "available_cores", lambda: 8)
    assert model_threads(_settings(num_workers=1), "ctranslate2", "cpu") == ModelThreads(1, 0)
    assert model_threads(_settings(cpu_threads=8), "ctranslate2", "cpu") == ModelThreads(1, 8)
    assert model_threads(_settings(), "ctranslate2", "cuda") == ModelThreads(1, 0)
    assert model_threads(_settings(), "torch", "cpu") == ModelThreads(1, 0)


def test_the_environment_chooses_as_a_flag_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISPERD_NUM_WORKERS", "3")
    assert model_threads(_settings(), "ctranslate2", "cpu") == ModelThreads(3, 0)


@pytest.mark.parametrize(("cores", "windows"), [(1, 2), (2, 1), (8, 1)])
def test_parallel_calls_on_the_cpu_hold_one_window_each(
    monkeypatch: pytest.MonkeyPatch, cores: int, windows: int
) -> None:
    monkeypatch.setattr(loading, "available_cores", lambda: cores)
    assert max_batch_size(_settings(), "ctranslate2", "cpu") == windows
    assert max_batch_size(_settings(num_workers=1), "ctranslate2", "cpu") == 2
    assert max_batch_size(_settings(max_batch_size=6), "ctranslate2", "cpu") == 6


def test_a_service_on_the_cpu_schedules_one_worker_per_core(
    scripted_model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loading, "available_cores", lambda: 2)
    settings = _settings(model=str(scripted_model.path), offline=True, device="cpu")
    service = TranscriptionService.create(settings)
    try:
        asyncio.run(service.model())
        engine = service.models.peek(settings.model, device="cpu", compute_type="auto")
        assert engine is not None
        assert engine.batcher.workers == 2  # type: ignore[attr-defined]
        assert engine.batcher.max_batch_size == 1  # type: ignore[attr-defined]
    finally:
        service.close()

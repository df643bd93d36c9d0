"""Memory bounds of a service: merged CTranslate2 calls on the CPU and glibc's malloc arenas."""

from __future__ import annotations

import asyncio
import platform

import pytest

from whisperd.config import Settings
from whisperd.service import TranscriptionService
from whisperd.service.loading import CPU_MAX_BATCH_SIZE, max_batch_size
from whisperd.service.malloc import limit_malloc_arenas
from whisperd.testing import ScriptedModel


def test_merged_calls_on_the_cpu_are_small_unless_asked_for() -> None:
    default = Settings(_env_file=None, num_workers=1)  # type: ignore[call-arg]
    assert max_batch_size(default, "ctranslate2", "cpu") == CPU_MAX_BATCH_SIZE == 2
    assert max_batch_size(default, "ctranslate2", "cuda") == 8
    assert max_batch_size(default, "torch", "cpu") == 8
    chosen = Settings(_env_file=None, max_batch_size=8)  # type: ignore[call-arg]
    assert max_batch_size(chosen, "ctranslate2", "cpu") == 8


def test_the_environment_sets_the_batch_size_as_a_flag_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WHISPERD_MAX_BATCH_SIZE", "6")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert max_batch_size(settings, "ctranslate2", "cpu") == 6


def test_a_service_on_the_cpu_merges_at_most_two_windows(scripted_model: ScriptedModel) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        model=str(scripted_model.path),
        offline=True,
        device="cpu",
        num_workers=1,
    )
    service = TranscriptionService.create(settings)
    try:
        asyncio.run(service.model())
        engine = service.models.peek(settings.model, device="cpu", compute_type="auto")
        assert engine is not None
        assert engine.batcher.max_batch_size == 2  # type: ignore[attr-defined]
    finally:
        service.close()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="arenas are glibc's")
def test_malloc_arenas_are_capped_on_glibc_and_left_alone_with_zero() -> None:
    assert limit_malloc_arenas(0) is False
    assert limit_malloc_arenas(2) is True


@pytest.mark.parametrize("value", [-1, 65])
def test_malloc_arenas_out_of_range_are_refused(value: int) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="malloc_arenas"):
        Settings(_env_file=None, malloc_arenas=value)  # type: ignore[call-arg]

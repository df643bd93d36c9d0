"""One model for every route: ``auto`` hardware is resolved before a model is keyed, so the
OpenAI and native APIs share one loaded engine and batch their windows together."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import ctranslate2
import pytest
from fastapi.testclient import TestClient

from waiting import joined, wait_until
from whisperd.app import create_app
from whisperd.config import Settings
from whisperd.engine.hub import ResolvedModel
from whisperd.engine.manager import ModelManager
from whisperd.engine.selection import concrete_hardware
from whisperd.engine.whisper import BatchingConfig, WhisperEngine
from whisperd.scheduler.batcher import Priority
from whisperd.service import TranscriptionService
from whisperd.service.loading import model_hardware
from whisperd.testing import ScriptedModel, fake_loader

DATA = Path(__file__).parents[1] / "data"


def test_auto_is_named_as_what_each_engine_runs() -> None:
    device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    half = "float16" if device == "cuda" else "int8"
    assert concrete_hardware("ctranslate2", "auto", "auto") == (device, half)
    assert concrete_hardware("ctranslate2", "cpu", "default") == ("cpu", "int8")
    assert concrete_hardware("ctranslate2", "cpu", "float32") == ("cpu", "float32")


def test_the_torch_engine_names_the_float_type_it_runs() -> None:
    pytest.importorskip("torch")
    assert concrete_hardware("torch", "cpu", "auto") == ("cpu", "float32")
    assert concrete_hardware("torch", "cpu", "int8") == ("cpu", "float32")


def test_auto_and_what_it_picks_share_one_engine(scripted_model: ScriptedModel) -> None:
    manager = ModelManager(fake_loader(), offline=True, hardware=model_hardware("ctranslate2"))
    name = str(scripted_model.path)
    picked = concrete_hardware("ctranslate2", "auto", "auto")
    try:
        automatic = manager.get(name, device="auto", compute_type="auto")
        pinned = manager.get(name, device=picked[0], compute_type=picked[1])
        other = manager.get(name, device="cpu", compute_type="float32")
        assert pinned is automatic
        assert other is not automatic
        assert manager.peek(name, device="auto", compute_type="auto") is automatic
        assert [(i.device, i.compute_type) for i in manager.loaded()] == [
            picked,
            ("cpu", "float32"),
        ]
    finally:
        manager.close()


def _batching_loader(loads: list[str]) -> Any:
    """Real CTranslate2 engines whose scheduler merges two windows and waits long for them."""

    def load(model: ResolvedModel, device: str, compute_type: str) -> WhisperEngine:
        loads.append(f"{device}/{compute_type}")
        return WhisperEngine(
            model,
            device=device,
            compute_type=compute_type,
            batching=BatchingConfig(max_batch_size=2, max_wait_ms=60_000),
        )

    return load


def test_openai_and_native_requests_share_one_model_and_its_batches(
    scripted_model: ScriptedModel,
) -> None:
    # The server's hardware is "auto"; the native client pins what auto picks here.
    settings = Settings(_env_file=None, model=str(scripted_model.path), offline=True)
    device, compute_type = concrete_hardware("ctranslate2", "auto", "auto")
    loads: list[str] = []
    service = TranscriptionService.create(settings, loader=_batching_loader(loads))
    app = create_app(settings, service=service)
    audio = (DATA / "speech.wav").read_bytes()
    answers: dict[str, Any] = {}
    try:
        with TestClient(app) as client:
            wait_until(lambda: service.readiness == "ready", "the default model did not load")
            engine = service.models.peek(settings.model, device="auto", compute_type="auto")
            assert isinstance(engine, WhisperEngine)
            # An active request with no call queued yet: the scheduler holds the first window
            # until the batch is full (two windows), so whatever runs first runs merged.
            # It ranks last (bulk), so a full batch does not wait for it in turn.
            holder = engine.batcher.ticket(Priority.BULK)
            engine.batcher.enter(holder)

            def openai_request() -> None:
                files = {"file": ("speech.wav", audio)}
                answers["openai"] = client.post("/v1/audio/transcriptions", files=files)

            def native_request() -> None:
                form = {"device": device, "quantization": compute_type}
                files = {"audio": ("speech.wav", audio)}
                answers["native"] = client.post("/transcribe", data=form, files=files)

            threads = [
                threading.Thread(target=openai_request),
                threading.Thread(target=native_request),
            ]
            for thread in threads:
                thread.start()
            wait_until(lambda: engine.batcher.stats.sizes[2] >= 1, "no call of both was merged")
            engine.batcher.leave(holder)
            joined(*threads)
        assert answers["openai"].status_code == 200, answers["openai"].text
        assert answers["native"].status_code == 200, answers["native"].text
        assert answers["native"].json()["model_used"].endswith(f" - {compute_type}")
        assert loads == [f"{device}/{compute_type}"]
        assert [(i.device, i.compute_type) for i in service.models.loaded()] == [
            (device, compute_type)
        ]
    finally:
        service.close()

"""The server app: built by a factory, state on the app, readiness endpoint."""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi.testclient import TestClient

from waiting import wait_until
from whisperd.app import create_app
from whisperd.config import Settings
from whisperd.engine.base import Engine
from whisperd.engine.hub import ResolvedModel
from whisperd.engine.manager import Loader
from whisperd.service import TranscriptionService
from whisperd.testing import ScriptedModel, fake_loader


def test_health_answers_once_started_and_the_service_lives_on_the_app() -> None:
    settings = Settings(_env_file=None, model="tiny", offline=True, preload_model=False)
    app = create_app(settings)
    with TestClient(app) as client:
        response = client.get("/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert isinstance(app.state.service, TranscriptionService)
        assert app.state.settings is settings


def test_two_apps_in_one_process_keep_their_own_settings() -> None:
    first = create_app(Settings(_env_file=None, model="tiny", preload_model=False))
    second = create_app(Settings(_env_file=None, model="small", preload_model=False))
    with TestClient(first), TestClient(second):
        assert first.state.service.settings.model == "tiny"
        assert second.state.service.settings.model == "small"


def _gated(gate: threading.Event, started: threading.Event) -> Loader:
    """A fake loader that holds every load until ``gate`` is set."""
    load = fake_loader()

    def gated(model: ResolvedModel, device: str, compute_type: str) -> Engine:
        started.set()
        assert gate.wait(60), "the test never opened the loader's gate"
        return load(model, device, compute_type)

    return gated


def test_health_says_loading_until_the_default_model_is_ready(
    scripted_model: ScriptedModel,
) -> None:
    settings = Settings(_env_file=None, model=str(scripted_model.path), offline=True)
    gate, started = threading.Event(), threading.Event()
    service = TranscriptionService.create(settings, loader=_gated(gate, started))
    app = create_app(settings, service=service)
    try:
        with TestClient(app) as client:
            assert started.wait(60), "the default model was not loaded at startup"
            loading = client.get("/health")
            assert (loading.status_code, loading.json()) == (503, {"status": "loading"})
            gate.set()
            wait_until(lambda: client.get("/health").status_code == 200, "never ready")
            assert client.get("/health").json() == {"status": "ok"}
            assert [info.path for info in service.models.loaded()] == [str(scripted_model.path)]
    finally:
        gate.set()
        service.close()


def test_a_request_during_the_load_waits_for_it_instead_of_failing(
    scripted_model: ScriptedModel,
) -> None:
    settings = Settings(_env_file=None, model=str(scripted_model.path), offline=True)
    gate, started = threading.Event(), threading.Event()
    service = TranscriptionService.create(settings, loader=_gated(gate, started))
    app = create_app(settings, service=service)
    data = (Path(__file__).parent / "data" / "speech.wav").read_bytes()
    answers: list[int] = []
    try:
        with TestClient(app) as client:
            assert started.wait(60)

            def send() -> None:
                files = {"file": ("speech.wav", data)}
                answers.append(client.post("/v1/audio/transcriptions", files=files).status_code)

            sender = threading.Thread(target=send)
            sender.start()
            wait_until(lambda: service.admission.in_flight == 1, "the request was not admitted")
            assert client.get("/health").json() == {"status": "loading"}
            gate.set()
            sender.join(60)
            assert answers == [200]
            assert len(service.models.loaded()) == 1  # the preload's engine served the request
    finally:
        gate.set()
        service.close()


def test_health_says_failed_when_the_default_model_cannot_be_had(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, model="tiny", offline=True, models_dir=tmp_path)
    app = create_app(settings, service=TranscriptionService.create(settings, loader=fake_loader()))
    with TestClient(app) as client:
        wait_until(lambda: app.state.service.readiness != "loading", "the load did not end")
        failed = client.get("/health")
    assert (failed.status_code, failed.json()) == (503, {"status": "failed"})
    assert app.state.service.default_failure is not None
    assert "'tiny'" in app.state.service.default_failure.message
    app.state.service.close()


def test_lazy_loading_loads_nothing_at_startup(scripted_model: ScriptedModel) -> None:
    settings = Settings(
        _env_file=None, model=str(scripted_model.path), offline=True, preload_model=False
    )
    service = TranscriptionService.create(settings, loader=fake_loader())
    with TestClient(create_app(settings, service=service)) as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert service.models.loaded() == []
    service.close()

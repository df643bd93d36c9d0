"""The server app: built by a factory, state on the app, readiness endpoint."""

from __future__ import annotations

from fastapi.testclient import TestClient

from whisperd.app import create_app
from whisperd.config import Settings
from whisperd.service import TranscriptionService


def test_health_answers_once_started_and_the_service_lives_on_the_app() -> None:
    settings = Settings(_env_file=None, model="tiny", offline=True)
    app = create_app(settings)
    with TestClient(app) as client:
        response = client.get("/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert isinstance(app.state.service, TranscriptionService)
        assert app.state.settings is settings


def test_two_apps_in_one_process_keep_their_own_settings() -> None:
    first = create_app(Settings(_env_file=None, model="tiny"))
    second = create_app(Settings(_env_file=None, model="small"))
    with TestClient(first), TestClient(second):
        assert first.state.service.settings.model == "tiny"
        assert second.state.service.settings.model == "small"

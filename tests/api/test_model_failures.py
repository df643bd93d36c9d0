"""A model that cannot be had: one cause gets one status on both APIs, the server's own default
never blames the client's ``model`` field, every failure is logged, and ``/v1/models`` lists
only what can be served, with the capabilities the model itself reports."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from waiting import wait_until
from whisperd.app import create_app
from whisperd.config import Settings
from whisperd.service import TranscriptionService
from whisperd.testing import ScriptedModel, fake_loader

DATA = Path(__file__).parents[1] / "data"
SERVICE_LOG = "whisperd.service.core"


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, device="cpu", compute_type="int8", offline=True, **values)


def _client(settings: Settings, *, fake: bool = True) -> Iterator[TestClient]:
    loader = fake_loader() if fake else None
    service = TranscriptionService.create(settings, loader=loader)
    app = create_app(settings, service=service)
    try:
        with TestClient(app) as client:
            wait_until(lambda: service.readiness != "loading", "the default model did not load")
            yield client
    finally:
        service.close()


def _app(client: TestClient) -> FastAPI:
    app = client.app
    assert isinstance(app, FastAPI)
    return app


def _both_apis(client: TestClient, model: str | None) -> tuple[Any, Any]:
    audio = (DATA / "speech.wav").read_bytes()
    openai = client.post(
        "/v1/audio/transcriptions",
        files={"file": ("speech.wav", audio)},
        data={"model": model or "whisper-1"},
    )
    native = client.post(
        "/transcribe",
        files={"audio": ("speech.wav", audio)},
        data={"model": model} if model else {},
    )
    return openai, native


@pytest.fixture(params=["preloaded", "lazy"])
def uncached_default(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    """A server whose default model (tiny, offline) is not in its empty model cache."""
    settings = _settings(
        model="tiny", models_dir=tmp_path, preload_model=request.param == "preloaded"
    )
    yield from _client(settings)


def test_the_default_model_missing_is_503_on_both_apis_and_never_blames_the_client(
    uncached_default: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=SERVICE_LOG):
        openai, native = _both_apis(uncached_default, None)
    assert openai.status_code == native.status_code == 503
    error = openai.json()["error"]
    assert (error["code"], error["param"], error["type"]) == (
        "model_unavailable",
        None,
        "server_error",
    )
    assert error["message"].startswith("The default model 'tiny' is not available:")
    assert "offline mode is on" in error["message"]
    assert native.json()["detail"] == error["message"]
    failures = [r for r in caplog.records if r.name == SERVICE_LOG and r.levelno == logging.ERROR]
    assert len(failures) >= 2
    assert all("The default model 'tiny' is not available" in r.getMessage() for r in failures)


def test_a_bogus_default_is_the_servers_fault_not_the_clients(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=SERVICE_LOG):
        for client in _client(_settings(model=str(tmp_path / "missing"))):
            openai, native = _both_apis(client, None)
            named, _ = _both_apis(client, str(tmp_path / "missing"))
            assert client.get("/health").json() == {"status": "failed"}
    assert openai.status_code == native.status_code == named.status_code == 503
    assert openai.json()["error"]["param"] is None
    assert "does not exist" in native.json()["detail"]
    assert any(r.levelno == logging.ERROR and "missing" in r.getMessage() for r in caplog.records)


def test_a_model_the_client_names_gets_the_same_status_for_the_same_cause(
    scripted_model: ScriptedModel, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(model=str(scripted_model.path), models_dir=tmp_path)
    with caplog.at_level(logging.INFO, logger=SERVICE_LOG):
        for client in _client(settings):
            uncached_openai, uncached_native = _both_apis(client, "small")
            unknown_openai, unknown_native = _both_apis(client, "no-such-model")
    # Not in the offline cache: a server fault, 503 on both.
    assert uncached_openai.status_code == uncached_native.status_code == 503
    assert uncached_openai.json()["error"]["param"] == "model"
    assert "offline mode is on" in uncached_native.json()["detail"]
    # A name that selects no model: each API's client error (OpenAI 404, native 400).
    assert unknown_openai.status_code == 404
    assert unknown_openai.json()["error"]["code"] == "model_not_found"
    assert unknown_native.status_code == 400
    logged = [r.getMessage() for r in caplog.records if r.name == SERVICE_LOG]
    assert sum("'small'" in m and "offline mode is on" in m for m in logged) == 2
    assert sum("no-such-model" in m for m in logged) == 2


def test_a_failed_default_is_not_listed_and_its_aliases_say_why(tmp_path: Path) -> None:
    for client in _client(_settings(model="tiny", models_dir=tmp_path)):
        ids = [entry["id"] for entry in client.get("/v1/models").json()["data"]]
        whisper_1 = client.get("/v1/models/whisper-1")
        small = client.get("/v1/models/small")
    assert "tiny" not in ids
    assert "whisper-1" not in ids
    assert "small" in ids
    assert whisper_1.status_code == 503
    assert whisper_1.json()["error"]["code"] == "model_unavailable"
    assert small.status_code == 200


@pytest.mark.parametrize("preload", [True, False])
def test_a_default_that_names_no_model_is_never_listed(tmp_path: Path, preload: bool) -> None:
    for name in ("bogus", str(tmp_path / "missing")):
        for client in _client(_settings(model=name, preload_model=preload)):
            ids = [entry["id"] for entry in client.get("/v1/models").json()["data"]]
            assert name not in ids
            assert "whisper-1" not in ids
            assert client.get("/v1/models/whisper-1").status_code in (404, 503)


def _capabilities(client: TestClient, model_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/models/{model_id}")
    assert response.status_code == 200, response.text
    capabilities: dict[str, Any] = response.json()["capabilities"]
    return capabilities


def test_an_english_only_default_reports_what_the_model_can_do(real_model: Path) -> None:
    for client in _client(_settings(model=str(real_model)), fake=False):
        assert _capabilities(client, "whisper-1") == {
            "transcription": True,
            "translation": False,
            "languages": ["en"],
        }
        listed = {e["id"]: e for e in client.get("/v1/models").json()["data"]}
        assert listed[str(real_model)]["capabilities"]["translation"] is False
        assert listed[str(real_model)]["downloaded"] is True


def test_a_multilingual_default_reports_translation_and_every_language(
    scripted_model: ScriptedModel,
) -> None:
    for client in _client(_settings(model=str(scripted_model.path)), fake=False):
        capabilities = _capabilities(client, "whisper-1")
    assert capabilities["translation"] is True
    assert len(capabilities["languages"]) >= 99
    assert {"en", "de", "ja"} <= set(capabilities["languages"])

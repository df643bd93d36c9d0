"""``POST /v1/jobs`` refuses a model or options that could never run, with the status and
error the synchronous route gives for the same fields, before anything is kept, and without
loading a model that is not loaded yet."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from job_servers import SPEECH, JobServer

from whisperd.testing import ScriptedModel
from whisperd.testing.hub import hub_cache

Serve = Callable[..., Any]


def _both(server: JobServer, route: str = "/v1/audio/transcriptions", **fields: Any) -> list[Any]:
    """The job route's answer and the synchronous route's, to the same fields."""
    job = server.submit(**fields)
    files = {"file": ("audio.wav", SPEECH, "audio/wav")}
    direct = server.http.post(route, files=files, data={k: str(v) for k, v in fields.items()})
    return [job, direct]


def _nothing_kept(server: JobServer) -> None:
    assert server.http.get("/v1/jobs").json()["data"] == []
    assert server.audio_files() == []


def test_an_unknown_model_is_refused_as_the_synchronous_route_refuses_it(
    job_server: Serve,
) -> None:
    with job_server() as server:
        job, direct = _both(server, model="no-such-model")
        assert job.status_code == direct.status_code == 404, job.text
        assert job.json() == direct.json()
        assert job.json()["error"]["code"] == "model_not_found"
        _nothing_kept(server)


def test_a_model_missing_from_the_offline_cache_is_refused(
    job_server: Serve, tmp_path: Path
) -> None:
    with job_server(models_dir=tmp_path / "hub") as server:
        job, direct = _both(server, model="small")
        assert job.status_code == direct.status_code == 503, job.text
        assert job.json() == direct.json()
        assert "offline mode is on" in job.json()["error"]["message"]
        _nothing_kept(server)


def test_the_loaded_default_model_refuses_what_it_cannot_do(
    job_server: Serve, english_model: ScriptedModel
) -> None:
    with job_server(model=str(english_model.path)) as server:
        for route, fields, param in (
            ("/v1/audio/transcriptions", {"language": "de"}, "language"),
            ("/v1/audio/transcriptions", {"multilingual": "true"}, "multilingual"),
            ("/v1/audio/translations", {"task": "translate"}, "task"),
        ):
            job, direct = _both(server, route, **fields)
            assert job.status_code == direct.status_code == 400, (fields, job.text)
            assert job.json() == direct.json()
            assert job.json()["error"]["param"] == param
        _nothing_kept(server)
        accepted = server.submit(language="en")
        assert accepted.status_code == 202, accepted.text


def test_a_named_english_only_model_is_checked_by_its_name_without_loading_it(
    job_server: Serve, english_model: ScriptedModel, tmp_path: Path
) -> None:
    cache = hub_cache(tmp_path / "hub", english_model.path, ["Systran/faster-whisper-tiny.en"])
    with job_server(models_dir=cache, max_running_jobs=0) as server:
        refused = server.submit(model="tiny.en", task="translate")
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert (error["param"], error["type"]) == ("task", "invalid_request_error")
        assert "'tiny.en' is English-only and cannot translate" in error["message"]
        _nothing_kept(server)
        service = server.app.state.service
        assert [info.name for info in service.models.loaded()] == [
            str(Path(service.settings.model).resolve())
        ]
        accepted = server.submit(model="tiny.en", language="en")
        assert accepted.status_code == 202, accepted.text

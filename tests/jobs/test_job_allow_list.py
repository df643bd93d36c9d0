"""``POST /v1/jobs`` refuses a model the allow-list refuses, as the synchronous route does,
before anything is kept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from job_servers import SPEECH, JobServer

from whisperd.testing import ScriptedModel

Serve = Callable[..., Any]


def _nothing_kept(server: JobServer) -> None:
    assert server.http.get("/v1/jobs").json()["data"] == []
    assert server.audio_files() == []


def test_a_model_off_the_allow_list_is_refused_before_anything_is_kept(
    job_server: Serve, english_model: ScriptedModel
) -> None:
    other = str(english_model.path)
    with job_server() as server:
        job = server.submit(model=other)
        files = {"file": ("audio.wav", SPEECH, "audio/wav")}
        direct = server.http.post("/v1/audio/transcriptions", files=files, data={"model": other})
        assert job.status_code == direct.status_code == 404, job.text
        assert job.json() == direct.json()
        assert job.json()["error"]["code"] == "model_not_found"
        assert "WHISPERD_ALLOWED_MODELS" in job.json()["error"]["message"]
        _nothing_kept(server)


def test_an_allowed_directory_model_is_accepted(
    job_server: Serve, english_model: ScriptedModel
) -> None:
    other = str(english_model.path)
    with job_server(allowed_models=[other]) as server:
        job = server.submit(model=other)
        assert job.status_code == 202, job.text

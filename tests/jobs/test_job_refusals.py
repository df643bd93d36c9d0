"""A job's result is neither shaped into subtitles nor carries logprobs: asking is a 400; bad
speaker fields, or diarization without the speaker model, are refused at submission."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest

REFERENCES = "known_speaker_references[]"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"response_format": "srt", "max_line_width": "30"}, "max_line_width"),
        ({"response_format": "vtt", "highlight_words": "true"}, "highlight_words"),
        ({"response_format": "srt", "max_cue_duration": "0"}, "max_cue_duration"),
        ({"include[]": "logprobs"}, "include[]"),
        ({"logprobs": "true"}, "logprobs"),
    ],
)
def test_jobs_refuse_shaping_and_logprobs(
    job_server: Callable[..., Any], fields: dict[str, str], param: str
) -> None:
    with job_server() as server:
        response = server.submit(**fields)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == param
        assert server.http.get("/v1/jobs").json()["data"] == []  # nothing was queued


def test_without_the_speaker_model_a_diarized_job_says_how_to_install_it(
    job_server: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "resemblyzer", None)  # as if it were not installed
    with job_server() as server:
        for fields in (
            {"diarize": "true"},
            {"model": "gpt-4o-transcribe-diarize"},
            {"response_format": "diarized_json"},
        ):
            response = server.submit(**fields)
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["param"] == "diarize"
            assert error["code"] == "diarization_unavailable"
            assert "pip install 'whisperd[diarize]'" in error["message"]
        assert server.http.get("/v1/jobs").json()["data"] == []
        assert server.audio_files() == []


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"num_speakers": "2"}, "num_speakers"),
        ({"known_speaker_names[]": "agent"}, "known_speaker_names[]"),
        ({"diarize": "true", "num_speakers": "0"}, "num_speakers"),
        ({"diarize": "true", "min_speakers": "3", "max_speakers": "2"}, "min_speakers"),
        (
            {"multichannel": "true", "known_speaker_names[]": "a", REFERENCES: "data:,x"},
            REFERENCES,
        ),
        ({"diarize": "true", "known_speaker_names[]": "a", REFERENCES: "x"}, REFERENCES),
    ],
)
def test_bad_speaker_fields_of_a_job_are_400_naming_the_field(
    job_server: Callable[..., Any], fields: dict[str, str], param: str
) -> None:
    with job_server() as server:
        response = server.submit(**fields)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == param
        assert server.http.get("/v1/jobs").json()["data"] == []


def test_a_job_without_speakers_has_no_diarized_json(job_server: Callable[..., Any]) -> None:
    with job_server() as server:
        job = server.finished(server.submit().json()["id"])
        assert job["status"] == "succeeded"
        response = server.http.get(
            f"/v1/jobs/{job['id']}/result", params={"response_format": "diarized_json"}
        )
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["param"] == "response_format"
        assert "diarize=true" in error["message"]

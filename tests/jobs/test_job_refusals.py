"""A job's result is neither shaped into subtitles nor carries logprobs: asking is a 400."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


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


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"diarize": "true"}, "diarize"),
        ({"model": "gpt-4o-transcribe-diarize"}, "diarize"),
        ({"multichannel": "true"}, "multichannel"),
        ({"response_format": "diarized_json"}, "response_format"),
    ],
)
def test_jobs_refuse_diarization(
    job_server: Callable[..., Any], fields: dict[str, str], param: str
) -> None:
    with job_server() as server:
        response = server.submit(**fields)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == param
        assert server.http.get("/v1/jobs").json()["data"] == []

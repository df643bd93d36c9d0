"""The typed wire models: they carry today's bytes, refuse what has no effect, and word
validation failures and errors the same way everywhere."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from whisperd.api.errors import error_content, validation_response
from whisperd.audio.formats import Granularity, to_json, to_verbose_json
from whisperd.engine.base import Segment, Transcript, Word
from whisperd.schemas.native import NativeSettings
from whisperd.schemas.openai import (
    DurationUsage,
    OpenAIFields,
    TranscriptionJson,
    TranscriptionVerbose,
    TranscriptTextDone,
    refuse_unsupported,
)
from whisperd.schemas.validation import Problem, describe, problems

WORDS = (Word(0.0, 0.24, " The", 0.9), Word(0.24, 0.61, " beach", 0.8))
TRANSCRIPT = Transcript(
    segments=(
        Segment(
            0,
            0,
            0.0,
            3.319999933242798,
            " The beach.",
            (50364, 440, 50530),
            0.0,
            -0.28,
            1.23,
            0.0098,
            WORDS,
        ),
        Segment(1, 332, -0.5, 1e-7, " Ünïcode — ok", (50364, 441), 0.2, -1.5, 2.5, 0.5),
    ),
    language="en",
    language_probability=0.99,
    duration=8.470000267028809,
)


def _bytes(content: dict[str, Any]) -> bytes:
    return JSONResponse(content).body


@pytest.mark.parametrize(
    "granularities", [(), ("segment",), ("word",), ("segment", "word"), ("word", "segment")]
)
def test_verbose_json_through_its_model_keeps_every_byte(
    granularities: tuple[Granularity, ...],
) -> None:
    body = to_verbose_json(TRANSCRIPT, granularities=granularities)
    typed = TranscriptionVerbose.model_validate(body).model_dump(exclude_none=True)
    assert _bytes(typed) == _bytes(body)


def test_json_through_its_model_keeps_every_byte() -> None:
    for body in (to_json(TRANSCRIPT), to_json(TRANSCRIPT, logprobs=True)):
        typed = TranscriptionJson.model_validate(body).model_dump(exclude_none=True)
        assert _bytes(typed) == _bytes(body)


def test_the_done_event_is_the_json_body_with_its_type() -> None:
    done = TranscriptTextDone(text=TRANSCRIPT.text, usage=DurationUsage.of(TRANSCRIPT.duration))
    assert done.model_dump(exclude_none=True) == {
        "type": "transcript.text.done",
        **to_json(TRANSCRIPT),
    }


@pytest.mark.parametrize(("duration", "seconds"), [(8.47, 9), (0.0, 0), (float("nan"), 0)])
def test_usage_is_whole_seconds_rounded_up(duration: float, seconds: int) -> None:
    assert DurationUsage.of(duration).model_dump() == {"type": "duration", "seconds": seconds}


def test_include_takes_only_logprobs() -> None:
    refuse_unsupported({"include[]": ("logprobs",)})  # honoured: tests/api/test_logprobs.py
    assert OpenAIFields.model_validate({"include[]": ("logprobs",)}).include == ("logprobs",)
    with pytest.raises(ValidationError) as invalid:
        OpenAIFields.model_validate({"include[]": ("nonsense",)})
    assert problems(invalid.value)[0].field == "include[]"
    assert OpenAIFields.model_validate({}).include == ()


def test_a_removed_hint_is_ignored_like_any_unknown_field() -> None:
    fields = OpenAIFields.model_validate({"audio_suffix": ".mp3", "model": "whisper-1"})
    assert "audio_suffix" not in fields.model_dump()


# --------------------------------------------------------------------------------------------
# Validation failures, worded once


class _Inner(BaseModel):
    rate: int


class _Outer(BaseModel):
    beam_size: int
    inner: _Inner


def _failure() -> ValidationError:
    with pytest.raises(ValidationError) as info:
        _Outer.model_validate({"beam_size": "x", "inner": {"rate": "y"}})
    return info.value


def test_problems_name_each_location() -> None:
    found = problems(_failure())
    assert [p.location for p in found] == [("beam_size",), ("inner", "rate")]
    assert [p.field for p in found] == ["beam_size", "inner"]


def test_describe_joins_every_problem_and_can_respell_names() -> None:
    text = describe(_failure(), name=lambda part: part.replace("_", "-"))
    assert text.startswith("Invalid value for 'beam-size': Input should be a valid integer")
    assert "; Invalid value for 'inner.rate': " in text


def test_a_problem_without_location_is_its_message() -> None:
    assert Problem((), "Invalid JSON").describe() == "Invalid JSON"


def test_fastapis_request_part_is_not_a_field() -> None:
    failure = RequestValidationError(
        [{"type": "missing", "loc": ("body", "audio"), "msg": "Field required", "input": None}]
    )
    assert problems(failure) == [Problem(("audio",), "Field required")]


def test_an_openai_validation_error_names_the_first_field_as_param() -> None:
    with pytest.raises(ValidationError) as info:
        NativeSettings.model_validate({"beam_size": 99})
    response = validation_response("openai", info.value)
    error = json.loads(response.body)["error"]
    assert response.status_code == 400
    assert (error["param"], error["code"]) == ("beam_size", "invalid_value")
    assert error["message"].startswith("Invalid value for 'beam_size': ")
    native = json.loads(validation_response("native", info.value).body)
    assert native == {"detail": error["message"]}


# --------------------------------------------------------------------------------------------
# The one error-body builder


def test_error_content_in_each_envelope() -> None:
    assert error_content("openai", "nope", param="model", code="bad") == {
        "error": {
            "message": "nope",
            "type": "invalid_request_error",
            "param": "model",
            "code": "bad",
        }
    }
    assert error_content("openai", "down", type_="server_error") == {
        "error": {"message": "down", "type": "server_error", "param": None, "code": None}
    }
    assert error_content("native", "nope", param="model", code="bad") == {"detail": "nope"}

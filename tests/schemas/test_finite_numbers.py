"""Every numeric field of every request model refuses non-finite numbers, naming the field.

The fields are found by walking the models (nested models and lists of numbers included), so
a numeric field added later is covered without a new test.
"""

from __future__ import annotations

import json
import math
import types
import typing
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from whisperd.config import Settings
from whisperd.engine.options import TranscribeOptions, VadParameters
from whisperd.schemas.native import NativeSettings
from whisperd.schemas.openai import ChunkingStrategy
from whisperd.schemas.realtime_session import BetaSession, Session
from whisperd.schemas.stream import StreamMetadata
from whisperd.schemas.validation import problems

REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    TranscribeOptions,
    VadParameters,
    ChunkingStrategy,
    NativeSettings,
    StreamMetadata,
    Session,
    BetaSession,
)
"""Every model a client's numbers are validated with (nested models are walked)."""

SPELLINGS: tuple[object, ...] = (
    "inf",
    "-inf",
    "nan",
    "1e309",
    "-1e309",
    math.inf,
    -math.inf,
    math.nan,
)
"""Non-finite numbers as forms send them (strings) and as JSON parsers give them (floats)."""


def _members(annotation: Any) -> list[Any]:
    """The types an annotation allows: ``Annotated`` and ``X | None`` unwrapped."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def _numeric_paths(
    model: type[BaseModel], prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], bool]]:
    """``(path, is_list)`` of every int or float field (or list of them), nested models walked."""
    found: list[tuple[tuple[str, ...], bool]] = []
    for name, field in model.model_fields.items():
        path = (*prefix, field.alias or name)
        for member in _members(field.annotation):
            origin = typing.get_origin(member)
            if member in (int, float):
                found.append((path, False))
            elif origin in (tuple, list) and any(
                inner in (int, float) for arg in typing.get_args(member) for inner in _members(arg)
            ):
                found.append((path, True))
            elif isinstance(member, type) and issubclass(member, BaseModel):
                found.extend(_numeric_paths(member, path))
    return found


def _nest(path: tuple[str, ...], value: object) -> dict[str, Any]:
    data: Any = value
    for part in reversed(path):
        data = {part: data}
    result: dict[str, Any] = data
    return result


CASES = [
    pytest.param(model, path, is_list, id=f"{model.__name__}.{'.'.join(path)}")
    for model in REQUEST_MODELS
    for path, is_list in dict.fromkeys(_numeric_paths(model))
]


def test_the_walk_finds_the_fields_that_matter() -> None:
    paths = {(model.__name__, ".".join(path)) for model, path, _ in (c.values for c in CASES)}
    assert ("TranscribeOptions", "clip_timestamps") in paths
    assert ("TranscribeOptions", "vad_parameters.max_speech_duration_s") in paths
    assert ("StreamMetadata", "whisper_params.whisper_sampling_params.length_penalty") in paths
    assert ("Session", "audio.input.turn_detection.threshold") in paths
    assert ("BetaSession", "turn_detection.silence_duration_ms") in paths
    assert len(paths) >= 40


@pytest.mark.parametrize(("model", "path", "is_list"), CASES)
def test_every_numeric_field_refuses_non_finite_numbers(
    model: type[BaseModel], path: tuple[str, ...], is_list: bool
) -> None:
    for spelling in SPELLINGS:
        value: object = [0, spelling] if is_list else spelling
        with pytest.raises(ValidationError) as refused:
            model.model_validate(_nest(path, value))
        located = [problem.location for problem in problems(refused.value)]
        assert any(location[: len(path)] == path for location in located), (spelling, located)


@pytest.mark.parametrize(
    "text",
    [
        '{"whisper_params": {"whisper_sampling_params": {"length_penalty": NaN}}}',
        '{"streaming_params": {"final_transcript_max_duration_s": Infinity}}',
        '{"streaming_params": {"partial_transcript_interval_s": 1e309}}',
        '{"streaming_vad_config": {"threshold": -Infinity}}',
        '{"whisper_params": {"whisper_sampling_params": {"sampling_temperatures": [0, NaN]}}}',
    ],
)
def test_stream_metadata_refuses_json_non_finite_literals(text: str) -> None:
    # The stream's first message is parsed by pydantic's JSON parser, which reads NaN,
    # Infinity and overflowing exponents as floats.
    with pytest.raises(ValidationError, match="finite number"):
        StreamMetadata.model_validate_json(text)


def test_vad_parameters_sent_as_json_refuse_non_finite_numbers() -> None:
    sent = ('{"threshold": NaN}', '{"max_speech_duration_s": Infinity}', '{"neg_threshold": 1e309}')
    for text in sent:
        with pytest.raises(ValidationError) as refused:
            TranscribeOptions.model_validate({"vad_parameters": text})
        (problem,) = problems(refused.value)
        assert problem.location[0] == "vad_parameters"
        assert problem.message == "Input should be a finite number"


def test_the_unset_vad_limit_stays_infinite() -> None:
    # "No limit" is the default, not a value a client sends.
    assert VadParameters().max_speech_duration_s == math.inf
    assert json.loads(VadParameters().model_dump_json())["max_speech_duration_s"] is None


def _allows_infinity(name: str) -> bool:
    metadata = Settings.model_fields[name].metadata
    return any(getattr(item, "allow_inf_nan", None) is True for item in metadata)


FLOAT_SETTINGS = [
    name for name, field in Settings.model_fields.items() if float in _members(field.annotation)
]


@pytest.mark.parametrize("name", FLOAT_SETTINGS)
def test_every_float_setting_refuses_non_finite_numbers(name: str) -> None:
    # A setting that says inf turns it off takes inf, and still refuses nan and -inf.
    refused_spellings = (
        ("nan", "-inf", math.nan, -math.inf) if _allows_infinity(name) else SPELLINGS
    )
    for spelling in refused_spellings:
        with pytest.raises(ValidationError) as refused:
            Settings(_env_file=None, **{name: spelling})  # type: ignore[arg-type]
        assert problems(refused.value)[0].location == (name,)


def test_only_the_queue_wait_takes_infinity() -> None:
    assert [name for name in FLOAT_SETTINGS if _allows_infinity(name)] == ["max_queue_wait_s"]
    assert Settings(_env_file=None, max_queue_wait_s="inf").max_queue_wait_s == math.inf

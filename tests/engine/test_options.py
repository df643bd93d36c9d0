"""Decoding options: ranges, defaults and the string spellings HTTP forms send."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from whisperd.engine.options import DEFAULT_TEMPERATURES, TranscribeOptions, VadParameters

RANGES = [
    ("beam_size", 1, 32),
    ("best_of", 1, 32),
    ("patience", 0.01, 10.0),
    ("length_penalty", -10.0, 10.0),
    ("repetition_penalty", 0.1, 5.0),
    ("no_repeat_ngram_size", 0, 20),
    ("prompt_reset_on_temperature", 0.0, 1.0),
    ("max_initial_timestamp", 0.0, 30.0),
    ("language_detection_segments", 1, 20),
    ("language_detection_threshold", 0.0, 1.0),
    ("max_new_tokens", 1, 448),
    ("chunk_length", 1, 30),
    ("no_speech_threshold", 0.0, 1.0),
]


@pytest.mark.parametrize(("name", "low", "high"), RANGES)
def test_range_bounds_are_accepted(name: str, low: float, high: float) -> None:
    assert getattr(TranscribeOptions.model_validate({name: low}), name) == low
    assert getattr(TranscribeOptions.model_validate({name: high}), name) == high


@pytest.mark.parametrize(("name", "low", "high"), RANGES)
def test_out_of_range_is_refused_naming_the_field(name: str, low: float, high: float) -> None:
    step = 1 if isinstance(low, int) else 0.01
    for bad in (low - step, high + step):
        with pytest.raises(ValidationError) as info:
            TranscribeOptions.model_validate({name: bad})
        assert info.value.errors()[0]["loc"] == (name,)


def test_patience_zero_is_refused() -> None:
    with pytest.raises(ValidationError):
        TranscribeOptions(patience=0.0)


def test_defaults_match_the_documented_ones() -> None:
    options = TranscribeOptions()
    assert options.beam_size == 5
    assert options.best_of == 5
    assert options.temperature == DEFAULT_TEMPERATURES
    assert options.compression_ratio_threshold == 2.4
    assert options.log_prob_threshold == -1.0
    assert options.no_speech_threshold == 0.6
    assert options.suppress_tokens == (-1,)
    assert options.clip_timestamps == (0.0,)
    assert options.vad_filter is True
    assert options.task == "transcribe"
    assert options.language is None


def test_form_strings_are_parsed() -> None:
    options = TranscribeOptions.model_validate(
        {
            "temperature": "0, 0.2,0.5",
            "suppress_tokens": "-1,50,60",
            "clip_timestamps": "0.5,12.3,15.0,30.0",
            "vad_parameters": '{"threshold": 0.3, "min_silence_duration_ms": 500}',
            "beam_size": "3",
            "word_timestamps": "true",
        }
    )
    assert options.temperature == (0.0, 0.2, 0.5)
    assert options.suppress_tokens == (-1, 50, 60)
    assert options.clip_timestamps == (0.5, 12.3, 15.0, 30.0)
    assert options.vad_parameters == VadParameters(threshold=0.3, min_silence_duration_ms=500)
    assert options.beam_size == 3
    assert options.word_timestamps is True


def test_single_temperature_number_becomes_a_ladder_of_one() -> None:
    assert TranscribeOptions.model_validate({"temperature": 0.4}).temperature == (0.4,)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", ""),
        ("temperature", "0,abc"),
        ("temperature", "1.5"),
        ("suppress_tokens", "-2"),
        ("clip_timestamps", "10,5"),
        ("clip_timestamps", "-1"),
        ("vad_parameters", "{not json"),
        ("vad_parameters", '{"threshold": 2}'),
        ("vad_parameters", '{"unknown": 1}'),
        ("task", "summarize"),
        ("language", "klingon"),
    ],
)
def test_malformed_values_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as info:
        TranscribeOptions.model_validate({field: value})
    assert info.value.errors()[0]["loc"][0] == field


def test_a_skipped_short_tail_does_not_combine_with_clips() -> None:
    with pytest.raises(ValidationError) as info:
        TranscribeOptions.model_validate({"clip_timestamps": "1,3", "min_tail_window_s": 1})
    assert info.value.errors()[0]["loc"][0] == "min_tail_window_s"
    assert TranscribeOptions(min_tail_window_s=1).min_tail_window_s == 1.0


def test_language_accepts_codes_names_and_auto() -> None:
    assert TranscribeOptions(language="EN").language == "en"
    assert TranscribeOptions(language="German").language == "de"
    assert TranscribeOptions(language="").language is None
    assert TranscribeOptions(language="auto").language is None


def test_unknown_option_is_refused() -> None:
    with pytest.raises(ValidationError):
        TranscribeOptions.model_validate({"beam_width": 3})


def test_options_are_immutable_and_vad_defaults_are_faster_whispers() -> None:
    options = TranscribeOptions()
    with pytest.raises(ValidationError):
        options.beam_size = 3  # type: ignore[misc]
    vad = VadParameters()
    assert vad.min_silence_duration_ms == 2000
    assert vad.speech_pad_ms == 400
    assert math.isinf(vad.max_speech_duration_s)


def test_every_option_is_documented() -> None:
    for name, field in TranscribeOptions.model_fields.items():
        assert field.description, name

"""The Baseten stream metadata: languages in any spelling, and the finals' sampling settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from whisperd.api.stream import stream_config
from whisperd.schemas.realtime_session import Transcription
from whisperd.schemas.stream import StreamMetadata
from whisperd.streaming.session import StreamConfig


@pytest.mark.parametrize(
    ("spelling", "code"), [("en-US", "en"), ("pt_BR", "pt"), ("zh-CN", "zh"), ("AUTO", "auto")]
)
def test_stream_languages_take_tags_and_locales(spelling: str, code: str) -> None:
    metadata = StreamMetadata.model_validate(
        {"whisper_params": {"audio_language": spelling, "language_options": ["de-DE", "fr_FR"]}}
    )
    assert metadata.whisper_params.audio_language == code
    assert metadata.whisper_params.language_options == ["de", "fr"]


@pytest.mark.parametrize("field", ["audio_language", "language_options"])
def test_an_unknown_language_is_refused_when_the_stream_starts(field: str) -> None:
    value = "klingon" if field == "audio_language" else ["en", "klingon"]
    with pytest.raises(ValidationError, match=field):
        StreamMetadata.model_validate({"whisper_params": {field: value}})


def test_realtime_languages_take_tags_and_empty_means_detect() -> None:
    assert Transcription.model_validate({"language": "en-GB"}).language == "en"
    assert Transcription.model_validate({"language": ""}).language is None
    with pytest.raises(ValidationError, match="language"):
        Transcription.model_validate({"language": "xx-nowhere"})


def test_finals_left_unset_decode_as_the_batch_routes() -> None:
    config = stream_config(StreamMetadata.model_validate({}))
    batch = StreamConfig()
    assert (config.beam_size, config.length_penalty, config.repetition_penalty) == (5, 1.0, 1.0)
    assert config.temperatures == batch.temperatures
    assert config.max_new_tokens is None


def test_finals_take_the_sampling_params_sent() -> None:
    sampling = {
        "beam_width": 2,
        "length_penalty": 0.0,
        "repetition_penalty": 1.2,
        "sampling_temperatures": [0.0, 0.5],
        "max_new_tokens": 64,
    }
    metadata = {"whisper_params": {"whisper_sampling_params": sampling}}
    config = stream_config(StreamMetadata.model_validate(metadata))
    assert config.beam_size == 2
    assert config.length_penalty == 0.0
    assert config.repetition_penalty == 1.2
    assert config.temperatures == (0.0, 0.5)
    assert config.max_new_tokens == 64


@pytest.mark.parametrize(
    "sampling",
    [{"beam_width": 0}, {"sampling_temperatures": []}, {"sampling_temperatures": [1.5]}],
)
def test_sampling_params_out_of_range_are_refused(sampling: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        StreamMetadata.model_validate({"whisper_params": {"whisper_sampling_params": sampling}})

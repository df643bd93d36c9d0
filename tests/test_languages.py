"""Languages as users write them: Whisper's codes and names, BCP 47 tags and locale names, on
every surface that takes a language (HTTP forms, stream metadata, Realtime sessions, the CLI)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from whisperd.api.realtime_config import RealtimeConfig
from whisperd.api.stream import stream_config
from whisperd.cli_options import options_from_flags
from whisperd.engine.options import TranscribeOptions
from whisperd.languages import LANGUAGES, UnknownLanguageError, normalize_language
from whisperd.schemas.native import NativeSettings
from whisperd.schemas.realtime_session import SessionChanges, Transcription
from whisperd.schemas.stream import StreamMetadata
from whisperd.service.streams import utterance_options
from whisperd.streaming.session import DecodeRequest


@pytest.mark.parametrize(
    ("value", "code"),
    [
        # BCP 47 tags and POSIX locale names: the language subtag counts.
        ("en-US", "en"),
        ("en_US", "en"),
        ("zh-CN", "zh"),
        ("zh-Hant-TW", "zh"),
        ("pt-BR", "pt"),
        ("es-419", "es"),
        ("sr-Latn-RS", "sr"),
        ("de_DE.UTF-8", "de"),
        ("ca_ES@valencia", "ca"),
        ("yue-HK", "yue"),
        ("haw-US", "haw"),
        # Any case, surrounding spaces.
        ("EN", "en"),
        (" en-us ", "en"),
        # Whisper's codes and names, as before.
        ("en", "en"),
        ("jw", "jw"),
        ("english", "en"),
        ("Haitian Creole", "ht"),
        ("mandarin", "zh"),
        # Three-letter, deprecated and individual-language codes.
        ("eng", "en"),
        ("ger", "de"),
        ("iw", "he"),
        ("cmn", "zh"),
        ("nb-NO", "no"),
        ("jv-ID", "jw"),
        ("tl-PH", "tl"),
        ("fil", "tl"),
    ],
)
def test_tags_locales_codes_and_names_map_to_whisper_codes(value: str, code: str) -> None:
    assert normalize_language(value) == code


def test_every_whisper_code_and_name_maps_to_itself() -> None:
    for code, name in LANGUAGES.items():
        assert normalize_language(code) == code
        assert normalize_language(name) == code


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("klingon", "is not a language"),
        ("en-", "is not a language"),
        ("C.UTF-8", "is not a language"),
        ("tlh", "Whisper does not know"),
        ("xx-YY", "Whisper does not know"),
    ],
)
def test_bad_tags_are_refused_with_the_accepted_spellings(value: str, words: str) -> None:
    with pytest.raises(UnknownLanguageError) as info:
        normalize_language(value)
    assert words in str(info.value)
    assert "'en-US'" in str(info.value)


def test_options_accept_tags_and_name_the_field_of_a_bad_one() -> None:
    assert TranscribeOptions(language="pt-BR").language == "pt"
    with pytest.raises(ValidationError) as info:
        TranscribeOptions(language="tlh")
    assert info.value.errors()[0]["loc"] == ("language",)


def test_native_settings_accept_tags() -> None:
    assert NativeSettings(language="zh-CN").options().language == "zh"


def test_cli_language_flag_accepts_tags() -> None:
    assert options_from_flags({"language": "en_US"}).language == "en"


def test_stream_metadata_languages_accept_tags() -> None:
    request = DecodeRequest(final=True, prefix=None)
    for whisper_params in (
        {"audio_language": "pt-BR"},
        {"audio_language": "auto", "language_options": ["pt_BR"]},
    ):
        metadata = StreamMetadata.model_validate({"whisper_params": whisper_params})
        options = utterance_options(
            stream_config(metadata), request, hotwords=None, final_context="window"
        )
        assert options.language == "pt"


def test_realtime_session_language_accepts_tags() -> None:
    config = RealtimeConfig()
    transcription = Transcription(model="whisper-1", language="en-US")
    config.apply(
        SessionChanges(
            audio_format=None,
            transcription=transcription,
            turn_detection=None,
            sets_turn_detection=False,
        )
    )
    options = utterance_options(
        config.stream(),
        DecodeRequest(final=True, prefix=None),
        hotwords=None,
        final_context="window",
    )
    assert options.language == "en"

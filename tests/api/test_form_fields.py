"""Request fields of the OpenAI and native HTTP APIs: every spelling of array fields, values
outside a field's set, OpenAI fields whisperd cannot honour, ignored fields, file parts without
a filename and language tags."""

from __future__ import annotations

import base64
import io
import json
import logging
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from whisperd.api.inputs import IGNORED_FIELDS_HEADER
from whisperd.errors import InvalidOptionError
from whisperd.schemas.form_fields import ArrayField, part_bytes, read_fields
from whisperd.schemas.openai import OpenAIFields, decoding_options

if TYPE_CHECKING:
    import httpx

    from conftest import RunningServer

DATA = Path(__file__).parents[1] / "data"
TRANSCRIPTIONS = "/v1/audio/transcriptions"
Fields = dict[str, Any] | list[tuple[str, str]]


def _wav(seconds: float = 1.0) -> bytes:
    rng = np.random.default_rng(0)
    samples = (rng.standard_normal(int(16000 * seconds)) * 0.05 * 32767).astype(np.int16)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


AUDIO = _wav()


def _post(server: RunningServer, fields: Fields, path: str = TRANSCRIPTIONS) -> httpx.Response:
    """POST ``fields`` (pairs keep repeated keys) with the test clip as the ``file`` part."""
    pairs = list(fields.items()) if isinstance(fields, dict) else fields
    with server.http() as http:
        return http.post(
            path,
            files=[("file", ("a.wav", AUDIO, "audio/wav")), *((k, (None, v)) for k, v in pairs)],
        )


def _error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    return error


# --------------------------------------------------------------------------------------------
# Array fields, in every spelling


def test_read_fields_gathers_every_spelling_of_an_array() -> None:
    granularities = ArrayField("timestamp_granularities")
    spellings: list[list[tuple[str, str]]] = [
        [("timestamp_granularities[]", "word"), ("timestamp_granularities[]", "segment")],
        [("timestamp_granularities", "word"), ("timestamp_granularities", "segment")],
        [("timestamp_granularities", "word,segment")],
        [("timestamp_granularities[]", " word , segment ")],
        [("timestamp_granularities", '["word", "segment"]')],
        [("timestamp_granularities[0]", "word"), ("timestamp_granularities[1]", "segment")],
        [("timestamp_granularities", "word"), ("timestamp_granularities[]", "segment,word")],
    ]
    for items in spellings:
        fields = read_fields(items, arrays=[granularities])
        assert fields == {"timestamp_granularities[]": ("word", "segment")}, items


def test_read_fields_keeps_commas_where_items_may_hold_them_and_objects_apart() -> None:
    references = ArrayField("known_speaker_references", comma_separated=False)
    fields = read_fields(
        [
            ("known_speaker_references[]", "data:audio/wav;base64,AAAA"),
            ("chunking_strategy[type]", "server_vad"),
            ("chunking_strategy[threshold]", "0.4"),
            ("foo[]", "1"),
            ("beam_size", "2"),
            ("beam_size", "3"),
        ],
        arrays=[references],
        objects=["chunking_strategy"],
    )
    assert fields == {
        "known_speaker_references[]": ("data:audio/wav;base64,AAAA",),
        "chunking_strategy": {"type": "server_vad", "threshold": "0.4"},
        "foo[]": "1",
        "beam_size": "3",
    }


def test_read_fields_keeps_repeats_of_items_paired_by_position() -> None:
    """Two known speakers may share a clip; a repeated name reaches the check that names
    must be distinct instead of vanishing."""
    clip = "data:audio/wav;base64,AAAA"
    fields = read_fields(
        [
            ("known_speaker_names[]", "ann"),
            ("known_speaker_names[]", "bob"),
            ("known_speaker_references[]", clip),
            ("known_speaker_references[]", clip),
            ("include[]", "logprobs"),
            ("include[]", "logprobs"),
        ],
        arrays=[
            ArrayField("known_speaker_names", paired=True),
            ArrayField("known_speaker_references", comma_separated=False, paired=True),
            ArrayField("include"),
        ],
    )
    assert fields == {
        "known_speaker_names[]": ("ann", "bob"),
        "known_speaker_references[]": (clip, clip),
        "include[]": ("logprobs",),
    }


@pytest.mark.parametrize(
    "items",
    [
        [("include", "[oops")],
        [("include", '[{"a": 1}]')],
        [("chunking_strategy", "auto"), ("chunking_strategy[type]", "server_vad")],
    ],
)
def test_read_fields_refuses_malformed_arrays_and_mixed_objects(
    items: list[tuple[str, str]],
) -> None:
    with pytest.raises(InvalidOptionError) as info:
        read_fields(items, arrays=[ArrayField("include")], objects=["chunking_strategy"])
    assert info.value.param in ("include[]", "chunking_strategy")


@pytest.mark.parametrize(
    "spelling",
    [
        [("timestamp_granularities[]", "word")],
        [("timestamp_granularities", "word")],
        [("timestamp_granularities", "word"), ("timestamp_granularities", "segment")],
        [("timestamp_granularities", "word,segment")],
        [("timestamp_granularities", '["word","segment"]')],
        [("timestamp_granularities[0]", "word"), ("timestamp_granularities[1]", "segment")],
    ],
)
def test_every_spelling_of_word_granularity_gives_words(
    fake_server: RunningServer, spelling: list[tuple[str, str]]
) -> None:
    response = _post(
        fake_server, [("model", "whisper-1"), ("response_format", "verbose_json"), *spelling]
    )
    assert response.status_code == 200, response.text
    assert response.json()["words"]
    assert IGNORED_FIELDS_HEADER not in response.headers


def test_the_sdk_spelling_of_granularities_and_both_arrays(fake_server: RunningServer) -> None:
    with (DATA / "speech.wav").open("rb") as audio:
        result = fake_server.client().audio.transcriptions.create(
            model="whisper-1",
            file=audio,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )
    assert result.words
    assert result.segments


# --------------------------------------------------------------------------------------------
# Values outside a field's set, and what whisperd cannot honour yet


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"timestamp_granularities": "sentence"}, "timestamp_granularities[]"),
        ({"timestamp_granularities[]": "word,sentence"}, "timestamp_granularities[]"),
        ({"timestamp_granularities": '["sentence"]'}, "timestamp_granularities[]"),
        ({"include[]": "nonsense"}, "include[]"),
        ({"include": "nonsense"}, "include[]"),
        ({"response_format": "docx"}, "response_format"),
        ({"stream": "maybe"}, "stream"),
        ({"chunking_strategy": "manual"}, "chunking_strategy"),
        ({"chunking_strategy": "{oops"}, "chunking_strategy"),
        ({"chunking_strategy[type]": "semantic_vad"}, "chunking_strategy"),
        ({"chunking_strategy[type]": "server_vad", "chunking_strategy[threshold]": "2"}, None),
        ({"chunking_strategy[type]": "server_vad", "chunking_strategy[speed]": "1"}, None),
    ],
)
def test_values_outside_a_fields_set_are_400(
    fake_server: RunningServer, fields: dict[str, str], param: str | None
) -> None:
    error = _error(_post(fake_server, {"model": "whisper-1", **fields}))
    assert error["param"] == (param or "chunking_strategy")
    assert error["code"] in ("invalid_value", "invalid_option")


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"known_speaker_names[]": "agent"}, "known_speaker_names[]"),
        (
            {"known_speaker_references[]": "data:audio/wav;base64,AAAA"},
            "known_speaker_references[]",
        ),
    ],
)
def test_known_speakers_without_diarization_are_400_saying_so(
    fake_server: RunningServer, fields: dict[str, str], param: str
) -> None:
    """More diarization refusals: tests/api/test_diarization_errors.py."""
    error = _error(_post(fake_server, {"model": "whisper-1", **fields}))
    assert error["param"] == param
    assert error["code"] == "invalid_option"
    assert "needs diarization" in error["message"]


@pytest.mark.parametrize(
    "fields",
    [{"include[]": "logprobs"}, {"include": "logprobs"}, {"include": '["logprobs"]'}],
)
def test_every_spelling_of_include_logprobs_is_honoured(
    fake_server: RunningServer, fields: dict[str, str]
) -> None:
    response = _post(fake_server, {"model": "whisper-1", **fields})
    assert response.status_code == 200, response.text
    assert list(response.json()) == ["text", "logprobs", "usage"]  # tests/api/test_logprobs.py
    assert IGNORED_FIELDS_HEADER not in response.headers  # has the real model's entries


@pytest.mark.parametrize(
    "fields",
    [
        {"chunking_strategy": "auto"},
        {"chunking_strategy": '{"type": "server_vad", "threshold": 0.4}'},
        {"chunking_strategy[type]": "server_vad", "chunking_strategy[silence_duration_ms]": "500"},
    ],
)
def test_chunking_strategy_is_honoured(fake_server: RunningServer, fields: dict[str, str]) -> None:
    response = _post(fake_server, {"model": "whisper-1", **fields})
    assert response.status_code == 200, response.text
    assert IGNORED_FIELDS_HEADER not in response.headers


def test_chunking_strategy_sets_the_vad() -> None:
    def options(**form: Any) -> Any:
        return decoding_options(OpenAIFields.model_validate(form), form, task="transcribe")

    vad = {"type": "server_vad", "prefix_padding_ms": "100", "silence_duration_ms": "500"}
    chosen = options(chunking_strategy=vad, vad_filter="false")
    assert chosen.vad_filter is False  # whisperd's own field, sent explicitly, wins
    assert chosen.vad_parameters is not None
    assert chosen.vad_parameters.speech_pad_ms == 100
    assert chosen.vad_parameters.min_silence_duration_ms == 500
    assert options(chunking_strategy="auto").vad_parameters is None
    assert options(chunking_strategy="auto").vad_filter is True


# --------------------------------------------------------------------------------------------
# Ignored fields: a response header and a log line


def test_unknown_fields_are_named_in_a_header_and_logged(
    fake_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="whisperd.api.inputs")
    response = _post(fake_server, {"model": "whisper-1", "foo": "bar", "suppress[]": "1"})
    assert response.status_code == 200, response.text
    assert response.headers[IGNORED_FIELDS_HEADER] == "foo, suppress[]"
    logged = [r.getMessage() for r in caplog.records if r.name == "whisperd.api.inputs"]
    assert any("ignored request fields: foo, suppress[]" in line for line in logged), logged


def test_known_fields_leave_no_header(fake_server: RunningServer) -> None:
    response = _post(
        fake_server,
        {
            "model": "whisper-1",
            "language": "en",
            "prompt": "x",
            "temperature": "0",
            "beam_size": "2",
        },
    )
    assert response.status_code == 200, response.text
    assert IGNORED_FIELDS_HEADER not in response.headers


def test_granularities_outside_verbose_json_are_reported_as_ignored(
    fake_server: RunningServer,
) -> None:
    response = _post(fake_server, {"model": "whisper-1", "timestamp_granularities": "word"})
    assert response.status_code == 200, response.text
    assert response.headers[IGNORED_FIELDS_HEADER] == "timestamp_granularities[]"
    assert set(response.json()) == {"text", "usage"}


def test_the_header_reaches_sdk_users_streams_and_translations(
    fake_server: RunningServer,
) -> None:
    with (DATA / "speech.wav").open("rb") as audio:
        raw = fake_server.client().audio.transcriptions.with_raw_response.create(
            model="whisper-1", file=audio, extra_body={"vad_filter_v2": "true"}
        )
    assert raw.headers[IGNORED_FIELDS_HEADER] == "vad_filter_v2"
    stream = _post(fake_server, {"model": "whisper-1", "stream": "true", "foo": "1"})
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers[IGNORED_FIELDS_HEADER] == "foo"
    translation = _post(fake_server, {"model": "whisper-1", "foo": "1"}, "/v1/audio/translations")
    assert translation.status_code == 200, translation.text
    assert translation.headers[IGNORED_FIELDS_HEADER] == "foo"


# --------------------------------------------------------------------------------------------
# File parts without a filename


def _multipart(parts: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart body of raw ``(Content-Disposition parameters, content)`` parts."""
    boundary = "whisperd-test-boundary"
    body = b"".join(
        f"--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\n\r\n".encode()
        + content
        + b"\r\n"
        for disposition, content in parts
    )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _post_raw(server: RunningServer, path: str, parts: list[tuple[str, bytes]]) -> httpx.Response:
    body, content_type = _multipart(parts)
    with server.http() as http:
        return http.post(path, content=body, headers={"content-type": content_type})


FILE_PARTS = [
    'name="{name}"',
    "name=\"{name}\"; filename*=UTF-8''r%C3%A9union.wav",
]
"""A file part with no filename, and one with only RFC 5987's ``filename*``."""


@pytest.mark.parametrize("disposition", FILE_PARTS)
@pytest.mark.parametrize("clip", ["speech.wav", "speech.mp3", "40 s"])
def test_a_file_part_without_a_filename_is_the_file(
    fake_server: RunningServer, fake_transcript, disposition: str, clip: str
) -> None:
    audio = _wav(40.0) if clip == "40 s" else (DATA / clip).read_bytes()
    response = _post_raw(
        fake_server,
        TRANSCRIPTIONS,
        [(disposition.format(name="file"), audio), ('name="model"', b"whisper-1")],
    )
    assert response.status_code == 200, response.text
    assert response.json()["text"] == fake_transcript(audio).text


def test_a_text_file_part_is_refused_saying_what_is_wrong(fake_server: RunningServer) -> None:
    response = _post_raw(fake_server, TRANSCRIPTIONS, [('name="file"', b"my_audio.wav")])
    error = _error(response)
    assert error["param"] == "file"
    assert "'my_audio.wav', not audio" in error["message"]


def test_part_bytes_recovers_what_the_form_parser_decoded() -> None:
    from starlette.formparsers import _user_safe_decode

    rng = np.random.default_rng(1)
    for raw in (
        rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        AUDIO,
        "héllo wörld — ok".encode(),
        bytes(range(128)),
    ):
        assert part_bytes(_user_safe_decode(raw, "utf-8")) == raw


@pytest.mark.parametrize("disposition", FILE_PARTS)
@pytest.mark.parametrize("seconds", [None, 40.0])
def test_a_native_audio_part_without_a_filename_is_the_file(
    native_server: RunningServer, disposition: str, seconds: float | None
) -> None:
    # 40 s of WAV is over the form parser's default 1 MiB limit on a text part.
    audio = (DATA / "speech.mp3").read_bytes() if seconds is None else _wav(seconds)
    response = _post_raw(native_server, "/transcribe", [(disposition.format(name="audio"), audio)])
    named = _post_raw(native_server, "/transcribe", [('name="audio"; filename="a.mp3"', audio)])
    assert response.status_code == 200, response.text
    assert response.json()["text"] == named.json()["text"]
    assert response.json()["duration"] == named.json()["duration"]


def test_a_native_text_audio_part_is_refused_naming_the_field(
    native_server: RunningServer,
) -> None:
    response = _post_raw(native_server, "/transcribe", [('name="audio"', b"meeting.mp3")])
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "audio"]
    assert "holds text" in detail["msg"]


# --------------------------------------------------------------------------------------------
# Language tags


@pytest.mark.parametrize(
    ("tag", "name"),
    [
        ("en-US", "english"),
        ("en_US", "english"),
        ("zh-CN", "chinese"),
        ("pt-BR", "portuguese"),
        ("EN", "english"),
        ("english", "english"),
    ],
)
def test_openai_language_tags(fake_server: RunningServer, tag: str, name: str) -> None:
    response = _post(
        fake_server, {"model": "whisper-1", "language": tag, "response_format": "verbose_json"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["language"] == name


def test_openai_bad_language_tag_is_400(fake_server: RunningServer) -> None:
    error = _error(_post(fake_server, {"model": "whisper-1", "language": "xx-YY"}))
    assert error["param"] == "language"
    assert "en-US" in error["message"]


@pytest.mark.parametrize(
    ("tag", "code"), [("en-US", "en"), ("en_US", "en"), ("zh-CN", "zh"), ("pt-BR", "pt")]
)
def test_native_language_tags(native_server: RunningServer, tag: str, code: str) -> None:
    response = _post_raw(
        native_server,
        "/transcribe",
        [('name="audio"; filename="a.wav"', AUDIO), ('name="language"', tag.encode())],
    )
    assert response.status_code == 200, response.text
    assert response.json()["language"] == code


def test_native_bad_language_tag_is_400_naming_the_field(native_server: RunningServer) -> None:
    response = _post_raw(
        native_server,
        "/transcribe",
        [('name="audio"; filename="a.wav"', AUDIO), ('name="language"', b"klingon")],
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Invalid value for 'language': ")


def test_native_unknown_fields_are_named_in_a_header(
    native_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="whisperd.api.inputs")
    form = _post_raw(
        native_server,
        "/transcribe",
        [('name="audio"; filename="a.wav"', AUDIO), ('name="temprature"', b"0")],
    )
    assert form.status_code == 200, form.text
    assert form.headers[IGNORED_FIELDS_HEADER] == "temprature"
    with native_server.http() as http:
        raw = http.post(
            "/transcribe/raw",
            content=json.dumps({"audio_data": base64.b64encode(AUDIO).decode(), "foo": 1}),
            headers={"content-type": "application/json"},
        )
    assert raw.status_code == 200, raw.text
    assert raw.headers[IGNORED_FIELDS_HEADER] == "foo"
    assert any("temprature" in r.getMessage() for r in caplog.records)

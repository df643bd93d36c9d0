"""Client messages of both stream protocols, parsed without a server."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from whisperd.schemas.client_messages import Rejection, field_path, read_message
from whisperd.schemas.realtime_client import (
    ClientMessage,
    InputAudioBufferAppend,
    InputAudioBufferClear,
    InputAudioBufferCommit,
    SessionUpdate,
    TranscriptionSessionUpdate,
)
from whisperd.schemas.stream_messages import (
    ControlMessage,
    EndAudio,
    Finalize,
    HealthCheckRequest,
    KeepAlive,
)


def realtime(event: Any) -> Any:
    return read_message(ClientMessage, json.dumps(event))


def ga_update(audio_input: dict[str, Any], **event: Any) -> dict[str, Any]:
    session = {"type": "transcription", "audio": {"input": audio_input}}
    return {"type": "session.update", "session": session, **event}


def test_ga_session_update() -> None:
    event = realtime(
        ga_update(
            {
                "format": {"type": "audio/pcmu"},
                "transcription": {"model": "whisper-1", "language": "de", "prompt": "Kiel"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 200},
                "noise_reduction": {"type": "near_field"},
            },
            event_id="e1",
        )
    )
    assert isinstance(event, SessionUpdate)
    assert event.event_id == "e1"
    changes = event.session.changes()
    assert changes.audio_format == "g711_ulaw"
    assert changes.transcription is not None
    assert changes.transcription.language == "de"
    assert changes.turn_detection is not None
    assert changes.turn_detection.silence_duration_ms == 200
    assert changes.turn_detection.threshold == 0.5
    assert changes.sets_turn_detection


def test_update_leaves_out_or_clears_turn_detection() -> None:
    absent = realtime(ga_update({"format": {"type": "audio/pcm", "rate": 24000}}))
    cleared = realtime(ga_update({"turn_detection": None}))
    empty = realtime({"type": "session.update", "session": {}})
    assert isinstance(absent, SessionUpdate)
    assert isinstance(cleared, SessionUpdate)
    assert isinstance(empty, SessionUpdate)
    assert not absent.session.changes().sets_turn_detection
    assert absent.session.changes().audio_format == "pcm16"
    assert cleared.session.changes().sets_turn_detection
    assert cleared.session.changes().turn_detection is None
    assert empty.session.changes().audio_format is None


def test_beta_session_update() -> None:
    event = realtime(
        {
            "type": "transcription_session.update",
            "session": {
                "input_audio_format": "g711_ulaw",
                "input_audio_transcription": {"model": "gpt-4o-transcribe"},
                "turn_detection": None,
                "input_audio_noise_reduction": {"type": "far_field"},
            },
        }
    )
    assert isinstance(event, TranscriptionSessionUpdate)
    changes = event.session.changes()
    assert changes.audio_format == "g711_ulaw"
    assert changes.sets_turn_detection
    assert changes.turn_detection is None


def test_audio_buffer_events() -> None:
    audio = base64.b64encode(b"\x01\x02\x03\x04").decode()
    append = realtime({"type": "input_audio_buffer.append", "audio": audio, "event_id": "a"})
    assert isinstance(append, InputAudioBufferAppend)
    assert append.audio == b"\x01\x02\x03\x04"
    assert isinstance(realtime({"type": "input_audio_buffer.commit"}), InputAudioBufferCommit)
    assert isinstance(realtime({"type": "input_audio_buffer.clear"}), InputAudioBufferClear)


def test_unknown_fields_are_ignored() -> None:
    event = realtime({"type": "input_audio_buffer.commit", "future": {"x": 1}})
    assert isinstance(event, InputAudioBufferCommit)


@pytest.mark.parametrize(
    ("event", "param", "code"),
    [
        (
            ga_update({"turn_detection": {"type": "server_vad", "threshold": "abc"}}),
            "session.audio.input.turn_detection.threshold",
            "invalid_type",
        ),
        (
            ga_update({"turn_detection": "server_vad"}),
            "session.audio.input.turn_detection",
            "invalid_type",
        ),
        (ga_update({"format": "audio/pcm"}), "session.audio.input.format", "invalid_type"),
        (
            ga_update({"format": {"type": "audio/pcm", "rate": 16000}}),
            "session.audio.input.format.rate",
            "invalid_value",
        ),
        (
            ga_update({"format": {"type": "audio/opus"}}),
            "session.audio.input.format.type",
            "invalid_value",
        ),
        (
            ga_update({"turn_detection": {"threshold": 1.5}}),
            "session.audio.input.turn_detection.threshold",
            "invalid_value",
        ),
        ({"type": "session.update"}, "session", "missing_required_parameter"),
        ({"type": "session.update", "session": []}, "session", "invalid_type"),
        (
            {"type": "session.update", "session": {"type": "realtime"}},
            "session.type",
            "invalid_value",
        ),
        (
            {"type": "transcription_session.update", "session": {"input_audio_format": "opus"}},
            "session.input_audio_format",
            "invalid_value",
        ),
        (
            {
                "type": "session.update",
                "session": {"include": ["item.input_audio_transcription.logprobs", 5]},
            },
            "session.include[1]",
            "invalid_value",
        ),
        ({"type": "input_audio_buffer.append", "audio": "@@"}, "audio", "invalid_value"),
        ({"type": "input_audio_buffer.append"}, "audio", "missing_required_parameter"),
        ({"type": "input_audio_buffer.append", "audio": 5}, "audio", "invalid_type"),
    ],
)
def test_malformed_fields_name_their_path(event: dict[str, Any], param: str, code: str) -> None:
    rejection = realtime({**event, "event_id": "client-7"})
    assert isinstance(rejection, Rejection)
    assert rejection.reason == "invalid_field"
    assert (rejection.param, rejection.code) == (param, code)
    assert rejection.event_id == "client-7"
    assert f"'{param}'" in rejection.message


def test_base64_error_says_so() -> None:
    rejection = realtime({"type": "input_audio_buffer.append", "audio": "@@"})
    assert isinstance(rejection, Rejection)
    assert rejection.message == "Invalid value for 'audio': audio must be base64."


@pytest.mark.parametrize(
    ("text", "reason", "code", "event_type"),
    [
        ("{not json", "not_json", "invalid_json", None),
        ("[" * 100_000, "not_json", "invalid_json", None),
        ("[1, 2]", "not_an_object", "invalid_event", None),
        ('"session.update"', "not_an_object", "invalid_event", None),
        (
            '{"type": "bogus.event", "event_id": "e2"}',
            "unknown_type",
            "invalid_event",
            "bogus.event",
        ),
        ('{"event_id": "e3"}', "unknown_type", "invalid_event", None),
        ('{"type": 5}', "unknown_type", "invalid_event", 5),
    ],
)
def test_messages_that_are_no_event(text: str, reason: str, code: str, event_type: Any) -> None:
    rejection = read_message(ClientMessage, text)
    assert isinstance(rejection, Rejection)
    assert (rejection.reason, rejection.code, rejection.event_type) == (reason, code, event_type)
    assert rejection.param is None


def test_unknown_type_keeps_its_event_id() -> None:
    rejection = read_message(ClientMessage, '{"type": "bogus.event", "event_id": "e2"}')
    assert isinstance(rejection, Rejection)
    assert rejection.event_id == "e2"
    assert rejection.message == "Unsupported event type 'bogus.event'."


def test_an_event_id_that_is_no_string_is_not_echoed() -> None:
    rejection = read_message(ClientMessage, '{"type": "input_audio_buffer.commit", "event_id": 5}')
    assert isinstance(rejection, Rejection)
    assert rejection.param == "event_id"
    assert rejection.event_id is None


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ({"type": "end_audio"}, EndAudio),
        ({"type": "finalize"}, Finalize),
        ({"type": "keepalive"}, KeepAlive),
        (
            {"type": "health_check", "body": {"get_partial_interval": True}, "timestamp": 1.5},
            HealthCheckRequest,
        ),
        ({"type": "end_audio", "terminate_session": True}, EndAudio),
    ],
)
def test_baseten_control_messages(message: dict[str, Any], kind: type) -> None:
    assert isinstance(read_message(ControlMessage, json.dumps(message)), kind)


@pytest.mark.parametrize(
    ("message", "reason", "param"),
    [
        ({"type": "dance"}, "unknown_type", None),
        ({"terminate_session": True}, "unknown_type", None),
        ({"type": "health_check", "body": "yes"}, "invalid_field", "body"),
        ({"type": "health_check", "timestamp": "noon"}, "invalid_field", "timestamp"),
    ],
)
def test_baseten_refused_control_messages(
    message: dict[str, Any], reason: str, param: str | None
) -> None:
    rejection = read_message(ControlMessage, json.dumps(message))
    assert isinstance(rejection, Rejection)
    assert (rejection.reason, rejection.param) == (reason, param)


def test_field_path() -> None:
    assert field_path(("session", "audio", "input")) == "session.audio.input"
    assert field_path(("segments", 2, "words", 0, "start")) == "segments[2].words[0].start"
    assert field_path((0, "x")) == "[0].x"
    assert field_path(()) == ""

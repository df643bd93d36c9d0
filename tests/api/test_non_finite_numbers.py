"""Non-finite numbers (inf, -inf, nan, 1e309, alone or in lists) are refused on every surface,
naming the field, in the surface's own envelope: OpenAI's 400, the native API's 422, the
Baseten stream's error message and close 1007, the Realtime ``error`` event, and a usage error
of the command line. None of them reaches the decoder (``clip_timestamps=inf`` used to be an
``OverflowError`` and a 500)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import wave
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import websockets
from click.testing import CliRunner

from waiting import DEADLINE_S
from whisperd.cli import _transcribe_command, cli

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import RunningServer


def wav_bytes() -> bytes:
    """One second of a 440 Hz tone as a 16 kHz WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        tone = 3000 * np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000)
        out.writeframes(tone.astype("<i2").tobytes())
    return buffer.getvalue()


FORM_CASES = [
    ("clip_timestamps", "inf"),
    ("clip_timestamps", "1e309"),
    ("clip_timestamps", "5,inf"),
    ("clip_timestamps", "-inf"),
    ("clip_timestamps", "nan"),
    ("temperature", "0,nan"),
    ("temperature", "inf"),
    ("patience", "inf"),
    ("length_penalty", "-1e309"),
    ("compression_ratio_threshold", "nan"),
    ("log_prob_threshold", "-inf"),
    ("no_speech_threshold", "nan"),
    ("hallucination_silence_threshold", "inf"),
    ("min_tail_window_s", "nan"),
    ("max_initial_timestamp", "nan"),
    ("vad_parameters", '{"threshold": NaN}'),
    ("vad_parameters", '{"max_speech_duration_s": Infinity}'),
    ("vad_parameters", '{"min_silence_duration_ms": 1e309}'),
    ("chunking_strategy", '{"type": "server_vad", "threshold": NaN}'),
    ("chunking_strategy[threshold]", "nan"),
]


@pytest.mark.parametrize("route", ["transcriptions", "translations"])
@pytest.mark.parametrize(("field", "value"), FORM_CASES)
def test_openai_routes_answer_400_naming_the_field(
    fake_server: RunningServer, route: str, field: str, value: str
) -> None:
    data = {field: value}
    if field.startswith("chunking_strategy["):
        data["chunking_strategy[type]"] = "server_vad"
    with fake_server.http() as http:
        response = http.post(
            f"/v1/audio/{route}", files={"file": ("tone.wav", wav_bytes())}, data=data
        )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    name = field.partition("[")[0]
    assert error["param"] == name
    assert error["code"] == "invalid_value"
    assert error["type"] == "invalid_request_error"
    assert f"Invalid value for '{name}" in error["message"]
    assert "finite number" in error["message"] or "valid number" in error["message"]


def test_the_same_connection_serves_the_next_request(fake_server: RunningServer) -> None:
    with fake_server.http() as http:
        refused = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("tone.wav", wav_bytes())},
            data={"clip_timestamps": "inf"},
        )
        served = http.post("/v1/audio/transcriptions", files={"file": ("tone.wav", wav_bytes())})
    assert refused.status_code == 400
    assert served.status_code == 200
    assert isinstance(served.json()["text"], str)


@pytest.mark.parametrize(("field", "value"), [("beam_size", "inf"), ("batch_size", "nan")])
def test_the_native_form_answers_422_naming_the_field(
    fake_server: RunningServer, field: str, value: str
) -> None:
    with fake_server.http() as http:
        response = http.post(
            "/transcribe", files={"audio": ("tone.wav", wav_bytes())}, data={field: value}
        )
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert problem["loc"][-1] == field


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e309"])
def test_the_native_json_route_answers_422_naming_the_field(
    fake_server: RunningServer, literal: str
) -> None:
    audio = base64.b64encode(wav_bytes()).decode()
    body = f'{{"audio_data": "{audio}", "beam_size": {literal}}}'
    with fake_server.http() as http:
        response = http.post(
            "/transcribe/raw", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert problem["loc"][-1] == "beam_size"


# --------------------------------------------------------------------------------------------
# Streams


BASETEN_CASES = [
    ('{"whisper_params": {"whisper_sampling_params": {"length_penalty": NaN}}}', "length_penalty"),
    (
        '{"whisper_params": {"whisper_sampling_params": {"sampling_temperatures": [0, 1e309]}}}',
        "sampling_temperatures[1]",
    ),
    ('{"streaming_params": {"final_transcript_max_duration_s": Infinity}}', "final_transcript"),
    ('{"streaming_params": {"partial_transcript_interval_s": NaN}}', "partial_transcript"),
    ('{"streaming_vad_config": {"threshold": -Infinity}}', "streaming_vad_config.threshold"),
]


@pytest.mark.parametrize(("metadata", "field"), BASETEN_CASES)
def test_baseten_metadata_is_refused_with_1007_naming_the_field(
    fake_server: RunningServer, metadata: str, field: str
) -> None:
    target = fake_server.url.replace("http://", "ws://") + "/v1/stream"

    async def scenario() -> tuple[dict[str, Any], int | None]:
        async with websockets.connect(target) as ws:
            await ws.send(metadata)
            error = json.loads(await ws.recv())
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            return error, closed.value.rcvd.code if closed.value.rcvd else None

    error, code = asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S))
    assert code == 1007
    assert error["type"] == "error"
    assert field in error["body"]["error"]
    assert "finite number" in error["body"]["error"]


REALTIME_CASES = [
    (
        {
            "type": "session.update",
            "session": {
                "type": "transcription",
                "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": "NaN"}}},
            },
        },
        "session.audio.input.turn_detection.threshold",
    ),
    (
        {
            "type": "transcription_session.update",
            "session": {"turn_detection": {"type": "server_vad", "threshold": "Infinity"}},
        },
        "session.turn_detection.threshold",
    ),
]


@pytest.mark.parametrize(("update", "param"), REALTIME_CASES)
def test_realtime_updates_get_an_error_event_naming_the_field(
    fake_server: RunningServer, update: dict[str, Any], param: str
) -> None:
    target = fake_server.url.replace("http://", "ws://") + "/v1/realtime?intent=transcription"
    # JSON's non-finite literals, as a client's float('nan') serialises by default.
    text = json.dumps(update).replace('"NaN"', "NaN").replace('"Infinity"', "Infinity")

    async def scenario() -> list[dict[str, Any]]:
        async with websockets.connect(target) as ws:
            created = json.loads(await ws.recv())
            await ws.send(text)
            error = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
            after = json.loads(await ws.recv())
            return [created, error, after]

    created, error, after = asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S))
    assert created["type"].endswith("session.created")
    assert error["type"] == "error"
    assert error["error"]["param"] == param
    assert error["error"]["code"] == "invalid_value"
    assert "finite number" in error["error"]["message"]
    assert after["type"] == "input_audio_buffer.cleared"  # the session goes on


# --------------------------------------------------------------------------------------------
# The command line


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--patience", "inf"], "--patience"),
        (["--length-penalty", "1e309"], "--length-penalty"),
        (["--clip-timestamps", "5,inf"], "--clip-timestamps[1]"),
        (["--temperature", "0,nan"], "--temperature[1]"),
        (["--vad-parameters", '{"threshold": NaN}'], "--vad-parameters.threshold"),
    ],
)
def test_transcribe_flags_are_usage_errors(tmp_path: Path, args: list[str], flag: str) -> None:
    audio = tmp_path / "tone.wav"
    audio.write_bytes(wav_bytes())
    cli.add_command(_transcribe_command())
    result = CliRunner().invoke(cli, ["transcribe", str(audio), *args])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{flag}'" in result.output
    assert "finite number" in result.output


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e309"])
def test_serve_flags_are_usage_errors(value: str) -> None:
    result = CliRunner().invoke(cli, ["serve", "--max-upload-mb", value])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '--max-upload-mb': '{value}' is not a finite number." in (
        result.output
    )

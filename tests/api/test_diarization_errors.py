"""Bad diarization requests get a 400 in OpenAI's envelope naming the field at fault; a server
without the speaker model says how to install it. On the scripted model (no real speech
needed: every refusal comes before decoding)."""

from __future__ import annotations

import base64
import io
import sys
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from whisperd.engine.base import SAMPLE_RATE

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import RunningServer

SPEECH = Path(__file__).parents[1] / "data" / "speech.wav"
NAMES = "known_speaker_names[]"
REFERENCES = "known_speaker_references[]"


def tone_url(seconds: float) -> str:
    """A data URL of a WAV holding ``seconds`` of a quiet tone."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    pcm = (np.sin(2 * np.pi * 220 * t) * 8000).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())
    return "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode()


def refused(server: RunningServer, data: dict[str, Any]) -> dict[str, Any]:
    with server.http() as http:
        response = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("speech.wav", SPEECH.read_bytes())},
            data=data,
        )
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    return error


NOT_AUDIO = "data:audio/wav;base64," + base64.b64encode(b"hello, not audio at all" * 20).decode()


@pytest.mark.parametrize(
    ("data", "param", "says"),
    [
        ({"diarize": "true", NAMES: "a", REFERENCES: NOT_AUDIO}, REFERENCES, "not usable audio"),
        ({"diarize": "true", NAMES: "a", REFERENCES: tone_url(1.0)}, REFERENCES, "2 to 10 s"),
        ({"diarize": "true", NAMES: "a", REFERENCES: tone_url(11.0)}, REFERENCES, "2 to 10 s"),
        ({"diarize": "true", NAMES: "a", REFERENCES: "https://x/a.wav"}, REFERENCES, "data URL"),
        (
            {"diarize": "true", NAMES: "a", REFERENCES: "data:audio/wav;base64,@@"},
            REFERENCES,
            "base64",
        ),
        ({"diarize": "true", NAMES: ["a", "b"], REFERENCES: tone_url(3.0)}, REFERENCES, "pair up"),
        (
            {"diarize": "true", NAMES: list("abcde"), REFERENCES: [tone_url(3.0)] * 5},
            NAMES,
            "At most 4",
        ),
        ({NAMES: "agent"}, NAMES, "needs diarization"),
        ({REFERENCES: tone_url(3.0)}, REFERENCES, "needs diarization"),
        ({"num_speakers": "2"}, "num_speakers", "needs diarization by voice"),
        ({"max_speakers": "2"}, "max_speakers", "needs diarization by voice"),
        (
            {"diarize": "true", "num_speakers": "2", "max_speakers": "3"},
            "num_speakers",
            "not both",
        ),
        (
            {"diarize": "true", "min_speakers": "3", "max_speakers": "2"},
            "min_speakers",
            "min_speakers",
        ),
        ({"multichannel": "true", NAMES: "a", REFERENCES: tone_url(3.0)}, REFERENCES, "channels"),
        ({"multichannel": "true", "num_speakers": "2"}, "num_speakers", "each channel is one"),
        ({"multichannel": "true", "max_speakers": "3"}, "max_speakers", "each channel is one"),
        ({"multichannel": "true", NAMES: ["a", "b"]}, NAMES, "recording of 1 channel:"),
        (
            {"diarize": "true", NAMES: ["a", "a"], REFERENCES: [tone_url(3.0)] * 2},
            NAMES,
            "distinct",
        ),
    ],
)
def test_bad_diarization_fields_are_400_naming_the_field(
    server: RunningServer, data: dict[str, Any], param: str, says: str
) -> None:
    error = refused(server, data)
    assert error["param"] == param
    assert says in error["message"]


@pytest.mark.parametrize("value", ["0", "21", "two"])
def test_speaker_counts_out_of_range_are_400(server: RunningServer, value: str) -> None:
    error = refused(server, {"diarize": "true", "num_speakers": value})
    assert error["param"] == "num_speakers"


def test_without_the_speaker_model_diarize_says_how_to_install_it(
    serve: Callable[..., Any],
    settings_for: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "resemblyzer", None)  # as if it were not installed
    with serve(settings_for()) as server:
        for data in (
            {"diarize": "true"},
            {"model": "gpt-4o-transcribe-diarize"},
            {"response_format": "diarized_json"},
        ):
            error = refused(server, data)
            assert error["param"] == "diarize"
            assert error["code"] == "diarization_unavailable"
            assert "pip install 'whisperd[diarize]'" in error["message"]
        # Channels need no model.
        with server.http() as http:
            response = http.post(
                "/v1/audio/transcriptions",
                files={"file": ("speech.wav", SPEECH.read_bytes())},
                data={"multichannel": "true", "response_format": "diarized_json"},
            )
        assert response.status_code == 200, response.text
        assert {s["speaker"] for s in response.json()["segments"]} == {"A"}

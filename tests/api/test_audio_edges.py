"""Edges of real input through both HTTP APIs: too short, silence, times past the end.

Too-short audio is refused as OpenAI refuses it; digital silence is a 200 with empty text in
every format; and on the real tiny.en no timestamp of a short clip lies past its end, in any
response format of either API.
"""

from __future__ import annotations

import base64
import io
import json
import re
import wave
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import openai
import pytest

from whisperd.testing.speech import espeak_available, speak

if TYPE_CHECKING:
    from conftest import RunningServer

DATA = Path(__file__).parents[1] / "data"
TOO_SHORT = "Audio file is too short. Minimum audio length is 0.1 seconds."


def _wav(samples: np.ndarray, rate: int = 16_000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def _blip(seconds: float) -> bytes:
    """A tone of ``seconds``."""
    return _wav(0.5 * np.sin(np.arange(round(16_000 * seconds)) / 3))


# ---------------------------------------------------------------------------------------------
# Too short


def test_openai_refuses_audio_under_a_tenth_of_a_second_as_openai_does(
    fake_server: RunningServer,
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        fake_server.client().audio.transcriptions.create(
            model="whisper-1", file=("blip.wav", _blip(0.05))
        )
    assert info.value.status_code == 400
    assert info.value.body == {
        "message": TOO_SHORT,
        "type": "invalid_request_error",
        "param": "file",
        "code": "audio_too_short",
    }


def test_openai_accepts_a_tenth_of_a_second(fake_server: RunningServer) -> None:
    text = fake_server.client().audio.transcriptions.create(
        model="whisper-1", file=("blip.wav", _blip(0.1)), response_format="text"
    )
    assert isinstance(text, str)


def test_native_refuses_audio_under_a_tenth_of_a_second_with_its_detail(
    native_server: RunningServer,
) -> None:
    with native_server.http() as http:
        response = http.post("/transcribe", files={"audio": ("blip.wav", _blip(0.05))})
        raw = http.post(
            "/transcribe/raw",
            json={
                "audio_data": base64.b64encode(b"\x00\x10" * 800).decode(),
                "audio_format": "pcm",
                "dtype": "int16",
            },
        )
    assert response.status_code == 400
    assert response.json() == {"detail": f"Failed to process audio: {TOO_SHORT}"}
    assert raw.status_code == 400
    assert raw.json() == {"detail": f"Failed to process audio: {TOO_SHORT}"}


# ---------------------------------------------------------------------------------------------
# Silence


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [("text", ""), ("srt", ""), ("vtt", "WEBVTT\n\n")],
)
def test_openai_answers_silence_with_empty_text_in_text_formats(
    fake_server: RunningServer, fmt: str, expected: str
) -> None:
    with fake_server.http() as http:
        response = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("silence.wav", (DATA / "digital_silence.wav").read_bytes())},
            data={"model": "whisper-1", "response_format": fmt},
        )
    assert response.status_code == 200
    assert response.text.strip() == expected.strip()


def test_openai_answers_silence_with_empty_text_and_its_duration_in_json(
    fake_server: RunningServer,
) -> None:
    client = fake_server.client()
    with (DATA / "digital_silence.wav").open("rb") as audio:
        plain = client.audio.transcriptions.create(model="whisper-1", file=audio)
    with (DATA / "digital_silence.wav").open("rb") as audio:
        verbose = client.audio.transcriptions.create(
            model="whisper-1",
            file=audio,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )
    with fake_server.http() as http:
        translated = http.post(
            "/v1/audio/translations",
            files={"file": ("silence.wav", (DATA / "digital_silence.wav").read_bytes())},
            data={"model": "whisper-1"},
        )
    assert plain.text == ""
    assert (verbose.text, verbose.duration) == ("", 2.0)
    assert verbose.segments == []
    assert verbose.words == []
    assert translated.status_code == 200
    assert translated.json()["text"] == ""


def test_native_answers_silence_with_empty_text_and_its_duration(
    native_server: RunningServer,
) -> None:
    with native_server.http() as http:
        response = http.post(
            "/transcribe",
            files={"audio": ("silence.wav", (DATA / "digital_silence.wav").read_bytes())},
            data={"include_timestamps": "true"},
        )
    assert response.status_code == 200
    body = response.json()
    assert (body["text"], body["segments"], body["duration"]) == ("", [], 2.0)


# ---------------------------------------------------------------------------------------------
# Times within the audio, on the real model


def _clock(text: str) -> float:
    hours, minutes, seconds = text.replace(",", ".").split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
def test_no_time_of_any_response_is_past_the_end_of_a_short_clip(
    real_server: RunningServer,
) -> None:
    spoken = speak("Thank you very much.")  # Whisper ends it at <|2.00|>
    data, end = spoken.wav_bytes(), spoken.duration + 0.0005  # times are in milliseconds
    assert spoken.duration < 2.0
    cue = re.compile(r"(\d\d:\d\d:\d\d[.,]\d{3}) --> (\d\d:\d\d:\d\d[.,]\d{3})")
    times: dict[str, list[float]] = {}
    with real_server.http() as http:
        for fmt in ("srt", "vtt"):
            form = {"model": "whisper-1", "response_format": fmt, "temperature": "0"}
            text = http.post(
                "/v1/audio/transcriptions", files={"file": ("a.wav", data)}, data=form
            ).text
            times[fmt] = [_clock(t) for pair in cue.findall(text) for t in pair]
        verbose = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("a.wav", data)},
            data={"model": "whisper-1", "response_format": "verbose_json", "temperature": "0"},
        ).json()
        times["verbose_json"] = [s["end"] for s in verbose["segments"]]
        for batch_size in ("1", "8"):
            native = http.post(
                "/transcribe",
                files={"audio": ("a.wav", data)},
                data={"include_timestamps": "true", "batch_size": batch_size},
            ).json()
            times[f"native batch {batch_size}"] = [s["end"] for s in native["segments"]]
    assert all(times.values()), times
    assert all(0 <= t <= end for values in times.values() for t in values), (end, times)
    assert json.dumps(verbose["duration"]) == json.dumps(spoken.duration)

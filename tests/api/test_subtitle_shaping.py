"""Subtitle shaping form fields on /v1/audio/transcriptions: real speech, spellings, bad values.

The real Whisper tiny.en hears espeak-ng speech, so the cues are cut at real word timings; the
scripted model serves the checks of the form fields, which never reach the model when bad.
"""

from __future__ import annotations

import io
import re
import wave
from typing import TYPE_CHECKING, Any

import numpy as np
import openai
import pytest

from whisperd.api.inputs import IGNORED_FIELDS_HEADER
from whisperd.testing.speech import espeak_available, speak

if TYPE_CHECKING:
    from conftest import RunningServer
    from whisperd.testing.speech import SpokenText

TEXT = (
    "What time does the train leave for the city? Please close the window before you go to "
    "bed. The children played in the garden until the sun went down."
)

_TIMING = re.compile(r"^(\d\d):(\d\d):(\d\d)[,.](\d{3}) --> (\d\d):(\d\d):(\d\d)[,.](\d{3})$")


def _wav(seconds: float) -> bytes:
    """Quiet noise: the scripted model says its twelve words over it."""
    samples = np.random.default_rng(0).standard_normal(int(16000 * seconds)) * 0.05 * 32767
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(samples.astype(np.int16).tobytes())
    return buffer.getvalue()


def _seconds(parts: tuple[str, ...]) -> float:
    hours, minutes, seconds, millis = (int(part) for part in parts)
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def parse_cues(document: str) -> list[tuple[float, float, list[str]]]:
    """(start, end, lines) of each cue of an SRT or WebVTT document."""
    cues = []
    for block in document.removeprefix("WEBVTT\n\n").strip().split("\n\n"):
        lines = block.split("\n")
        if lines[0].isdigit():
            lines = lines[1:]
        match = _TIMING.match(lines[0])
        assert match, block
        cues.append((_seconds(match.groups()[:4]), _seconds(match.groups()[4:]), lines[1:]))
    return cues


@pytest.fixture(scope="module")
def speech() -> SpokenText:
    if not espeak_available():
        pytest.skip("espeak-ng is not installed")
    return speak(TEXT)


def _post(server: RunningServer, audio: bytes, **fields: Any) -> Any:
    with server.http() as http:
        return http.post(
            "/v1/audio/transcriptions",
            files={"file": ("speech.wav", audio)},
            data={"model": "whisper-1", "temperature": "0", **fields},
        )


def _words(text: str) -> list[str]:
    return re.sub(r"</?u>", "", text).split()


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_width_and_count_shape_real_speech(
    real_server: RunningServer, speech: SpokenText, fmt: str
) -> None:
    plain = real_server.client().audio.transcriptions.create(
        model="whisper-1", file=("speech.wav", speech.wav_bytes()), temperature=0.0
    )
    response = _post(
        real_server,
        speech.wav_bytes(),
        response_format=fmt,
        max_line_width="24",
        max_line_count="2",
    )
    assert response.status_code == 200, response.text
    cues = parse_cues(response.text)
    assert len(cues) >= 4  # three sentences need more than one two-line cue of 24 characters
    previous_end = 0.0
    for start, end, lines in cues:
        assert previous_end <= start <= end <= speech.duration + 1e-3
        previous_end = end
        assert 1 <= len(lines) <= 2
        assert all(len(line) <= 24 or " " not in line for line in lines)
    shown = [word for _, _, lines in cues for line in lines for word in line.split()]
    assert shown == plain.text.split()  # nothing lost, nothing broken, in order


def test_words_per_line_duration_and_highlight_on_real_speech(
    real_server: RunningServer, speech: SpokenText
) -> None:
    response = _post(
        real_server,
        speech.wav_bytes(),
        response_format="srt",
        max_words_per_line="3",
        max_cue_duration="1.5",
        highlight_words="true",
    )
    assert response.status_code == 200, response.text
    cues = parse_cues(response.text)
    previous_end = 0.0
    highlighted = 0
    for start, end, lines in cues:
        assert previous_end <= start <= end <= speech.duration + 1e-3
        assert end - start <= 1.5 + 1e-3
        previous_end = end
        assert len(lines) == 1
        assert len(_words(lines[0])) <= 3
        highlighted += lines[0].count("<u>")
    assert all(line.count("<u>") <= 1 for _, _, lines in cues for line in lines)
    assert highlighted == len(TEXT.split())  # every word heard is underlined once (tiny.en
    # hears these espeak-ng sentences word for word at temperature 0)


def test_shaping_is_applied_on_the_scripted_model_too(server: RunningServer) -> None:
    response = _post(
        server, _wav(3), response_format="vtt", max_words_per_line="1", vad_filter="false"
    )
    assert response.status_code == 200, response.text
    cues = parse_cues(response.text)
    assert len(cues) > 1
    assert all(len(lines) == 1 and len(lines[0].split()) == 1 for _, _, lines in cues)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"max_line_width": "0"}, "max_line_width"),
        ({"max_line_width": "-4"}, "max_line_width"),
        ({"max_line_width": "1.5"}, "max_line_width"),
        ({"max_line_width": "wide"}, "max_line_width"),
        ({"max_line_count": "0", "max_line_width": "20"}, "max_line_count"),
        ({"max_line_count": "2.5", "max_line_width": "20"}, "max_line_count"),
        ({"max_line_count": "2"}, "max_line_count"),  # no width nor words: no line would break
        ({"max_words_per_line": "0"}, "max_words_per_line"),
        ({"max_words_per_line": "three"}, "max_words_per_line"),
        ({"max_cue_duration": "0"}, "max_cue_duration"),
        ({"max_cue_duration": "-1"}, "max_cue_duration"),
        ({"max_cue_duration": "nan"}, "max_cue_duration"),
        ({"max_cue_duration": "inf"}, "max_cue_duration"),
        ({"highlight_words": "maybe"}, "highlight_words"),
    ],
)
def test_bad_shaping_values_are_400_naming_the_field(
    server: RunningServer, fields: dict[str, str], param: str
) -> None:
    response = _post(server, b"not even audio", response_format="srt", **fields)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


@pytest.mark.parametrize("fmt", ["json", "verbose_json", "text"])
def test_shaping_other_formats_is_refused(server: RunningServer, fmt: str) -> None:
    response = _post(server, b"RIFF", response_format=fmt, max_line_width="30")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "max_line_width"
    assert "srt or vtt" in error["message"]


def test_shaping_a_stream_is_refused(server: RunningServer) -> None:
    response = _post(server, b"RIFF", response_format="srt", stream="true", highlight_words="1")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "highlight_words"


def test_the_sdk_sends_shaping_as_extra_body(server: RunningServer) -> None:
    client = server.client()
    srt = client.audio.transcriptions.create(
        model="whisper-1",
        file=("a.wav", _wav(3)),
        response_format="srt",
        extra_body={"max_line_width": 10, "max_line_count": 1, "vad_filter": "false"},
    )
    cues = parse_cues(str(srt))
    assert cues
    assert all(len(lines) == 1 for _, _, lines in cues)
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.transcriptions.create(
            model="whisper-1",
            file=("a.wav", _wav(3)),
            response_format="json",
            extra_body={"max_cue_duration": 2},
        )
    assert info.value.body["param"] == "max_cue_duration"  # type: ignore[index]


def test_blank_shaping_fields_are_absent(server: RunningServer) -> None:
    response = _post(server, _wav(2), response_format="json", max_line_width="", vad_filter="0")
    assert response.status_code == 200, response.text
    assert IGNORED_FIELDS_HEADER not in response.headers


def _native(server: RunningServer, audio: bytes, **fields: Any) -> Any:
    with server.http() as http:
        return http.post("/transcribe", files={"audio": ("speech.wav", audio)}, data=fields)


def test_native_api_returns_shaped_subtitles(
    real_server: RunningServer, speech: SpokenText
) -> None:
    response = _native(
        real_server,
        speech.wav_bytes(),
        subtitle_format="vtt",
        max_words_per_line="3",
        max_cue_duration="2",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["segments"] == []  # include_timestamps is still off
    assert IGNORED_FIELDS_HEADER not in response.headers
    assert body["subtitles"].startswith("WEBVTT\n\n")
    cues = parse_cues(body["subtitles"])
    previous_end = 0.0
    for start, end, lines in cues:
        assert previous_end <= start <= end <= speech.duration + 1e-3
        assert end - start <= 2.0 + 1e-3
        assert len(lines) == 1
        assert len(lines[0].split()) <= 3
        previous_end = end
    words = [word for _, _, lines in cues for word in lines[0].split()]
    assert words == body["text"].split()


def test_native_subtitles_without_shaping_are_one_cue_per_segment(server: RunningServer) -> None:
    response = _native(server, _wav(3), subtitle_format="srt", vad_filter="false")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [lines for _, _, lines in parse_cues(body["subtitles"])] == [[body["text"]]]
    plain = _native(server, _wav(3), vad_filter="false").json()
    assert "subtitles" not in plain  # the native API's own shape, unless asked


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"max_line_width": "30"}, "max_line_width"),  # no subtitle_format
        ({"subtitle_format": "srt", "max_line_width": "0"}, "max_line_width"),
        ({"subtitle_format": "srt", "max_line_count": "2"}, "max_line_count"),
        ({"subtitle_format": "ass"}, "subtitle_format"),
    ],
)
def test_native_bad_shaping_is_refused_naming_the_field(
    server: RunningServer, fields: dict[str, str], field: str
) -> None:
    response = _native(server, b"RIFF", **fields)
    assert response.status_code in (400, 422), response.text
    assert field in response.text

"""Language detection on its own: ``POST /v1/audio/language``."""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from whisperd.api.inputs import IGNORED_FIELDS_HEADER
from whisperd.testing.fake import LANGUAGE_SHARES

if TYPE_CHECKING:
    import httpx

    from conftest import RunningServer

DATA = Path(__file__).parents[1] / "data"
LANGUAGE = "/v1/audio/language"
CLIP = (DATA / "speech.wav").read_bytes()


def _post(
    server: RunningServer, fields: list[tuple[str, str]] | None = None, audio: bytes = CLIP
) -> httpx.Response:
    with server.http() as http:
        return http.post(
            LANGUAGE,
            files=[
                ("file", ("a.wav", audio, "audio/wav")),
                *((k, (None, v)) for k, v in fields or []),
            ],
        )


def _silence(seconds: float = 2.0) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(np.zeros(int(16000 * seconds), dtype=np.int16).tobytes())
    return buffer.getvalue()


def _error(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def test_detection_gives_the_language_and_the_top_candidates(fake_server: RunningServer) -> None:
    response = _post(fake_server)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["language"] == "en"
    assert body["name"] == "english"
    assert body["probability"] == pytest.approx(LANGUAGE_SHARES[0])
    assert [item["code"] for item in body["languages"]] == ["en", "zh", "de", "es", "ru"]
    assert [item["name"] for item in body["languages"][:3]] == ["english", "chinese", "german"]
    shares = [item["probability"] for item in body["languages"]]
    assert shares[:3] == pytest.approx(list(LANGUAGE_SHARES))
    assert shares == sorted(shares, reverse=True)
    assert body["duration"] == pytest.approx(len(np.frombuffer(CLIP[44:], np.int16)) / 16000, 0.01)
    assert body["model"]
    assert IGNORED_FIELDS_HEADER not in response.headers


def test_top_n_and_candidates(fake_server: RunningServer) -> None:
    response = _post(
        fake_server,
        [("top_n", "1"), ("languages[]", "fr"), ("languages[]", "de"), ("languages[]", "ja")],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["language"] == "de"
    assert len(body["languages"]) == 1
    everything = _post(fake_server, [("top_n", "10"), ("languages", "fr,de,ja")]).json()
    assert [item["code"] for item in everything["languages"]] == ["de", "fr", "ja"]
    assert sum(item["probability"] for item in everything["languages"]) == pytest.approx(1.0)


def test_unknown_fields_are_reported(fake_server: RunningServer) -> None:
    response = _post(fake_server, [("temperature", "0"), ("foo", "1")])
    assert response.status_code == 200, response.text
    assert response.headers[IGNORED_FIELDS_HEADER] == "foo, temperature"


def test_digital_silence_is_not_given_to_the_model(fake_server: RunningServer) -> None:
    body = _post(fake_server, audio=_silence()).json()
    assert body["language"] == "en"
    assert body["probability"] == 0.0
    assert body["duration"] == pytest.approx(2.0)
    among = _post(fake_server, [("languages[]", "fr"), ("languages[]", "de")], _silence()).json()
    assert (among["language"], among["probability"]) == ("fr", 0.0)  # the first candidate
    with fake_server.http() as http:
        transcribed = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("s.wav", _silence(), "audio/wav")},
            data={"languages[]": ["de", "fr"], "response_format": "verbose_json"},
        ).json()
    assert transcribed["text"] == ""
    assert transcribed["languages"] == [{"code": "de", "probability": 0.0}]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ([("top_n", "0")], "top_n"),
        ([("top_n", "many")], "top_n"),
        ([("languages[]", "klingon")], "languages[]"),
        ([("language_detection_segments", "0")], "language_detection_segments"),
        ([("language_detection_threshold", "nan")], "language_detection_threshold"),
        ([("vad_filter", "maybe")], "vad_filter"),
        ([("vad_parameters", "{oops")], "vad_parameters"),
    ],
)
def test_bad_fields_are_400_naming_them(
    fake_server: RunningServer, fields: list[tuple[str, str]], param: str
) -> None:
    assert _error(_post(fake_server, fields))["param"] == param


def test_no_audio_and_unknown_models(fake_server: RunningServer) -> None:
    with fake_server.http() as http:
        missing = http.post(LANGUAGE, data={"top_n": "3"})
    assert _error(missing)["param"] == "file"
    unknown = _error(_post(fake_server, [("model", "no-such-model")]), 404)
    assert unknown["code"] == "model_not_found"


def test_the_scripted_model_matches_faster_whisper(server: RunningServer, scripted_model) -> None:
    import faster_whisper

    from whisperd.audio.decode import AudioSource, decode_audio

    response = _post(server, [("top_n", "5"), ("vad_filter", "false")])
    assert response.status_code == 200, response.text
    body = response.json()
    model = faster_whisper.WhisperModel(str(scripted_model.path), device="cpu", compute_type="int8")
    samples = decode_audio(AudioSource(CLIP)).samples
    language, probability, ranking = model.detect_language(samples)
    assert body["language"] == language
    assert body["probability"] == pytest.approx(probability, abs=1e-5)
    assert [item["code"] for item in body["languages"]] == [code for code, _ in ranking[:5]]


def test_the_scripted_model_with_candidates(server: RunningServer) -> None:
    body = _post(server, [("languages[]", "de"), ("languages[]", "en"), ("top_n", "5")]).json()
    assert body["language"] == "en"  # the scripted decoder says English
    assert [item["code"] for item in body["languages"]] == ["en", "de"]
    assert sum(item["probability"] for item in body["languages"]) == pytest.approx(1.0)


def test_an_english_only_model_is_certain(real_server: RunningServer) -> None:
    body = _post(real_server).json()
    assert body == {
        "language": "en",
        "name": "english",
        "probability": 1.0,
        "languages": [{"code": "en", "name": "english", "probability": 1.0}],
        "duration": pytest.approx(body["duration"]),
        "model": body["model"],
    }
    refused = _error(_post(real_server, [("languages[]", "de")]))
    assert refused["param"] == "languages[]"

"""Confidence on /v1/audio/transcriptions: ``include[]=logprobs`` (json and the stream's events)
and word ``probability`` (verbose_json), on the real Whisper tiny.en hearing espeak-ng speech,
parsed by the official openai SDK; and every bad spelling refused with 400 naming the field."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import openai
import pytest
from openai.types.audio import Transcription, TranscriptionVerbose

from whisperd.testing.speech import espeak_available, speak

if TYPE_CHECKING:
    from conftest import RunningServer
    from whisperd.testing.speech import SpokenText

TEXT = "What time does the train leave for the city? Please close the window before you go to bed."


@pytest.fixture(scope="module")
def speech() -> SpokenText:
    if not espeak_available():
        pytest.skip("espeak-ng is not installed")
    return speak(TEXT)


def _check_entries(entries: list[Any], text: str) -> None:
    """Entries in OpenAI's shape, in range, spelling out ``text`` token by token."""
    assert entries
    for entry in entries:
        assert isinstance(entry.token, str)
        assert -50.0 < entry.logprob <= 0.0
        assert bytes(int(b) for b in entry.bytes).decode() == entry.token  # all ASCII here
    assert "".join(entry.token for entry in entries).strip() == text
    # tiny.en is sure of most of what espeak-ng says clearly
    assert sum(math.exp(entry.logprob) for entry in entries) / len(entries) > 0.5


def test_json_logprobs_parse_in_the_sdk(real_server: RunningServer, speech: SpokenText) -> None:
    result = real_server.client().audio.transcriptions.create(
        model="whisper-1",
        file=("speech.wav", speech.wav_bytes()),
        response_format="json",
        temperature=0.0,
        include=["logprobs"],
    )
    assert isinstance(result, Transcription)
    assert result.text == TEXT
    assert result.logprobs is not None
    _check_entries(result.logprobs, result.text)


def test_json_without_include_has_no_logprobs(
    real_server: RunningServer, speech: SpokenText
) -> None:
    with real_server.http() as http:
        response = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("speech.wav", speech.wav_bytes())},
            data={"model": "whisper-1", "temperature": "0"},
        )
    assert response.status_code == 200
    assert set(response.json()) == {"text", "usage"}


def test_stream_deltas_and_done_carry_logprobs(
    real_server: RunningServer, speech: SpokenText
) -> None:
    events = list(
        real_server.client().audio.transcriptions.create(
            model="whisper-1",
            file=("speech.wav", speech.wav_bytes()),
            stream=True,
            temperature=0.0,
            include=["logprobs"],
        )
    )
    deltas, done = events[:-1], events[-1]
    assert [event.type for event in deltas] == ["transcript.text.delta"] * len(deltas)
    assert done.type == "transcript.text.done"
    assert "".join(delta.delta for delta in deltas) == done.text  # type: ignore[union-attr]
    for delta in deltas:  # the first delta leaves off the text's leading space; its token not
        assert delta.logprobs is not None  # type: ignore[union-attr]
        tokens = "".join(e.token for e in delta.logprobs)  # type: ignore[union-attr]
        assert tokens == delta.delta or (delta is deltas[0] and tokens.lstrip() == delta.delta)  # type: ignore[union-attr]
    assert done.logprobs is not None  # type: ignore[union-attr]
    _check_entries(done.logprobs, done.text)  # type: ignore[union-attr]
    every_delta = [(e.token, e.logprob) for d in deltas for e in d.logprobs]  # type: ignore[union-attr]
    assert every_delta == [(e.token, e.logprob) for e in done.logprobs]  # type: ignore[union-attr]


def test_verbose_json_words_carry_probability(
    real_server: RunningServer, speech: SpokenText
) -> None:
    result = real_server.client().audio.transcriptions.create(
        model="whisper-1",
        file=("speech.wav", speech.wav_bytes()),
        response_format="verbose_json",
        timestamp_granularities=["word"],
        temperature=0.0,
    )
    assert isinstance(result, TranscriptionVerbose)
    assert result.words
    probabilities = [word.model_extra["probability"] for word in result.words]  # type: ignore[index]
    assert all(0.0 < p <= 1.0 for p in probabilities)
    assert sum(probabilities) / len(probabilities) > 0.5


def test_logprobs_on_the_scripted_model(server: RunningServer) -> None:
    from test_subtitle_shaping import _wav

    with server.http() as http:
        response = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("a.wav", _wav(3))},
            data={"model": "whisper-1", "include[]": "logprobs", "vad_filter": "false"},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["text", "logprobs", "usage"]
    assert len(body["logprobs"]) == len(body["text"].split())  # one token per scripted word
    assert all(set(e) == {"token", "logprob", "bytes"} for e in body["logprobs"])


@pytest.mark.parametrize("fmt", ["verbose_json", "text", "srt", "vtt"])
def test_logprobs_need_the_json_format(server: RunningServer, fmt: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        server.client().audio.transcriptions.create(
            model="whisper-1",
            file=("a.wav", b"RIFF"),
            response_format=fmt,  # type: ignore[arg-type]
            include=["logprobs"],
        )
    assert info.value.body["param"] == "include[]"  # type: ignore[index]
    assert "json" in info.value.body["message"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({"include[]": "tokens"}, "include[]"),
        ({"include": "logprobs", "response_format": "srt"}, "include[]"),
        ({"logprobs": "perhaps"}, "logprobs"),
        ({"logprobs": "true", "response_format": "text"}, "logprobs"),
    ],
)
def test_bad_logprob_spellings_are_400(
    server: RunningServer, data: dict[str, str], param: str
) -> None:
    with server.http() as http:
        response = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("a.wav", b"RIFF")},
            data={"model": "whisper-1", **data},
        )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param

"""``ask`` on the OpenAI transcription route: the LLM's answer next to the transcript, and a
failing LLM never costing the transcript."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from fake_llm import MODEL, closed_port_url, serving_llm

if TYPE_CHECKING:
    import httpx

    from conftest import RunningServer

DATA = Path(__file__).parents[1] / "data"
TRANSCRIPTIONS = "/v1/audio/transcriptions"
CLIP = (DATA / "speech.wav").read_bytes()


def _post(server: RunningServer, fields: dict[str, str]) -> httpx.Response:
    with server.http() as http:
        return http.post(
            TRANSCRIPTIONS,
            files=[
                ("file", ("a.wav", CLIP, "audio/wav")),
                *((k, (None, v)) for k, v in fields.items()),
            ],
        )


def _error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    return error


@pytest.mark.parametrize("response_format", ["json", "verbose_json"])
def test_the_answer_comes_next_to_the_transcript(
    settings_for, serve_fake, fake_transcript, response_format: str
) -> None:
    expected = fake_transcript("speech.wav").text
    with (
        serving_llm() as llm,
        serve_fake(settings_for(llm_url=llm.url, llm_model=MODEL)) as running,
    ):
        response = _post(running, {"ask": "summarize it", "response_format": response_format})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == expected
    assert body["answer"] == f"whole: {len(expected.split())} words"
    assert "answer_error" not in body
    (message,) = llm.user_messages()
    assert expected in message
    assert message.endswith("Instruction: summarize it")


def test_the_sdk_reads_the_answer(settings_for, serve_fake) -> None:
    with (
        serving_llm() as llm,
        serve_fake(settings_for(llm_url=llm.url)) as running,
        (DATA / "speech.wav").open("rb") as audio,
    ):
        result = running.client().audio.transcriptions.create(
            model="whisper-1", file=audio, extra_body={"ask": "summarize it"}
        )
    assert result.text
    assert getattr(result, "answer", "").startswith("whole: ")
    assert llm.listed == 1  # no llm_model: the first model the server lists


@pytest.mark.parametrize(
    ("mode", "code", "words"),
    [
        ("error", "llm_unavailable", "answered HTTP 500"),
        ("refuse", "llm_refused", "refused"),
        ("down", "llm_unavailable", "cannot be reached"),
        ("slow", "llm_unavailable", "did not answer within 0.5 s"),
    ],
)
def test_a_failing_llm_never_costs_the_transcript(
    settings_for, serve_fake, fake_transcript, mode: str, code: str, words: str
) -> None:
    with serving_llm(mode if mode != "down" else "answer", delay_s=2.0) as llm:
        url = closed_port_url() if mode == "down" else llm.url
        settings = settings_for(llm_url=url, llm_model=MODEL, llm_timeout_s=0.5)
        with serve_fake(settings) as running:
            response = _post(running, {"ask": "summarize it", "response_format": "verbose_json"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == fake_transcript("speech.wav").text
    assert body["segments"]
    assert "answer" not in body
    assert body["answer_error"]["code"] == code
    assert words in body["answer_error"]["message"]


def test_without_ask_the_llm_is_not_called(settings_for, serve_fake) -> None:
    with (
        serving_llm() as llm,
        serve_fake(settings_for(llm_url=llm.url)) as running,
    ):
        response = _post(running, {"ask": "  "})
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"text", "usage"}
    assert llm.chats == []
    assert llm.listed == 0


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"response_format": "srt"}, "json or verbose_json"),
        ({"response_format": "text"}, "json or verbose_json"),
        ({"stream": "true"}, "stream"),
        ({"ask": "x" * 4001}, "at most 4000 characters"),
    ],
)
def test_ask_that_cannot_be_answered_is_400_before_any_work(
    settings_for, serve_fake, fields: dict[str, str], words: str
) -> None:
    with (
        serving_llm() as llm,
        serve_fake(settings_for(llm_url=llm.url)) as running,
    ):
        error = _error(_post(running, {"ask": "summarize it", **fields}))
    assert error["param"] == "ask"
    assert words in error["message"]
    assert llm.chats == []


def test_a_server_without_an_llm_refuses_ask(fake_server: RunningServer) -> None:
    error = _error(_post(fake_server, {"ask": "summarize it"}))
    assert error["param"] == "ask"
    assert "WHISPERD_LLM_URL" in error["message"]

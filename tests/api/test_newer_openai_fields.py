"""OpenAI's newer request fields, honoured: ``keywords[]`` (as hotwords), ``languages[]``
(detection among candidates, reported as ``languages``) and Groq's ``url``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from whisperd.api.inputs import IGNORED_FIELDS_HEADER
from whisperd.schemas.openai import OpenAIFields, decoding_options
from whisperd.testing.fake import LANGUAGE_SHARES

if TYPE_CHECKING:
    import httpx

    from conftest import RunningServer

DATA = Path(__file__).parents[1] / "data"
TRANSCRIPTIONS = "/v1/audio/transcriptions"
CLIP = (DATA / "speech.wav").read_bytes()


def _post(server: RunningServer, fields: list[tuple[str, str]] | dict[str, str]) -> httpx.Response:
    pairs = list(fields.items()) if isinstance(fields, dict) else fields
    with server.http() as http:
        return http.post(
            TRANSCRIPTIONS,
            files=[("file", ("a.wav", CLIP, "audio/wav")), *((k, (None, v)) for k, v in pairs)],
        )


def _error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    return error


def _options(items: list[tuple[str, Any]]) -> Any:
    from whisperd.schemas.form_fields import read_fields
    from whisperd.schemas.openai import ARRAY_FIELDS, OBJECT_FIELDS

    form = read_fields(items, arrays=ARRAY_FIELDS, objects=OBJECT_FIELDS)
    return decoding_options(OpenAIFields.model_validate(form), form, task="transcribe")


# --------------------------------------------------------------------------------------------
# keywords[]


@pytest.mark.parametrize(
    ("items", "hotwords"),
    [
        ([("keywords[]", "whisperd"), ("keywords[]", "CTranslate2")], "whisperd, CTranslate2"),
        ([("keywords", '["Kubernetes", "etcd"]')], "Kubernetes, etcd"),
        ([("keywords[]", "Smith, Jones & Co")], "Smith, Jones & Co"),  # a phrase keeps commas
        ([("hotwords", "Acme"), ("keywords[]", "Zyx")], "Acme, Zyx"),
        ([("hotwords", "Acme")], "Acme"),
        ([], None),
    ],
)
def test_keywords_become_hotwords_after_the_hotwords_field(
    items: list[tuple[str, str]], hotwords: str | None
) -> None:
    assert _options(items).hotwords == hotwords


def test_keywords_reach_the_engine_and_are_not_reported_ignored(
    fake_server: RunningServer,
) -> None:
    response = _post(fake_server, [("model", "whisper-1"), ("keywords[]", "whisperd")])
    assert response.status_code == 200, response.text
    assert IGNORED_FIELDS_HEADER not in response.headers


def test_the_sdk_sends_keywords(fake_server: RunningServer) -> None:
    with (DATA / "speech.wav").open("rb") as audio:
        result = fake_server.client().audio.transcriptions.create(
            model="whisper-1", file=audio, keywords=["whisperd", "Silero"]
        )
    assert result.text


@pytest.mark.parametrize(
    "fields",
    [
        [("keywords[]", "x" * 101)],
        [("keywords[]", f"k{i}") for i in range(101)],
        [("keywords", "[oops")],
        [("keywords", '[{"a": 1}]')],
        [("keywords[]", "whisperd"), ("prefix", "So")],  # faster-whisper would drop them
    ],
)
def test_bad_keywords_are_400_naming_the_field(
    fake_server: RunningServer, fields: list[tuple[str, str]]
) -> None:
    error = _error(_post(fake_server, [("model", "whisper-1"), *fields]))
    assert error["param"] == "keywords[]"


# --------------------------------------------------------------------------------------------
# languages[]


def test_languages_restrict_detection_and_are_reported(fake_server: RunningServer) -> None:
    # The fake ranks en 0.6, zh 0.2, de 0.1: among de and fr, German wins.
    response = _post(
        fake_server,
        [
            ("model", "whisper-1"),
            ("response_format", "verbose_json"),
            ("languages[]", "fr"),
            ("languages[]", "de-DE"),
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["language"] == "german"
    rest = (1 - sum(LANGUAGE_SHARES)) / (100 - len(LANGUAGE_SHARES))
    share = LANGUAGE_SHARES[2] / (LANGUAGE_SHARES[2] + rest)
    assert body["languages"] == [{"code": "de", "probability": pytest.approx(share)}]


def test_no_languages_field_without_candidates(fake_server: RunningServer) -> None:
    response = _post(fake_server, {"model": "whisper-1", "response_format": "verbose_json"})
    assert response.status_code == 200, response.text
    assert "languages" not in response.json()
    assert response.json()["language"] == "english"


def test_the_sdk_parses_languages_in_json(fake_server: RunningServer) -> None:
    with (DATA / "speech.wav").open("rb") as audio:
        result = fake_server.client().audio.transcriptions.create(
            model="whisper-1", file=audio, languages=["zh", "de"]
        )
    assert result.languages is not None
    assert [language.code for language in result.languages] == ["zh"]


def test_languages_in_the_streams_done_event(fake_server: RunningServer) -> None:
    with (DATA / "speech.wav").open("rb") as audio:
        events = list(
            fake_server.client().audio.transcriptions.create(
                model="whisper-1", file=audio, languages=["de", "fr"], stream=True
            )
        )
    done = events[-1]
    assert done.type == "transcript.text.done"
    assert done.languages is not None
    assert [language.code for language in done.languages] == ["de"]
    assert all(getattr(event, "languages", None) is None for event in events[:-1])


def test_a_language_among_the_candidates_is_used(fake_server: RunningServer) -> None:
    response = _post(
        fake_server,
        [("language", "fr"), ("languages[]", "de"), ("languages[]", "fr"), ("model", "whisper-1")],
    )
    assert response.status_code == 200, response.text
    assert response.json()["languages"] == [{"code": "fr", "probability": 1.0}]


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ([("languages[]", "klingon")], "klingon"),
        ([("languages", '["en", 5]')], "'5' is not a language"),
        ([("language", "en"), ("languages[]", "de")], "not among languages[]"),
    ],
)
def test_bad_languages_are_400_naming_the_field(
    fake_server: RunningServer, fields: list[tuple[str, str]], words: str
) -> None:
    error = _error(_post(fake_server, [("model", "whisper-1"), *fields]))
    assert error["param"] == "languages[]"
    assert words in error["message"]


def test_an_english_only_model_refuses_candidates_without_english(
    settings_for, serve_fake, english_model
) -> None:
    with serve_fake(settings_for(model=str(english_model.path))) as running:
        refused = _post(running, [("languages[]", "de"), ("languages[]", "fr")])
        allowed = _post(running, [("languages[]", "de"), ("languages[]", "en")])
    error = _error(refused)
    assert error["param"] == "languages[]"
    assert "English-only" in error["message"]
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["languages"] == [{"code": "en", "probability": 1.0}]


def test_languages_are_passed_as_codes() -> None:
    options = _options([("languages[]", "German"), ("languages[]", "pt-BR"), ("languages", "de")])
    assert options.languages == ("de", "pt")
    assert options.language is None


# --------------------------------------------------------------------------------------------
# url (Groq's name for audio_url)


def test_url_is_audio_url(settings_for, serve_fake, fake_transcript) -> None:
    import http.server
    import threading

    from waiting import joined

    body = (DATA / "speech.mp3").read_bytes()
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.send_header("content-type", "audio/mpeg")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        with (
            serve_fake(settings_for(allow_private_networks=True)) as running,
            running.http() as client,
        ):
            ok = client.post(TRANSCRIPTIONS, data={"model": "whisper-1", "url": f"{base}/g"})
            both = client.post(TRANSCRIPTIONS, data={"url": f"{base}/a", "audio_url": f"{base}/b"})
    finally:
        httpd.shutdown()
        httpd.server_close()
        joined(thread)
    assert ok.status_code == 200, ok.text
    assert ok.json()["text"] == fake_transcript("speech.mp3").text
    assert IGNORED_FIELDS_HEADER not in ok.headers
    assert _error(both)["param"] == "url"
    assert "only one audio source" in _error(both)["message"]
    assert seen == ["/g"]  # two sources are refused before either is fetched


def test_a_blocked_url_names_the_url_field(fake_server: RunningServer) -> None:
    with fake_server.http() as client:
        response = client.post(TRANSCRIPTIONS, data={"url": "http://169.254.169.254/latest"})
    error = _error(response)
    assert error["param"] == "url"
    assert error["code"] == "url_blocked"


def test_the_request_schema_documents_the_new_fields(fake_server: RunningServer) -> None:
    with fake_server.http() as client:
        model = client.get("/v1/models/whisper-1").json()
    properties = model["parameters"]["properties"]
    assert {"languages[]", "keywords[]", "url", "ask"} <= set(properties)
    assert json.dumps(properties["url"])


# --------------------------------------------------------------------------------------------
# chunking_strategy (more bad shapes than tests/api/test_form_fields.py's)


@pytest.mark.parametrize(
    "fields",
    [
        [("chunking_strategy", "[1, 2]")],
        [("chunking_strategy", '"auto"')],
        [("chunking_strategy", '{"type": "server_vad", "prefix_padding_ms": -1}')],
        [("chunking_strategy", '{"type": "server_vad", "silence_duration_ms": 1e9}')],
        [("chunking_strategy", '{"type": "server_vad", "threshold": "loud"}')],
        [("chunking_strategy", '{"threshold": 0.5}')],
        [("chunking_strategy[type]", "server_vad"), ("chunking_strategy[threshold]", "nan")],
    ],
)
def test_bad_chunking_strategies_are_400_naming_the_field(
    fake_server: RunningServer, fields: list[tuple[str, str]]
) -> None:
    error = _error(_post(fake_server, [("model", "whisper-1"), *fields]))
    assert error["param"] == "chunking_strategy"


def test_server_vad_settings_reach_the_vad() -> None:
    options = _options(
        [
            ("chunking_strategy[type]", "server_vad"),
            ("chunking_strategy[threshold]", "0.3"),
            ("chunking_strategy[prefix_padding_ms]", "150"),
            ("chunking_strategy[silence_duration_ms]", "700"),
        ]
    )
    assert options.vad_filter is True
    assert options.vad_parameters is not None
    assert options.vad_parameters.threshold == 0.3
    assert options.vad_parameters.speech_pad_ms == 150
    assert options.vad_parameters.min_silence_duration_ms == 700


# --------------------------------------------------------------------------------------------
# Real speech (Whisper tiny.en, espeak-ng)


def test_keywords_fix_names_in_real_speech(real_server: RunningServer) -> None:
    from whisperd.testing.speech import speak

    spoken = speak("Please send the report to Siobhan Nguyen before Thursday.")
    client = real_server.client()
    plain = client.audio.transcriptions.create(
        model="whisper-1", file=("talk.wav", spoken.wav_bytes())
    )
    biased = client.audio.transcriptions.create(
        model="whisper-1",
        file=("talk.wav", spoken.wav_bytes()),
        keywords=["Siobhan Nguyen", "Kubeflow"],
        languages=["en", "de"],
    )
    assert "Siobhan Nguyen" not in plain.text  # tiny.en alone mishears the name
    assert "Siobhan Nguyen" in biased.text
    assert biased.languages is not None
    assert [(item.code, getattr(item, "probability", None)) for item in biased.languages] == [
        ("en", 1.0)
    ]

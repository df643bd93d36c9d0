"""The OpenAPI document: real responses per route, references that resolve, the key scheme;
and the early answers (401, 413) of a whole app in each API's envelope."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from whisperd.api.openapi import SECURITY_SCHEME
from whisperd.app import create_app
from whisperd.config import Settings

TRANSCRIPTION_ROUTES = ("/v1/audio/transcriptions", "/v1/audio/translations")
NATIVE_ROUTES = ("/transcribe", "/transcribe/raw")
ERROR_STATUSES = {"400", "401", "404", "408", "413", "499", "500", "503"}


def make_app(**overrides: Any) -> FastAPI:
    values: dict[str, Any] = {"model": "tiny", "offline": True, **overrides}
    return create_app(Settings(_env_file=None, **values))


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return make_app(api_keys=["k"]).openapi()


def _references(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def _resolve(document: dict[str, Any], reference: str) -> object:
    assert reference.startswith("#/"), reference
    node: object = document
    for part in reference[2:].split("/"):
        assert isinstance(node, dict), reference
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _schema_name(content: dict[str, Any]) -> str:
    reference: str = content["application/json"]["schema"]["$ref"]
    return reference.rsplit("/", 1)[1]


def test_every_reference_resolves_from_the_root(document: dict[str, Any]) -> None:
    references = set(_references(document))
    assert "#/components/schemas/VadParameters" in references  # the OpenAI form's nested model
    for reference in references:
        _resolve(document, reference)


def test_no_json_schema_definitions_are_left_inside_operations(document: dict[str, Any]) -> None:
    assert "$defs" not in str(document["paths"])


@pytest.mark.parametrize("path", TRANSCRIPTION_ROUTES)
def test_a_transcription_route_lists_every_format_and_the_stream(
    document: dict[str, Any], path: str
) -> None:
    ok = document["paths"][path]["post"]["responses"]["200"]["content"]
    assert set(ok) == {"application/json", "text/plain", "text/vtt", "text/event-stream"}
    bodies = {ref.rsplit("/", 1)[1] for ref in _references(ok["application/json"])}
    assert bodies == {"TranscriptionJson", "TranscriptionVerbose"}
    events = {ref.rsplit("/", 1)[1] for ref in _references(ok["text/event-stream"])}
    assert events == {"TranscriptTextDelta", "TranscriptTextDone", "ErrorResponse"}
    assert ok["text/plain"]["schema"] == ok["text/vtt"]["schema"] == {"type": "string"}


@pytest.mark.parametrize("path", TRANSCRIPTION_ROUTES)
def test_a_transcription_route_lists_its_errors_in_openais_envelope(
    document: dict[str, Any], path: str
) -> None:
    responses = document["paths"][path]["post"]["responses"]
    assert set(responses) == {"200"} | ERROR_STATUSES
    for status in ERROR_STATUSES:
        assert _schema_name(responses[status]["content"]) == "ErrorResponse", status


@pytest.mark.parametrize("path", NATIVE_ROUTES)
def test_a_native_route_lists_its_result_and_errors_in_the_native_envelope(
    document: dict[str, Any], path: str
) -> None:
    responses = document["paths"][path]["post"]["responses"]
    assert _schema_name(responses["200"]["content"]) == "NativeTranscription"
    for status in ("400", "401", "408", "413", "500", "503"):
        assert _schema_name(responses[status]["content"]) == "NativeError", status
    assert _schema_name(responses["422"]["content"]) == "HTTPValidationError"


def test_every_other_route_lists_its_body_and_errors(document: dict[str, Any]) -> None:
    paths = document["paths"]
    expected = {
        "/v1/models": ("ModelList", "ErrorResponse"),
        "/v1/models/{model_id}": ("ModelObject", "ErrorResponse"),
        "/v1/status": ("NativeStatus", "ErrorResponse"),
        "/status": ("NativeStatus", "NativeError"),
    }
    for path, (body, error) in expected.items():
        responses = paths[path]["get"]["responses"]
        assert _schema_name(responses["200"]["content"]) == body, path
        assert _schema_name(responses["401"]["content"]) == error, path
    assert _schema_name(paths["/v1/models/{model_id}"]["get"]["responses"]["404"]["content"]) == (
        "ErrorResponse"
    )
    health = paths["/health"]["get"]["responses"]
    assert _schema_name(health["200"]["content"]) == _schema_name(health["503"]["content"])
    assert _schema_name(health["200"]["content"]) == "Health"


def test_openai_paths_never_list_fastapis_422(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        if path.startswith("/v1/"):
            for operation in item.values():
                assert "422" not in operation["responses"], path


def test_the_wire_models_have_openais_fields(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    segment = schemas["TranscriptionSegment"]
    assert (
        set(segment["required"])
        == set(segment["properties"]) - {"speaker"}  # with diarization only
        == {
            "id",
            "seek",
            "start",
            "end",
            "text",
            "tokens",
            "temperature",
            "avg_logprob",
            "compression_ratio",
            "no_speech_prob",
        }
    )
    word = set(schemas["TranscriptionWord"]["properties"])
    # OpenAI's, Whisper's confidence, and the speaker with diarization
    assert word == {"word", "start", "end", "probability", "speaker"}
    verbose = schemas["TranscriptionVerbose"]
    assert list(verbose["properties"]) == [
        "task",
        "language",
        "duration",
        "text",
        "segments",
        "words",
        "languages",  # OpenAI's, with languages[]
        "usage",
        "answer",  # whisperd's, with ask
        "answer_error",
    ]
    assert set(schemas["ErrorDetail"]["required"]) == {"message", "type", "param", "code"}
    assert list(schemas["NativeError"]["properties"]) == ["detail"]


def test_the_bearer_scheme_guards_every_route_but_the_public_ones(
    document: dict[str, Any],
) -> None:
    scheme = document["components"]["securitySchemes"][SECURITY_SCHEME]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, item in document["paths"].items():
        for operation in item.values():
            if path == "/health":
                assert "security" not in operation
            else:
                assert operation["security"] == [{SECURITY_SCHEME: []}], path


def test_without_keys_the_scheme_is_offered_but_optional() -> None:
    document = make_app().openapi()
    operation = document["paths"]["/v1/audio/transcriptions"]["post"]
    assert operation["security"] == [{SECURITY_SCHEME: []}, {}]
    assert SECURITY_SCHEME in document["components"]["securitySchemes"]


# --------------------------------------------------------------------------------------------
# Early answers of the whole app


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_docs_stay_open_and_the_rest_wants_the_key() -> None:
    async with _client(make_app(api_keys=["k"])) as http:
        spec = await http.get("/openapi.json")
        docs = await http.get("/docs")
        status = await http.get("/status")
    assert spec.status_code == docs.status_code == 200
    assert spec.json()["components"]["securitySchemes"][SECURITY_SCHEME]["scheme"] == "bearer"
    assert (status.status_code, status.json()) == (
        401,
        {"detail": "Missing API key: send it as 'Authorization: Bearer <key>'."},
    )


@pytest.mark.anyio
async def test_an_upload_over_the_limit_gets_413_in_each_apis_envelope() -> None:
    app = make_app(api_keys=["k"], max_upload_mb=0.01)
    key = {"authorization": "Bearer k"}
    audio = {"file": ("a.wav", b"x" * 200_000)}
    async with app.router.lifespan_context(app), _client(app) as http:
        openai = await http.post("/v1/audio/transcriptions", files=audio, headers=key)
        native = await http.post("/transcribe", files={"audio": audio["file"]}, headers=key)
        raw = await http.post("/transcribe/raw", json={"audio_data": "A" * 100_000}, headers=key)
    message = (
        "Maximum content size limit (0.01 MiB) exceeded. The server's limit is set with "
        "--max-upload-mb (WHISPERD_MAX_UPLOAD_MB)."
    )
    assert openai.status_code == native.status_code == raw.status_code == 413
    assert openai.json() == {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": "file",
            "code": "file_too_large",
        }
    }
    assert native.json() == raw.json() == {"detail": message}
    assert openai.headers["connection"] == "close"


@pytest.mark.anyio
async def test_base64_json_may_be_a_third_larger_than_an_upload() -> None:
    # Limits: 10 485 bytes of audio, plus 64 KiB for what wraps it: 76 021 bytes of multipart
    # form, 79 516 of JSON.
    app = make_app(max_upload_mb=0.01)
    async with app.router.lifespan_context(app), _client(app) as http:
        upload = await http.post("/transcribe", files={"audio": ("a.wav", b"x" * 77_000)})
        raw = await http.post("/transcribe/raw", json={"audio_data": "A" * 78_000})
    assert upload.status_code == 413
    assert raw.status_code == 503  # let in, then refused: the default model is not cached

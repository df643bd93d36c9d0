"""Request-id, API-key and body-timeout middlewares and the routes' body limits, in process
and behind a real uvicorn."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from whisperd.api.errors import body_too_large_message, install_error_handlers
from whisperd.api.middleware import (
    REQUEST_ID,
    ApiKeyMiddleware,
    BodyTimeoutMiddleware,
    RequestIdLogFilter,
    RequestIdMiddleware,
)

KEYS = ("key-one", "key-two", "key-three")
MISSING = "Missing API key: send it as 'Authorization: Bearer <key>'."
WRONG = "Incorrect API key provided."
HEX32 = re.compile(r"[0-9a-f]{32}")
LOGGER = "whisperd.tests.middleware"
UPLOAD_MB = 0.5
TOO_LARGE = body_too_large_message(UPLOAD_MB)


def envelope(message: str, *, param: str | None, code: str) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }


def too_large(path: str) -> dict[str, Any]:
    if path.startswith("/v1/"):
        return envelope(TOO_LARGE, param="file", code="file_too_large")
    return {"detail": TOO_LARGE}


# --------------------------------------------------------------------------------------------
# A small app and helpers


def build_app(events: list[str], *, cap: int = 100) -> FastAPI:
    """Routes for every case; ``events`` records what the endpoints did.

    ``/echo`` and ``/v1/echo`` take bodies up to ``cap`` bytes, ``/small`` up to 10.
    """
    app = FastAPI()
    install_error_handlers(app, upload_limit_mb=UPLOAD_MB)
    bodies = APIRouter()
    small = APIRouter()
    plain = APIRouter()

    @bodies.post("/echo")
    @bodies.post("/v1/echo")
    @small.post("/small")
    async def echo(request: Request) -> Response:
        events.append("echo:start")
        try:
            body = await request.body()
        finally:
            events.append("echo:unwound")
        return JSONResponse({"length": len(body), "request_id": request.state.request_id})

    @plain.get("/stream")
    async def stream() -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for part in (b"one,", b"two,", b"three"):
                await anyio.sleep(0.02)
                yield part

        return StreamingResponse(chunks(), media_type="text/plain")

    @plain.get("/boom")
    async def boom() -> Response:
        raise RuntimeError("boom")

    @plain.get("/health")
    @plain.get("/healthz")
    @plain.api_route("/v1/thing", methods=["GET", "OPTIONS"])
    async def method(request: Request) -> Response:
        return PlainTextResponse(request.method)

    @plain.get("/log")
    async def log() -> Response:
        logging.getLogger(LOGGER).warning("inside")
        return PlainTextResponse("logged")

    @plain.websocket("/ws")
    @plain.websocket("/v1/ws")
    async def ws(websocket: WebSocket) -> None:
        events.append("ws:called")
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    app.include_router(bodies, max_body_size=cap)
    app.include_router(small, max_body_size=10)
    app.include_router(plain)
    return app


def stack(app: FastAPI, *, keys: tuple[str, ...] = (), receive_timeout: float = 5.0) -> FastAPI:
    """The middlewares in the order :func:`whisperd.app.create_app` adds them."""
    app.add_middleware(BodyTimeoutMiddleware, receive_timeout=receive_timeout)
    app.add_middleware(ApiKeyMiddleware, keys=keys)
    app.add_middleware(RequestIdMiddleware)
    return app


def client(app: ASGIApp) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def chunked(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def run_asgi(app: ASGIApp, scope: Scope, incoming: list[Message]) -> list[Message]:
    """Drive ``app`` by hand: ``receive`` hands out ``incoming``, then waits forever."""
    sent: list[Message] = []

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def http_scope(path: str, headers: list[tuple[bytes, bytes]]) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "server": ("test", 80),
        "client": ("127.0.0.1", 1234),
    }


class ListHandler(logging.Handler):
    """Keeps the records it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def events() -> list[str]:
    return []


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --------------------------------------------------------------------------------------------
# Request ids


@pytest.mark.anyio
@pytest.mark.parametrize("given", ["abc-123", "A.b_c-9", "x" * 128])
async def test_a_valid_client_request_id_is_echoed(events: list[str], given: str) -> None:
    async with client(stack(build_app(events))) as http:
        response = await http.post("/echo", content=b"hi", headers={"x-request-id": given})
    assert response.headers["x-request-id"] == given
    assert response.json() == {"length": 2, "request_id": given}
    assert REQUEST_ID.get() is None


@pytest.mark.anyio
@pytest.mark.parametrize("given", ["x" * 129, "bad id", "semi;colon", "slash/y", ""])
async def test_an_invalid_client_request_id_is_replaced(events: list[str], given: str) -> None:
    async with client(stack(build_app(events))) as http:
        response = await http.post("/echo", content=b"hi", headers={"x-request-id": given})
    request_id = response.headers["x-request-id"]
    assert HEX32.fullmatch(request_id)
    assert response.json()["request_id"] == request_id


@pytest.mark.anyio
async def test_a_request_id_is_generated_when_absent_and_differs_per_request(
    events: list[str],
) -> None:
    async with client(stack(build_app(events))) as http:
        first = await http.post("/echo", content=b"")
        second = await http.post("/echo", content=b"")
    ids = {first.headers["x-request-id"], second.headers["x-request-id"]}
    assert len(ids) == 2
    assert all(HEX32.fullmatch(i) for i in ids)
    assert first.headers.get_list("x-request-id") == [first.json()["request_id"]]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/v1/thing", {}, 401),
        ("POST", "/echo", {"content": b"x" * 101}, 413),
        ("POST", "/echo", {"content": chunked(b"x" * 60, b"y" * 60)}, 413),
        ("GET", "/boom", {}, 500),
        ("GET", "/stream", {}, 200),
    ],
)
async def test_error_and_streaming_responses_carry_the_request_id(
    events: list[str], method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    auth = {} if status == 401 else {"authorization": "Bearer key-one"}
    headers = {"x-request-id": "trace-7", **auth}
    async with client(stack(build_app(events), keys=KEYS)) as http:
        response = await http.request(method, path, headers=headers, **kwargs)
    assert response.status_code == status
    assert response.headers.get_list("x-request-id") == ["trace-7"]
    if path == "/stream":
        assert response.text == "one,two,three"


@pytest.mark.anyio
async def test_the_log_filter_puts_the_request_id_on_records(events: list[str]) -> None:
    handler = ListHandler()
    handler.addFilter(RequestIdLogFilter())
    handler.setFormatter(logging.Formatter("%(request_id)s %(message)s"))
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    try:
        async with client(stack(build_app(events))) as http:
            response = await http.get("/log", headers={"x-request-id": "log-42"})
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    assert response.text == "logged"
    assert [handler.format(r) for r in handler.records] == ["log-42 inside", "- outside"]


def test_the_websocket_accept_carries_the_request_id(events: list[str]) -> None:
    with (
        TestClient(stack(build_app(events))) as test_client,
        test_client.websocket_connect("/ws", headers={"x-request-id": "ws-1"}) as session,
    ):
        assert session.receive_text() == "hello"
        assert session.extra_headers == [(b"x-request-id", b"ws-1")]


# --------------------------------------------------------------------------------------------
# API keys


@pytest.mark.anyio
async def test_without_keys_everything_is_open(events: list[str]) -> None:
    async with client(stack(build_app(events), keys=())) as http:
        response = await http.get("/v1/thing")
    assert (response.status_code, response.text) == (200, "GET")


@pytest.mark.anyio
@pytest.mark.parametrize("authorization", ["Bearer key-two", "bearer key-three", "BEARER  key-one"])
async def test_any_configured_key_is_accepted(events: list[str], authorization: str) -> None:
    async with client(stack(build_app(events), keys=KEYS)) as http:
        response = await http.get("/v1/thing", headers={"authorization": authorization})
    assert (response.status_code, response.text) == (200, "GET")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, MISSING),
        ({"authorization": "Bearer"}, MISSING),
        ({"authorization": "Bearer   "}, MISSING),
        ({"authorization": "Basic key-one"}, MISSING),
        ({"authorization": "key-one"}, MISSING),
        ({"authorization": "Bearer key-four"}, WRONG),
        ({"authorization": "Bearer key-one-and-more"}, WRONG),
        ({"authorization": "Bearer KEY-ONE"}, WRONG),
    ],
)
async def test_a_missing_or_wrong_key_gets_401(
    events: list[str], headers: dict[str, str], message: str
) -> None:
    async with client(stack(build_app(events), keys=KEYS)) as http:
        response = await http.post("/v1/echo", content=b"secret body", headers=headers)
    assert response.status_code == 401
    assert response.json() == envelope(message, param=None, code="invalid_api_key")
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/json"
    assert "key-" not in response.text.replace("<key>", "")
    assert events == []  # The app never ran.


@pytest.mark.anyio
async def test_a_native_path_gets_the_401_in_the_native_envelope(events: list[str]) -> None:
    async with client(stack(build_app(events), keys=KEYS)) as http:
        missing = await http.post("/echo", content=b"secret body")
        wrong = await http.post("/echo", headers={"authorization": "Bearer key-four"})
    assert (missing.status_code, missing.json()) == (401, {"detail": MISSING})
    assert (wrong.status_code, wrong.json()) == (401, {"detail": WRONG})
    assert missing.headers["www-authenticate"] == "Bearer"
    assert events == []


@pytest.mark.anyio
async def test_a_keyless_request_declaring_a_huge_body_gets_401_not_413(
    events: list[str],
) -> None:
    async with client(stack(build_app(events), keys=KEYS)) as http:
        response = await http.post("/v1/echo", content=b"x" * 5000)
    assert response.status_code == 401
    assert events == []


@pytest.mark.anyio
async def test_public_paths_match_exactly_and_options_is_open(events: list[str]) -> None:
    async with client(stack(build_app(events), keys=KEYS)) as http:
        health = await http.get("/health")
        healthz = await http.get("/healthz")
        preflight = await http.options("/v1/thing")
    assert (health.status_code, health.text) == (200, "GET")
    assert healthz.status_code == 401
    assert (preflight.status_code, preflight.text) == (200, "OPTIONS")


@pytest.mark.anyio
async def test_custom_public_paths_replace_the_defaults(events: list[str]) -> None:
    app = ApiKeyMiddleware(build_app(events), keys=KEYS, public_paths={"/healthz"})
    async with client(app) as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/health")).status_code == 401


def test_a_websocket_without_a_key_is_denied_before_accept(events: list[str]) -> None:
    with (
        TestClient(stack(build_app(events), keys=KEYS)) as test_client,
        pytest.raises(WebSocketDenialResponse) as denied,
        test_client.websocket_connect("/v1/ws", headers={"x-request-id": "ws-2"}),
    ):
        pass  # pragma: no cover - the handshake is refused
    assert denied.value.status_code == 401
    assert denied.value.json() == envelope(MISSING, param=None, code="invalid_api_key")
    assert denied.value.headers["www-authenticate"] == "Bearer"
    assert denied.value.headers["x-request-id"] == "ws-2"
    assert events == []


def test_a_websocket_with_a_key_is_accepted(events: list[str]) -> None:
    headers = {"authorization": "Bearer key-three"}
    with (
        TestClient(stack(build_app(events), keys=KEYS)) as test_client,
        test_client.websocket_connect("/ws", headers=headers) as session,
    ):
        assert session.receive_text() == "hello"
        with pytest.raises(WebSocketDisconnect):
            session.receive_text()
    assert events == ["ws:called"]


@pytest.mark.anyio
async def test_without_the_denial_extension_a_websocket_is_closed_with_1008() -> None:
    called: list[Scope] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        called.append(scope)

    scope = {"type": "websocket", "path": "/ws", "headers": [(b"authorization", b"Bearer no")]}
    connect: list[Message] = [{"type": "websocket.connect"}]
    sent = await run_asgi(ApiKeyMiddleware(inner, keys=KEYS), scope, connect)
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": WRONG}]
    assert called == []


def test_keys_are_validated() -> None:
    app = build_app([])
    with pytest.raises(TypeError):
        ApiKeyMiddleware(app, keys="key-one")
    with pytest.raises(ValueError, match="empty"):
        ApiKeyMiddleware(app, keys=["ok", ""])


def test_only_digests_of_the_keys_are_kept() -> None:
    middleware = ApiKeyMiddleware(build_app([]), keys=KEYS)
    assert "key-one" not in repr(vars(middleware))


# --------------------------------------------------------------------------------------------
# Body limits (FastAPI's ``max_body_size``, answered by our handlers)


class ReceiveCounter:
    """Wraps an app to count the body chunks the server handed it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.chunks = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.chunks += 1
            return message

        await self.app(scope, counted, send)


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/echo", "/v1/echo"])
async def test_a_declared_length_over_the_cap_is_refused_unread(
    events: list[str], path: str
) -> None:
    counter = ReceiveCounter(stack(build_app(events)))
    async with client(counter) as http:
        response = await http.post(path, content=b"x" * 150)
    assert response.status_code == 413
    assert response.json() == too_large(path)
    assert response.headers["connection"] == "close"
    assert response.headers["content-type"] == "application/json"
    assert counter.chunks == 0  # not one byte of the body was read


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/echo", "/v1/echo"])
async def test_a_chunked_body_over_the_cap_is_cut_off_and_the_app_unwinds(
    events: list[str], path: str
) -> None:
    body = chunked(b"a" * 40, b"b" * 40, b"c" * 40, b"d" * 40)
    async with client(stack(build_app(events))) as http:
        response = await http.post(path, content=body)
    assert response.status_code == 413
    assert response.json() == too_large(path)
    assert response.headers["connection"] == "close"
    assert events == ["echo:start", "echo:unwound"]


def test_the_413_names_the_limit_in_mib_and_the_setting_that_raises_it() -> None:
    message = body_too_large_message(25.0)
    assert message.startswith("Maximum content size limit (25 MiB) exceeded.")
    assert "--max-upload-mb" in message
    assert "WHISPERD_MAX_UPLOAD_MB" in message
    assert "(0.5 MiB)" in TOO_LARGE


@pytest.mark.anyio
@pytest.mark.parametrize("size", [0, 1, 99, 100])
async def test_bodies_up_to_the_cap_pass_whole(events: list[str], size: int) -> None:
    async with client(stack(build_app(events))) as http:
        declared = await http.post("/echo", content=b"z" * size)
        halves = (b"z" * (size // 2), b"z" * (size - size // 2))
        streamed = await http.post("/echo", content=chunked(*halves))
    assert declared.status_code == streamed.status_code == 200
    assert declared.json()["length"] == streamed.json()["length"] == size


@pytest.mark.anyio
async def test_a_route_can_have_its_own_cap(events: list[str]) -> None:
    async with client(stack(build_app(events))) as http:
        small_ok = await http.post("/small", content=b"x" * 10)
        small_over = await http.post("/small", content=b"x" * 11)
        small_chunked = await http.post("/small", content=chunked(b"x" * 6, b"x" * 6))
        default = await http.post("/echo", content=b"x" * 11)
    assert small_ok.json()["length"] == 10
    assert (small_over.status_code, small_over.json()) == (413, too_large("/small"))
    assert (small_chunked.status_code, small_chunked.json()) == (413, too_large("/small"))
    assert default.json()["length"] == 11


@pytest.mark.anyio
async def test_fastapi_upload_over_the_cap_gets_413_not_fastapis_400() -> None:
    app = FastAPI()
    install_error_handlers(app, upload_limit_mb=UPLOAD_MB)

    @app.post("/v1/audio/transcriptions", max_body_size=1000)
    async def transcribe(file: UploadFile) -> dict[str, int]:
        return {"size": len(await file.read())}

    files = {"file": ("a.wav", b"\0" * 5000, "audio/wav")}
    request = httpx.Request("POST", "http://test/v1/audio/transcriptions", files=files)
    body = request.read()
    async with client(app) as http:
        ok = await http.post("/v1/audio/transcriptions", files={"file": ("a.wav", b"\0" * 10)})
        declared = await http.post("/v1/audio/transcriptions", files=files)
        over = await http.post(
            "/v1/audio/transcriptions",
            content=chunked(*(body[i : i + 256] for i in range(0, len(body), 256))),
            headers={"content-type": request.headers["content-type"]},
        )
    assert ok.json() == {"size": 10}
    assert declared.status_code == over.status_code == 413
    assert declared.json() == over.json() == too_large("/v1/audio/transcriptions")


# --------------------------------------------------------------------------------------------
# Body framing and slow bodies


@pytest.mark.anyio
@pytest.mark.parametrize("value", ["abc", "-1", "+5", "1e2", "", "0x10"])
async def test_a_malformed_content_length_gets_400(events: list[str], value: str) -> None:
    async with client(stack(build_app(events))) as http:
        openai = await http.post("/v1/echo", content=b"hello", headers={"content-length": value})
        native = await http.post("/echo", content=b"hello", headers={"content-length": value})
    assert openai.status_code == native.status_code == 400
    expected = envelope("Invalid Content-Length header.", param=None, code="invalid_content_length")
    assert openai.json() == expected
    assert native.json() == {"detail": "Invalid Content-Length header."}
    assert events == []


@pytest.mark.anyio
async def test_conflicting_content_lengths_get_400(events: list[str]) -> None:
    headers = [(b"content-length", b"5"), (b"content-length", b"6")]
    middleware = BodyTimeoutMiddleware(build_app(events))
    sent = await run_asgi(middleware, http_scope("/v1/echo", headers), [])
    assert sent[0]["status"] == 400
    assert json.loads(sent[1]["body"])["error"]["code"] == "invalid_content_length"
    assert events == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/v1/echo",
            envelope(
                "No request body data received for 0.05 s.", param=None, code="request_timeout"
            ),
        ),
        ("/echo", {"detail": "No request body data received for 0.05 s."}),
    ],
)
async def test_a_stalled_body_gets_408_and_the_app_unwinds(
    events: list[str], path: str, body: dict[str, Any]
) -> None:
    middleware = BodyTimeoutMiddleware(build_app(events), receive_timeout=0.05)
    first = {"type": "http.request", "body": b"abc", "more_body": True}
    sent = await run_asgi(middleware, http_scope(path, []), [first])
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"]) == body
    assert events == ["echo:start", "echo:unwound"]


@pytest.mark.anyio
async def test_the_timeout_does_not_apply_once_the_body_is_complete(events: list[str]) -> None:
    # The stream takes ~60 ms while Starlette waits in receive() for a disconnect.
    async with client(stack(build_app(events), receive_timeout=0.01)) as http:
        response = await http.get("/stream")
    assert (response.status_code, response.text) == (200, "one,two,three")


def test_the_timeout_is_validated() -> None:
    with pytest.raises(ValueError, match="positive"):
        BodyTimeoutMiddleware(build_app([]), receive_timeout=0)


# --------------------------------------------------------------------------------------------
# All three


@pytest.mark.anyio
@pytest.mark.parametrize(
    "wrap",
    [
        RequestIdMiddleware,
        lambda app: ApiKeyMiddleware(app, keys=KEYS),
        BodyTimeoutMiddleware,
    ],
)
async def test_lifespan_passes_through_untouched(wrap: Callable[[ASGIApp], ASGIApp]) -> None:
    seen: list[tuple[Scope, Receive, Send]] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, receive, send))

    async def receive() -> Message:
        raise AssertionError("not called")

    async def send(message: Message) -> None:
        raise AssertionError("not called")

    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await wrap(inner)(scope, receive, send)
    assert seen == [({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)]


# --------------------------------------------------------------------------------------------
# Behind a real uvicorn


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, list[str]]]:
    """uvicorn on 127.0.0.1 with a 1 KiB cap and a 0.3 s receive timeout."""
    events: list[str] = []
    app = stack(build_app(events, cap=1024), receive_timeout=0.3)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        http="h11",
        ws="none",
        loop="asyncio",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not uv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = uv.servers[0].sockets[0].getsockname()[1]
    yield port, events
    uv.should_exit = True
    thread.join(5)
    assert not thread.is_alive()


def read_response(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    """Read until the server closes; return status line, headers and body."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status, headers, body


def test_uvicorn_cuts_off_a_chunked_body_over_the_cap(server: tuple[int, list[str]]) -> None:
    port, events = server
    events.clear()
    parts = [b"p" * 400] * 4
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        small = http.post("/v1/echo", content=iter([b"q" * 500, b"q" * 500]))
        response = http.post("/v1/echo", content=iter(parts), headers={"x-request-id": "uv-1"})
        declared = http.post("/echo", content=b"d" * 2000)
    assert small.json()["length"] == 1000
    assert response.status_code == 413
    assert response.headers["x-request-id"] == "uv-1"
    assert response.headers["connection"] == "close"
    assert response.json() == too_large("/v1/echo")
    assert (declared.status_code, declared.json()) == (413, too_large("/echo"))
    assert events == ["echo:start", "echo:unwound"] * 3


def test_uvicorn_times_out_a_slow_sender(server: tuple[int, list[str]]) -> None:
    port, events = server
    events.clear()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n"
            b"x-request-id: slow-1\r\n\r\n0123456789"
        )
        status, headers, body = read_response(sock)
        elapsed = time.monotonic() - started
    assert status == "HTTP/1.1 408 Request Timeout"
    assert headers["x-request-id"] == "slow-1"
    assert headers["connection"] == "close"
    message = "No request body data received for 0.3 s."
    assert json.loads(body) == {"detail": message}
    assert 0.25 < elapsed < 3
    assert events == ["echo:start", "echo:unwound"]

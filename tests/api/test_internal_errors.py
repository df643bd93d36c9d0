"""An unexpected exception is a 500 in the API's envelope, and the connection stays open.

Starlette's last-resort handler answers and then raises the exception again, which makes
uvicorn drop the connection; a pooled client's next request on it then fails with "connection
reset". These tests drive a real uvicorn server with one keep-alive connection, and the
middleware itself by hand.
"""

from __future__ import annotations

import io
import logging
import wave
from typing import TYPE_CHECKING, Any, NoReturn

import anyio
import anyio.lowlevel
import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from starlette.background import BackgroundTask
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from whisperd.api.errors import UnexpectedErrorMiddleware, install_error_handlers

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from starlette.types import Message

    from conftest import RunningServer

INTERNAL = "internal_error"


def local_address(response: httpx.Response) -> tuple[str, int]:
    """The client side of the connection that carried ``response``."""
    stream = response.extensions["network_stream"]
    address: tuple[str, int] = stream.get_extra_info("client_addr")
    return address


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


@pytest.fixture
def failing_open(fake_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the server's service fail unexpectedly when a transcription is opened."""

    async def fail(*args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError("injected fault")

    monkeypatch.setattr(fake_server.app.state.service, "open", fail)


@pytest.mark.usefixtures("failing_open")
@pytest.mark.parametrize(
    ("path", "files", "envelope"),
    [
        ("/v1/audio/transcriptions", "file", "error"),
        ("/transcribe", "audio", "detail"),
    ],
)
def test_an_internal_error_keeps_the_keep_alive_connection(
    fake_server: RunningServer,
    caplog: pytest.LogCaptureFixture,
    path: str,
    files: str,
    envelope: str,
) -> None:
    with httpx.Client(base_url=fake_server.url, timeout=60) as http:
        with caplog.at_level(logging.ERROR, logger="whisperd.api.errors"):
            failed = http.post(
                path,
                files={files: ("tone.wav", wav_bytes(), "audio/wav")},
                headers={"x-request-id": "fault-1"},
            )
        failed_on = local_address(failed)
        following = http.get("/health")
        assert local_address(following) == failed_on
    assert failed.status_code == 500
    assert failed.headers["x-request-id"] == "fault-1"
    assert "connection" not in failed.headers
    body = failed.json()
    if envelope == "error":
        assert body["error"]["code"] == INTERNAL
        assert body["error"]["type"] == "server_error"
    else:
        assert set(body) == {"detail"}
        assert "server failed" in body["detail"]
    assert following.status_code == 200
    assert following.json() == {"status": "ok"}
    logged = [record for record in caplog.records if record.exc_info]
    assert len(logged) == 1
    assert "injected fault" in str(logged[0].exc_info[1])


def test_the_next_transcription_on_the_connection_succeeds(
    fake_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = fake_server.app.state.service
    real_open = service.open
    calls = 0

    async def fail_once(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("injected fault")
        return await real_open(*args, **kwargs)

    monkeypatch.setattr(service, "open", fail_once)
    upload = {"file": ("tone.wav", wav_bytes(), "audio/wav")}
    with httpx.Client(base_url=f"{fake_server.url}/v1", timeout=60) as http:
        failed = http.post("/audio/transcriptions", files=upload)
        failed_on = local_address(failed)
        succeeded = http.post("/audio/transcriptions", files=upload)
        assert local_address(succeeded) == failed_on
    assert failed.status_code == 500
    assert succeeded.status_code == 200
    assert isinstance(succeeded.json()["text"], str)


# --------------------------------------------------------------------------------------------
# The middleware by hand


def failing_app(*, after_start: bool = False) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app, upload_limit_mb=1)

    @app.get("/after")
    async def after() -> Response:
        def fail() -> None:
            raise RuntimeError("boom after the response")

        return PlainTextResponse("done", background=BackgroundTask(fail))

    @app.get("/v1/boom")
    @app.get("/boom")
    async def boom() -> Response:
        if not after_start:
            raise RuntimeError("boom")

        async def chunks() -> AsyncIterator[bytes]:
            yield b"partial"
            await anyio.lowlevel.checkpoint()
            raise RuntimeError("boom mid-stream")

        return StreamingResponse(chunks())

    return app


async def call(app: Callable[..., Any], path: str) -> list[Message]:
    """Run one GET through ``app`` and collect what it sends."""
    sent: list[Message] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 1234),
        "server": ("test", 80),
    }
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/boom", b'"code":"internal_error"'),
        ("/boom", b'{"detail":"The server failed'),
    ],
)
async def test_the_app_answers_500_and_returns_normally(path: str, body: bytes) -> None:
    sent = await call(failing_app(), path)
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 500
    content = b"".join(message.get("body", b"") for message in sent[1:])
    assert body in content


@pytest.mark.anyio
async def test_a_failure_after_the_response_started_still_raises() -> None:
    # Nothing can replace a response under way: the server must close the connection.
    with pytest.raises(RuntimeError, match="boom mid-stream"):
        await call(failing_app(after_start=True), "/boom")


@pytest.mark.anyio
async def test_a_failure_after_the_response_completed_is_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="whisperd.api.errors"):
        sent = await call(failing_app(), "/after")
    assert sent[0]["status"] == 200
    assert b"".join(message.get("body", b"") for message in sent[1:]) == b"done"
    assert [message["type"] for message in sent].count("http.response.start") == 1
    (record,) = [record for record in caplog.records if record.exc_info]
    assert "after the response" in record.getMessage()


@pytest.mark.anyio
async def test_websocket_and_lifespan_scopes_pass_through() -> None:
    seen: list[str] = []

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["type"])
        raise RuntimeError("not ours to answer")

    middleware = UnexpectedErrorMiddleware(inner)
    for kind in ("websocket", "lifespan"):
        with pytest.raises(RuntimeError, match="not ours"):
            await middleware({"type": kind}, None, None)  # type: ignore[arg-type]
    assert seen == ["websocket", "lifespan"]

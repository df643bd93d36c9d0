"""The drain on its own: what it counts, when it lets the server stop, and how the work it
cancels is answered (the whole command is tested in tests/test_serve_shutdown.py)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from waiting import until
from whisperd.api.draining import SHUTTING_DOWN, Drain, DrainMiddleware


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _scope(kind: str, path: str, *, draining: bool = False) -> Scope:
    app = SimpleNamespace(state=SimpleNamespace(draining=draining))
    return {"type": kind, "path": path, "headers": [], "app": app, "method": "POST"}


class Client:
    """What the server was told to send, and a receive that never returns (a slow client)."""

    def __init__(self) -> None:
        self.sent: list[Message] = []

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    async def receive(self) -> Message:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    def json(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent))


def _hanging(*, start: bool = False, accept: bool = False) -> Any:
    """An app that may begin its answer, then waits for ever."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if start:
            headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        if accept:
            await send({"type": "websocket.accept"})
        await receive()

    return app


async def _cancelled(app: Any, scope: Scope) -> tuple[Drain, Client]:
    """Run ``app`` under the middleware until it is in flight, then drain with no time."""
    drain, client = Drain(), Client()
    middleware = DrainMiddleware(app, drain=drain, open_paths=("/health",))
    task = asyncio.create_task(middleware(scope, client.receive, client.send))
    await until(lambda: sum(drain.in_flight.values()) == 1, "the request is not in flight")
    drain.begin(0)
    assert drain.poll() is False  # past the deadline: cancelled, not yet unwound
    await asyncio.wait_for(task, 60)
    assert drain.poll() is True
    return drain, client


@pytest.mark.anyio
async def test_an_idle_drain_lets_the_server_stop_at_once() -> None:
    drain = Drain()
    assert drain.poll() is False  # not asked to stop
    drain.begin(30)
    assert drain.poll() is True


@pytest.mark.anyio
async def test_a_request_cancelled_before_its_answer_gets_503_in_its_envelope() -> None:
    _, openai = await _cancelled(_hanging(), _scope("http", "/v1/audio/transcriptions"))
    _, native = await _cancelled(_hanging(), _scope("http", "/transcribe"))
    assert openai.sent[0]["status"] == native.sent[0]["status"] == 503
    assert openai.json()["error"]["code"] == "shutting_down"
    assert native.json() == {"detail": "Server shutting down"}
    assert (b"connection", b"close") in openai.sent[0]["headers"]


@pytest.mark.anyio
async def test_an_event_stream_cut_by_the_bound_ends_with_an_error_event() -> None:
    _, client = await _cancelled(_hanging(start=True), _scope("http", "/v1/audio/transcriptions"))
    assert [m["type"] for m in client.sent] == [
        "http.response.start",
        "http.response.body",
        "http.response.body",
    ]
    last = client.sent[-1]
    assert last["type"] == "http.response.body"
    assert not last.get("more_body", False)
    assert last["body"].startswith(b"data: ")
    assert json.loads(last["body"][6:])["error"]["code"] == "shutting_down"


@pytest.mark.anyio
async def test_a_stream_cut_by_the_bound_is_closed_with_1012() -> None:
    _, client = await _cancelled(_hanging(accept=True), _scope("websocket", "/v1/stream"))
    assert client.sent[-1] == {"type": "websocket.close", "code": 1012, "reason": SHUTTING_DOWN}


@pytest.mark.anyio
async def test_while_draining_new_work_is_refused_and_health_still_answers() -> None:
    drain, client = Drain(), Client()
    reached: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    middleware = DrainMiddleware(app, drain=drain, open_paths=("/health",))
    for path in ("/health", "/v1/audio/transcriptions"):
        await middleware(_scope("http", path, draining=True), client.receive, client.send)
    assert reached == ["/health"]
    assert [m["status"] for m in client.sent if "status" in m] == [200, 503]

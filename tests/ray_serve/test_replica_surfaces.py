"""What names a replica without Ray: the ``x-whisperd-replica`` header (``replica_name``), the
``replica`` of ``/status`` and of every ``/metrics`` sample; and the middlewares whisperd adds
to Ray's proxy, driven as plain ASGI apps."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from whisperd.app import create_app
from whisperd.config import Settings
from whisperd.ray_serve.proxy import (
    REPLICA_GONE,
    OneRequestIdMiddleware,
    StreamEndMiddleware,
    proxy_middlewares,
)
from whisperd.ray_serve.replica_metrics import label_metrics


def _app(**values: Any) -> Any:
    settings = Settings(_env_file=None, model="tiny", preload_model=False, **values)
    return create_app(settings)


def test_every_answer_names_the_replica_refusals_and_streams_too() -> None:
    app = _app(replica_name="replica-7", api_keys=["k"])
    with TestClient(app) as client:
        assert client.get("/health").headers["x-whisperd-replica"] == "replica-7"
        refused = client.get("/status")
        assert refused.status_code == 401
        assert refused.headers["x-whisperd-replica"] == "replica-7"
        status = client.get("/status", headers={"authorization": "Bearer k"})
        assert status.json()["replica"] == "replica-7"
        assert status.headers["x-whisperd-replica"] == "replica-7"


def test_an_unnamed_server_sends_no_replica_header() -> None:
    with TestClient(_app()) as client:
        answer = client.get("/status")
    assert "x-whisperd-replica" not in answer.headers
    assert answer.json()["replica"] is None


def test_a_replica_name_that_cannot_be_a_header_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be a header value"):
        TestClient(_app(replica_name="é\n")).__enter__()


def test_metrics_carry_the_replica_label_on_every_sample() -> None:
    app = _app(replica_name="r1")
    label_metrics(app, "r1")
    with TestClient(app) as client:
        client.get("/health")
        text = client.get("/metrics").text
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert samples
    assert all('replica="r1"' in line for line in samples), samples[:3]
    assert 'whisperd_http_requests_total{method="GET",replica="r1",route="/health"' in text


def _run(app: Any, scope: Scope, incoming: list[Message]) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def _proxy_that(*messages: Message, receives: int = 0) -> Any:
    """A stand-in for Ray's proxy: receives ``receives`` messages, then sends ``messages``."""

    async def proxy(scope: Scope, receive: Receive, send: Send) -> None:
        for _ in range(receives):
            await receive()
        for message in messages:
            await send(message)

    return proxy


WS: Scope = {"type": "websocket", "path": "/v1/stream", "headers": []}


def test_a_stream_whose_replica_went_away_is_closed_with_1012_and_a_reason() -> None:
    sent = _run(StreamEndMiddleware(_proxy_that({"type": "websocket.accept"})), WS, [])
    assert sent[-1] == {"type": "websocket.close", "code": 1012, "reason": REPLICA_GONE}
    assert len(REPLICA_GONE.encode()) <= 123  # fits a close frame


@pytest.mark.parametrize(
    ("proxy", "incoming"),
    [
        (
            _proxy_that({"type": "websocket.accept"}, {"type": "websocket.close", "code": 1000}),
            [],
        ),
        (
            _proxy_that({"type": "websocket.accept"}, receives=1),
            [{"type": "websocket.disconnect", "code": 1001}],
        ),
        (_proxy_that({"type": "websocket.http.response.start", "status": 403}), []),
    ],
    ids=["closed-by-replica", "client-left", "refused"],
)
def test_streams_that_ended_otherwise_are_left_alone(proxy: Any, incoming: list[Message]) -> None:
    sent = _run(StreamEndMiddleware(proxy), WS, incoming)
    assert not [m for m in sent if m.get("code") == 1012]


def test_an_answer_keeps_one_request_id() -> None:
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"x-request-id", b"abc"), (b"content-type", b"x"), (b"x-request-id", b"abc")],
    }
    sent = _run(OneRequestIdMiddleware(_proxy_that(start)), {"type": "http", "path": "/"}, [])
    assert sent[0]["headers"] == [(b"x-request-id", b"abc"), (b"content-type", b"x")]


def test_the_proxy_callback_lists_both_middlewares() -> None:
    assert [m.cls for m in proxy_middlewares()] == [OneRequestIdMiddleware, StreamEndMiddleware]

"""On Ray's proxy: a stream whose replica went away ends with a close code and a reason, and
an answer carries one request id.

A replica that dies (its process killed, its node lost) or is stopped past its grace cannot
close its streams itself; Ray's proxy then just ends the connection. :class:`StreamEndMiddleware`
runs in the proxy (Ray loads :func:`proxy_middlewares` from
:data:`PROXY_CALLBACK_VARIABLE`) and closes such a stream with 1012 ("service restart") and
:data:`REPLICA_GONE`, so the client knows to reconnect (a new stream goes to a live replica).

Ray's proxy also adds its own ``X-Request-ID`` to answers that whisperd's app already gave
one (the same id: the app keeps the one the proxy sent); :class:`OneRequestIdMiddleware`
keeps the app's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Final

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "PROXY_CALLBACK",
    "PROXY_CALLBACK_VARIABLE",
    "REPLICA_GONE",
    "OneRequestIdMiddleware",
    "StreamEndMiddleware",
    "proxy_middlewares",
]

REPLICA_GONE: Final = "The replica serving this stream went away; reconnect to start a new stream."
"""The close reason of a stream whose replica went away (close code 1012)."""

REPLICA_GONE_CODE: Final = 1012

PROXY_CALLBACK_VARIABLE: Final = "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"
"""The environment variable of Ray's processes that names the proxy's middlewares."""

PROXY_CALLBACK: Final = "whisperd.ray_serve.proxy:proxy_middlewares"
"""Its value for whisperd (set on every node: ``whisperd serve --ray`` does it for a Ray it
starts itself; docs/ray.md shows it for ``ray start`` and KubeRay)."""

_ENDED: Final = ("websocket.close", "websocket.http.response.start")


class StreamEndMiddleware:
    """Close a WebSocket that its replica left open (accepted, neither side closed) with
    :data:`REPLICA_GONE_CODE` and :data:`REPLICA_GONE`; everything else passes unchanged.

    Args:
        app: Ray's proxy (an ASGI app).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the proxy; close the stream it left open."""
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        seen: set[str] = set()

        async def watched_receive() -> Message:
            message = await receive()
            seen.add(message["type"])
            return message

        async def watched_send(message: Message) -> None:
            seen.add(message["type"])
            await send(message)

        await self.app(scope, watched_receive, watched_send)
        left_open = "websocket.accept" in seen and not seen & {*_ENDED, "websocket.disconnect"}
        if left_open:
            with contextlib.suppress(Exception):  # the client may be gone as well
                await send(
                    {"type": "websocket.close", "code": REPLICA_GONE_CODE, "reason": REPLICA_GONE}
                )


_REQUEST_ID: Final = b"x-request-id"


class OneRequestIdMiddleware:
    """Keep only the first ``x-request-id`` of each HTTP answer (the app's).

    Args:
        app: Ray's proxy (an ASGI app).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the proxy, dropping repeated request ids from the start of its answers."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_one_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": _first_request_id(message.get("headers", ()))}
            await send(message)

        await self.app(scope, receive, send_one_id)


def _first_request_id(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    kept: list[tuple[bytes, bytes]] = []
    seen = False
    for name, value in headers:
        if name.lower() == _REQUEST_ID:
            if seen:
                continue
            seen = True
        kept.append((name, value))
    return kept


def proxy_middlewares() -> list[Middleware]:
    """The middlewares of Ray's proxy (the callback :data:`PROXY_CALLBACK` names)."""
    return [Middleware(OneRequestIdMiddleware), Middleware(StreamEndMiddleware)]

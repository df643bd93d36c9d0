"""Winding a server down: let the work in flight finish, within a bound, then stop.

When the server is asked to stop (SIGTERM or SIGINT), ``app.state.draining`` turns true at
once: ``/health`` answers 503 ``shutting_down``, new HTTP work gets 503 in its API's envelope
(:class:`DrainMiddleware`) and new streams are refused in their protocol's way, while the
listener stays open so that load balancers and clients can see all of this. Then
:meth:`Drain.begin` tells the open streams to finish (:meth:`Drain.finishing`: their pending
speech becomes a final, then they close), and :meth:`Drain.poll` says when the server may
stop: once nothing is in flight, or at the latest once the bound has passed, after the work
left has been cancelled and answered (503 ``shutting_down``, or close code 1012 on a stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Final, Literal

import anyio

from whisperd.api.errors import (
    api_of,
    domain_error_response,
    error_content,
    native_error_response,
    route_path,
)
from whisperd.errors import ShuttingDownError

if TYPE_CHECKING:
    from starlette.responses import Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CANCEL_GRACE_S", "SHUTTING_DOWN", "Drain", "DrainMiddleware"]

logger = logging.getLogger(__name__)

Kind = Literal["http", "websocket"]

SHUTTING_DOWN: Final = "The server is shutting down."
"""Why a stream is closed when the server stops (close code 1012, "service restart")."""

CANCEL_GRACE_S: Final = 5.0
"""How long cancelled work has to answer and unwind before the server stops regardless."""

_REFUSED: Final = "The server is shutting down; retry on another instance."
_CANCELLED: Final = "The server shut down before the request finished; retry it."
_CLOSE_HEADERS: Final = {"connection": "close"}
_LAST_MESSAGES: Final = ("http.response.body", "websocket.http.response.body", "websocket.close")
"""Messages that end an answer, unless they say ``more_body``."""


class Drain:
    """The server's work in flight (HTTP requests and streams) and its winding down.

    Everything here runs on the event loop; :meth:`begin`, :meth:`poll` and :meth:`cancel`
    are called by the server's main loop once it has been asked to stop.
    """

    def __init__(self) -> None:
        """Start with nothing in flight and no drain begun."""
        self._work: dict[anyio.CancelScope, Kind] = {}
        self._finishing = asyncio.Event()
        self._deadline: float | None = None
        self._cancelled_at: float | None = None

    @property
    def in_flight(self) -> Counter[Kind]:
        """HTTP requests and streams in flight, by kind."""
        return Counter(self._work.values())

    @property
    def begun(self) -> bool:
        """Whether :meth:`begin` was called."""
        return self._deadline is not None

    @contextlib.contextmanager
    def track(self, kind: Kind) -> Iterator[anyio.CancelScope]:
        """Count a request or stream as in flight while the block runs.

        The block runs in the returned cancel scope, which :meth:`cancel` cancels.
        """
        with anyio.CancelScope() as scope:
            self._work[scope] = kind
            try:
                yield scope
            finally:
                del self._work[scope]

    def begin(self, timeout_s: float) -> None:
        """Tell the open streams to finish, and give the work in flight ``timeout_s`` seconds."""
        if self.begun:
            return
        self._deadline = time.monotonic() + timeout_s
        self._finishing.set()
        counts = self.in_flight
        logger.info(
            "Shutting down: waiting for %d request(s) and %d stream(s) to finish, "
            "at most %g s (a second signal quits at once)",
            counts["http"],
            counts["websocket"],
            timeout_s,
        )

    async def finishing(self) -> None:
        """Return once the server drains: a stream then finishes its pending speech and ends."""
        await self._finishing.wait()

    def poll(self) -> bool:
        """Advance the drain; True once the server may stop.

        Past the deadline the work left is cancelled; it then has :data:`CANCEL_GRACE_S` to
        answer before the server stops regardless.
        """
        if not self.begun:
            return False
        if not self._work:
            return True
        now = time.monotonic()
        assert self._deadline is not None
        if self._cancelled_at is None:
            if now >= self._deadline:
                self.cancel()
            return False
        return now >= self._cancelled_at + CANCEL_GRACE_S

    def cancel(self) -> None:
        """Cancel every request and stream in flight; each answers that the server stopped."""
        if self._cancelled_at is not None:
            return
        self._cancelled_at = time.monotonic()
        counts = self.in_flight
        logger.warning(
            "Shutdown timeout reached: stopping %d request(s) and %d stream(s)",
            counts["http"],
            counts["websocket"],
        )
        for scope in list(self._work):
            scope.cancel()


class DrainMiddleware:
    """Count the work in flight; while draining, refuse new HTTP work in the API's envelope.

    A request that arrives once ``app.state.draining`` is true gets 503 ``shutting_down``
    (OpenAI's envelope under ``/v1``, the native one elsewhere) with ``connection: close``,
    except on ``open_paths`` (``/health`` answers ``shutting_down`` itself; the docs stay
    readable). WebSockets pass: each stream route refuses in its own protocol. A request that
    arrived before the drain is served to its end (``request.state.arrived_draining`` is false,
    even if its body is still coming in). Work cancelled
    by :meth:`Drain.cancel` is answered here: 503 if its response had not started; if it had,
    an error event ends a stream of events (``data: {"error": ...}``) and any other body simply
    ends; a stream is closed with 1012.

    Args:
        app: The ASGI app to wrap.
        drain: The server's drain, shared with the server and the stream routes.
        open_paths: Paths still served while draining.
    """

    def __init__(self, app: ASGIApp, *, drain: Drain, open_paths: Collection[str]) -> None:
        self.app = app
        self._drain = drain
        self._open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse, or run and track, one request or stream."""
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        draining = _draining(scope)
        if kind == "http" and draining and route_path(scope) not in self._open_paths:
            await _shutting_down(scope, _REFUSED)(scope, receive, send)
            return
        scope.setdefault("state", {})["arrived_draining"] = draining
        watched = _Watched(send)
        with self._drain.track(kind) as cancel_scope:
            await self.app(scope, receive, watched.send)
        if cancel_scope.cancelled_caught:
            await watched.answer_cancelled(scope, receive)


def _draining(scope: Scope) -> bool:
    app = scope.get("app")
    return bool(getattr(getattr(app, "state", None), "draining", False))


def _shutting_down(scope: Scope, message: str) -> Response:
    """503 ``shutting_down`` in the envelope of the request's API, closing the connection."""
    error = ShuttingDownError(message)
    response = (
        domain_error_response(error) if api_of(scope) == "openai" else native_error_response(error)
    )
    response.headers.update(_CLOSE_HEADERS)
    return response


class _Watched:
    """A ``send`` that remembers how far the answer got, to finish it after a cancel."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        self.finished = False
        self.events = False
        """Whether the answer is a stream of server-sent events."""

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind in ("http.response.start", "websocket.accept", "websocket.http.response.start"):
            self.started = True
            self.events = any(
                name.lower() == b"content-type" and value.startswith(b"text/event-stream")
                for name, value in message.get("headers", ())
            )
        elif kind in _LAST_MESSAGES and not message.get("more_body", False):
            self.finished = True
        await self._send(message)

    async def answer_cancelled(self, scope: Scope, receive: Receive) -> None:
        """Tell the client that the server stopped its request or stream."""
        if self.finished:
            return
        # The client may have gone already: there is no one left to tell, and nothing to log.
        with contextlib.suppress(Exception):
            if scope["type"] == "websocket":
                await self._send({"type": "websocket.close", "code": 1012, "reason": SHUTTING_DOWN})
            elif self.started:
                await self._send({"type": "http.response.body", "body": self._last_event(scope)})
            else:
                await _shutting_down(scope, _CANCELLED)(scope, receive, self._send)

    def _last_event(self, scope: Scope) -> bytes:
        """The error event that ends a stream of events (nothing for any other body)."""
        if not self.events:
            return b""
        content = error_content(
            api_of(scope), _CANCELLED, type_="server_error", code=ShuttingDownError.code
        )
        return f"data: {json.dumps(content)}\n\n".encode()

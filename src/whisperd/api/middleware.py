"""Pure-ASGI middlewares: request ids, API-key authentication and slow request bodies.

They are plain ASGI callables rather than ``BaseHTTPMiddleware`` subclasses, so streaming
responses, WebSockets and context variables pass through them unchanged. Each one hands the
``lifespan`` scope to the wrapped app untouched.

Suggested order, outermost first::

    app = RequestIdMiddleware(ApiKeyMiddleware(BodyTimeoutMiddleware(app), keys=...))

so that every answer, including the 401, 400 and 408 that the inner two produce themselves,
carries an ``x-request-id`` header, and an unauthenticated client cannot make the server read
its body. The size of bodies is not capped here: routes carry FastAPI's ``max_body_size``.

Error answers come in the envelope of the API the path belongs to
(:func:`whisperd.api.errors.error_content`): OpenAI's under ``/v1``, so that the ``openai`` SDK
raises its usual exceptions, and the native ``{"detail": ...}`` elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import uuid
from collections.abc import Collection, Sequence
from contextvars import ContextVar
from typing import Final

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from whisperd.api.errors import AnsweredElsewhereError, api_of, error_response, route_path
from whisperd.api.openapi import DOCS_PATHS
from whisperd.scheduler.batcher import BATCH_CONTEXTS
from whisperd.service.log_context import KEY_FINGERPRINT, fingerprint_of_key

__all__ = [
    "DEFAULT_PUBLIC_PATHS",
    "REQUEST_ID",
    "ApiKeyMiddleware",
    "BodyTimeoutMiddleware",
    "ReplicaHeaderMiddleware",
    "RequestIdLogFilter",
    "RequestIdMiddleware",
]

REQUEST_ID: ContextVar[str | None] = ContextVar("whisperd_request_id", default=None)
"""The id of the request being served in this context, or ``None`` outside a request."""

DEFAULT_PUBLIC_PATHS: Final = ("/health", "/openapi.json", *DOCS_PATHS)
"""Paths that :class:`ApiKeyMiddleware` leaves open unless told otherwise."""

_REQUEST_ID_HEADER: Final = b"x-request-id"
_VALID_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")
_CLOSE: Final = {"connection": "close"}
_MISSING_KEY: Final = "Missing API key: send it as 'Authorization: Bearer <key>'."
_WRONG_KEY: Final = "Incorrect API key provided."


def _header_values(scope: Scope, name: bytes) -> list[bytes]:
    """Every value of the request header ``name`` (lower case), in order."""
    return [value for key, value in scope.get("headers", ()) if key.lower() == name]


# --------------------------------------------------------------------------------------------
# Request ids


class RequestIdMiddleware:
    """Give every request an id, expose it to the app and logs, and echo it to the client.

    A client-sent ``x-request-id`` is kept only if it matches ``^[A-Za-z0-9._-]{1,128}$``;
    otherwise a fresh ``uuid4().hex`` is used. The id is stored in ``scope["state"]
    ["request_id"]`` (``request.state.request_id`` in Starlette) and in :data:`REQUEST_ID` for
    the duration of the call, and is set as the ``x-request-id`` header of every HTTP response
    (replacing one the app may have set), of a WebSocket's accept, and of a WebSocket denial
    response. Place it outermost so answers made by other middlewares carry it too.

    Args:
        app: The ASGI app to wrap.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the wrapped app with a request id bound."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _request_id_for(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        header = (_REQUEST_ID_HEADER, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] in (
                "http.response.start",
                "websocket.accept",
                "websocket.http.response.start",
            ):
                message = _with_header(message, header)
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)


def _request_id_for(scope: Scope) -> str:
    """The client's ``x-request-id`` when it is well-formed, else a new uuid4 hex."""
    values = _header_values(scope, _REQUEST_ID_HEADER)
    if values:
        candidate = values[0].decode("latin-1")
        if _VALID_REQUEST_ID.fullmatch(candidate):
            return candidate
    return uuid.uuid4().hex


def _with_header(message: Message, header: tuple[bytes, bytes]) -> Message:
    """A copy of ``message`` whose headers hold ``header`` instead of any of the same name."""
    name = header[0]
    headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != name]
    headers.append(header)
    return {**message, "headers": headers}


REPLICA_HEADER: Final = "x-whisperd-replica"
"""The response header that names the server (the ``replica_name`` setting) that answered."""


class ReplicaHeaderMiddleware:
    """Name the server that answered in the :data:`REPLICA_HEADER` of every HTTP response, of a
    WebSocket's accept and of a WebSocket denial response (replacing one the app may have set).

    Behind a load balancer or Ray Serve's proxy, this tells which replica served a request.
    Place it outermost so answers made by other middlewares carry it too.

    Args:
        app: The ASGI app to wrap.
        name: The server's name (ASCII, no control characters).

    Raises:
        ValueError: if ``name`` cannot be sent as a header value.
    """

    def __init__(self, app: ASGIApp, *, name: str) -> None:
        if not name.isascii() or not name.isprintable():
            raise ValueError(f"{name!r} cannot be a header value: use printable ASCII")
        self.app = app
        self._header = (REPLICA_HEADER.encode("ascii"), name.encode("ascii"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the wrapped app, adding the header to the start of its answers."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        async def send_named(message: Message) -> None:
            if message["type"] in (
                "http.response.start",
                "websocket.accept",
                "websocket.http.response.start",
            ):
                message = _with_header(message, self._header)
            await send(message)

        await self.app(scope, receive, send_named)


class RequestIdLogFilter(logging.Filter):
    """Set ``record.request_id`` from :data:`REQUEST_ID`, or ``"-"`` outside a request.

    Pool threads run with their request's context variables, so their records name it too.
    A scheduler thread running a batched model call names every request of the batch, comma-
    separated (:data:`~whisperd.scheduler.batcher.BATCH_CONTEXTS`).

    Attach it to a *handler* (filters on a logger do not see records from child loggers) and
    use ``%(request_id)s`` in the format. A ``request_id`` passed through ``extra=`` is kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate the record; never drops it."""
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get() or _batch_request_ids() or "-"
        return True


def _batch_request_ids() -> str:
    """The request ids of the batch this scheduler thread runs, in order, without repeats."""
    ids = (context.get(REQUEST_ID) for context in BATCH_CONTEXTS.get())
    return ",".join(dict.fromkeys(request_id for request_id in ids if request_id))


# --------------------------------------------------------------------------------------------
# API keys


class ApiKeyMiddleware:
    """Require ``Authorization: Bearer <key>`` on HTTP and WebSocket requests.

    Only SHA-256 digests of the keys are kept. The presented token is hashed and compared
    against every digest with :func:`hmac.compare_digest`, without stopping at a match, so the
    time taken does not reveal which key, or how much of one, matched. The scheme is matched
    case-insensitively. WebSockets may instead offer the key as the subprotocol
    ``openai-insecure-api-key.<key>`` (what browsers running OpenAI Realtime clients send); no
    other scheme or query parameter is accepted.

    Not checked: paths in ``public_paths`` (exact match on the routed path, so ``/health/``
    is not public) and ``OPTIONS`` requests (CORS preflight). With no keys the middleware does
    nothing.

    A refused HTTP request gets 401 and ``www-authenticate: Bearer``, in the envelope of its
    path's API (OpenAI's with code ``invalid_api_key`` under ``/v1``). A refused WebSocket is
    turned away before the handshake completes: with the same 401 response where the server
    supports the ASGI ``websocket.http.response`` extension, else with a close frame, code
    1008.

    Args:
        app: The ASGI app to wrap.
        keys: Accepted API keys; empty disables authentication.
        public_paths: Paths served without a key.

    Raises:
        TypeError: ``keys`` is a single string rather than a sequence of them.
        ValueError: A key is empty.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: Sequence[str],
        public_paths: Collection[str] = DEFAULT_PUBLIC_PATHS,
    ) -> None:
        if isinstance(keys, str):
            raise TypeError("keys must be a sequence of strings, not a single string")
        if any(not key for key in keys):
            raise ValueError("API keys must not be empty")
        self.app = app
        self._digests = tuple(hashlib.sha256(key.encode()).digest() for key in keys)
        self._public_paths = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the key, then run the wrapped app or refuse the request."""
        if not self._needs_key(scope):
            await self.app(scope, receive, send)
            return
        problem = self._problem(scope)
        if problem is None:
            # The key's fingerprint (never the key) names the caller in log lines.
            presented = _bearer_token(scope) or _subprotocol_token(scope) or b""
            fingerprint = fingerprint_of_key(presented)
            scope.setdefault("state", {})["key_fingerprint"] = fingerprint
            bound = KEY_FINGERPRINT.set(fingerprint)
            try:
                await self.app(scope, receive, send)
            finally:
                KEY_FINGERPRINT.reset(bound)
        elif scope["type"] == "http":
            await _auth_error(scope, problem)(scope, receive, send)
        else:
            await _refuse_websocket(scope, receive, send, problem)

    def _needs_key(self, scope: Scope) -> bool:
        """Whether this scope must present a key."""
        if not self._digests or scope["type"] not in ("http", "websocket"):
            return False
        if scope["type"] == "http" and scope.get("method") == "OPTIONS":
            return False
        return route_path(scope) not in self._public_paths

    def _problem(self, scope: Scope) -> str | None:
        """``None`` if a valid key was presented, else the message to answer with."""
        token = _bearer_token(scope)
        if token is None and scope["type"] == "websocket":
            token = _subprotocol_token(scope)
        if token is None:
            return _MISSING_KEY
        digest = hashlib.sha256(token).digest()
        matched = False
        for known in self._digests:
            matched |= hmac.compare_digest(digest, known)
        return None if matched else _WRONG_KEY


def _bearer_token(scope: Scope) -> bytes | None:
    """The token of the first ``Authorization`` header if it uses the Bearer scheme."""
    values = _header_values(scope, b"authorization")
    if not values:
        return None
    scheme, _, token = values[0].strip().partition(b" ")
    token = token.strip(b" \t")
    if scheme.lower() != b"bearer" or not token:
        return None
    return token


_KEY_SUBPROTOCOL = b"openai-insecure-api-key."


def _subprotocol_token(scope: Scope) -> bytes | None:
    """A browser's key, sent as the WebSocket subprotocol ``openai-insecure-api-key.<key>``.

    Browsers cannot set headers on a WebSocket, so OpenAI's Realtime clients offer the key as a
    subprotocol next to ``realtime``; the server accepts only ``realtime`` back.
    """
    for value in _header_values(scope, b"sec-websocket-protocol"):
        for offered in value.split(b","):
            offered = offered.strip()
            if offered.startswith(_KEY_SUBPROTOCOL) and len(offered) > len(_KEY_SUBPROTOCOL):
                return offered[len(_KEY_SUBPROTOCOL) :]
    return None


def _auth_error(scope: Scope, message: str) -> ASGIApp:
    """The 401 for a missing or wrong key."""
    headers = {"www-authenticate": "Bearer"}
    return error_response(api_of(scope), 401, message, code="invalid_api_key", headers=headers)


async def _refuse_websocket(scope: Scope, receive: Receive, send: Send, message: str) -> None:
    """Turn a WebSocket away before accepting it."""
    first = await receive()
    if first["type"] != "websocket.connect":
        return  # The client left already.
    if "websocket.http.response" in scope.get("extensions", {}):
        await _auth_error(scope, message)(scope, receive, send)
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": message})


# --------------------------------------------------------------------------------------------
# Slow request bodies


class _ReceiveTimeoutError(AnsweredElsewhereError):
    """Raised into the app from ``receive`` to stop it once the body stalled (the middleware
    answers 408 itself)."""

    def __init__(self, timeout: float) -> None:
        self.message = f"No request body data received for {timeout:g} s."
        super().__init__(self.message)


def _content_length(scope: Scope) -> int | None:
    """The declared ``Content-Length``, ``None`` if absent.

    Raises:
        ValueError: The header is not a plain decimal number, or repeated with different values.
    """
    values = {value.strip() for value in _header_values(scope, b"content-length")}
    if not values:
        return None
    if len(values) > 1:
        raise ValueError("conflicting Content-Length headers")
    (value,) = values
    if not value.isdigit():  # bytes.isdigit is ASCII-only: rejects "", "-1", "+1", "1e3".
        raise ValueError("malformed Content-Length header")
    return int(value)


class BodyTimeoutMiddleware:
    """Bound the wait for each chunk of an HTTP request body, and refuse bad body framing.

    FastAPI caps the *size* of bodies (``max_body_size``); what no layer bounds is the *time*
    between chunks (a slowloris defence; uvicorn has none). While the body is still arriving,
    each wait in ``receive`` is bounded by ``receive_timeout`` seconds and running out gives
    408. ``receive`` then raises a private exception into the app so it unwinds; anything the
    app sends after that is dropped, and if no response had started the middleware answers
    itself, with ``connection: close``. If one had started, the response is left unfinished
    and the server closes the connection.

    A ``Content-Length`` that is malformed, negative or repeated with different values gets
    400 before the app runs, as the body's length could not be trusted.

    WebSocket and lifespan scopes pass through.

    Args:
        app: The ASGI app to wrap.
        receive_timeout: Longest wait in seconds for the next body chunk.

    Raises:
        ValueError: The timeout is not positive.
    """

    def __init__(self, app: ASGIApp, *, receive_timeout: float = 30.0) -> None:
        if receive_timeout <= 0:
            raise ValueError("receive_timeout must be positive")
        self.app = app
        self._receive_timeout = receive_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a malformed declared length, else run the app with a bounded receive."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            _content_length(scope)
        except ValueError:
            refusal = error_response(
                api_of(scope),
                400,
                "Invalid Content-Length header.",
                code="invalid_content_length",
                headers=_CLOSE,
            )
            await refusal(scope, receive, send)
            return
        await _TimedRequest(self.app, self._receive_timeout, receive, send).run(scope)


class _TimedRequest:
    """One request's run of the app under a receive timeout."""

    def __init__(self, app: ASGIApp, timeout: float, receive: Receive, send: Send) -> None:
        self._app = app
        self._timeout = timeout
        self._receive = receive
        self._send = send
        self._body_done = False
        self._started = False
        self._failure: _ReceiveTimeoutError | None = None

    async def run(self, scope: Scope) -> None:
        """Run the app; answer for it if a read timed out before its response started."""
        try:
            await self._app(scope, self.receive, self.send)
        except Exception:
            # Whatever the app raised while unwinding (ours, an ExceptionGroup holding it, or
            # an error it turned ours into) ends here once a read has failed.
            if self._failure is None:
                raise
        if self._failure is not None and not self._started:
            timeout = error_response(
                api_of(scope),
                408,
                self._failure.message,
                code="request_timeout",
                headers=_CLOSE,
            )
            await timeout(scope, self._receive, self._send)

    async def receive(self) -> Message:
        """The server's ``receive``, bounding waits while the body is incomplete."""
        if self._failure is not None:
            raise self._failure
        if self._body_done:
            return await self._receive()
        try:
            with anyio.fail_after(self._timeout):
                message = await self._receive()
        except TimeoutError:
            self._failure = _ReceiveTimeoutError(self._timeout)
            raise self._failure from None
        self._body_done = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        """The server's ``send``, muted once a read has failed."""
        if self._failure is not None:
            return
        if message["type"] == "http.response.start":
            self._started = True
        await self._send(message)

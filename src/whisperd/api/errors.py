"""One mapping from errors to HTTP answers, in the envelope of the API each path belongs to.

Paths under ``/v1`` (OpenAI-compatible) answer ``{"error": {"message", "type", "param",
"code"}}``: bad input is 4xx with ``param`` naming the field; 500 is only for real faults, with
``x-should-retry: false`` where a retry cannot help (the official SDKs retry 5xx otherwise).
Every other path speaks the native API's ``{"detail": "..."}`` (FastAPI's array for a request
that fails FastAPI's own validation), as the Faster-Whisper Transcriber's clients expect.

:func:`error_content` is the one builder of both envelopes: the exception handlers here and the
middlewares (401, 400, 408 answered before any route runs) all go through it.

An exception no handler takes is answered with a 500 (``internal_error``) by
:class:`UnexpectedErrorMiddleware`, which keeps the connection open: Starlette's own last-resort
handler raises the exception again after answering, and uvicorn then drops the connection.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from whisperd.errors import (
    AudioError,
    AudioTooLongError,
    CancelledError,
    EmptyAudioError,
    InvalidOptionError,
    InvalidWebhookUrlError,
    JobNotFinishedError,
    JobNotFoundError,
    JobStoreUnavailableError,
    ModelNotLoadedError,
    ModelUnavailableError,
    QueueFullError,
    ShuttingDownError,
    StorageFullError,
    TranscriptionError,
    UnknownModelError,
    UrlError,
    UrlTimeoutError,
    UrlTooLargeError,
    WhisperdError,
)
from whisperd.schemas.native import NativeError
from whisperd.schemas.openai import ErrorDetail, ErrorResponse
from whisperd.schemas.validation import describe, problems

if TYPE_CHECKING:
    from collections.abc import Mapping

    from fastapi import FastAPI, Request
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from whisperd.schemas.validation import ValidationFailure

logger = logging.getLogger(__name__)

Api = Literal["openai", "native"]
"""The API a request speaks: OpenAI's under ``/v1``, the native one elsewhere."""

_NO_RETRY = {"x-should-retry": "false"}
_CLOSE = {"connection": "close"}

# (class, status, OpenAI error type); the first match in order wins.
_STATUS: tuple[tuple[type[WhisperdError], int, str], ...] = (
    (AudioTooLongError, 413, "invalid_request_error"),
    (UrlTooLargeError, 413, "invalid_request_error"),
    (UrlTimeoutError, 408, "invalid_request_error"),
    (AudioError, 400, "invalid_request_error"),
    (UrlError, 400, "invalid_request_error"),
    (InvalidOptionError, 400, "invalid_request_error"),
    (InvalidWebhookUrlError, 400, "invalid_request_error"),
    (UnknownModelError, 404, "invalid_request_error"),
    (ModelNotLoadedError, 404, "invalid_request_error"),
    (JobNotFoundError, 404, "invalid_request_error"),
    (JobNotFinishedError, 409, "invalid_request_error"),
    (StorageFullError, 507, "server_error"),
    (JobStoreUnavailableError, 503, "server_error"),
    (ModelUnavailableError, 503, "server_error"),
    (QueueFullError, 503, "server_error"),
    (ShuttingDownError, 503, "server_error"),
    (CancelledError, 499, "invalid_request_error"),
    (TranscriptionError, 500, "server_error"),
)

# (class, status, how the detail is written); the first match in order wins. A model the
# client named that does not exist stays a 400 (this API's contract); a model the server cannot
# have is a 503 here as on the OpenAI API.
_NATIVE: tuple[tuple[type[WhisperdError], int, str], ...] = (
    (EmptyAudioError, 400, "Empty audio data"),
    (AudioError, 400, "Failed to process audio: {message}"),
    (InvalidOptionError, 400, "Transcription failed: {message}"),
    (InvalidWebhookUrlError, 400, "{message}"),
    (UnknownModelError, 400, "{message}"),
    (ModelNotLoadedError, 404, "{message}"),
    (ModelUnavailableError, 503, "{message}"),
    (ShuttingDownError, 503, "Server shutting down"),
    (QueueFullError, 503, "{message}"),
    (TranscriptionError, 500, "{message}"),
)


# --------------------------------------------------------------------------------------------
# The envelopes


def route_path(scope: Scope) -> str:
    """The path that Starlette routes on: ``scope["path"]`` without ``root_path``.

    This mirrors ``starlette._utils.get_route_path``, so that what is decided from a path here
    (its API, whether it needs a key) agrees with the endpoint the router picks.
    """
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    if path == root_path:
        return ""
    return path[len(root_path) :] if path[len(root_path)] == "/" else path


def api_of(scope: Scope) -> Api:
    """The API of an HTTP or WebSocket request, from its routed path."""
    path = route_path(scope)
    return "openai" if path == "/v1" or path.startswith("/v1/") else "native"


def error_content(
    api: Api,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """The body of an error answer in ``api``'s envelope.

    Args:
        api: Whose envelope: ``"openai"`` or ``"native"``.
        message: Text shown to the user as is.
        type_: OpenAI's error class, ``invalid_request_error`` or ``server_error``.
        param: The request field at fault, if any (OpenAI's envelope only).
        code: Stable machine-readable code (OpenAI's envelope only).

    Returns:
        ``{"error": {"message", "type", "param", "code"}}`` for OpenAI, ``{"detail": message}``
        for the native API, ready for :func:`json.dumps`.
    """
    if api == "native":
        return NativeError(detail=message).model_dump()
    detail = ErrorDetail(message=message, type=type_, param=param, code=code)
    return ErrorResponse(error=detail).model_dump()


def error_response(
    api: Api,
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A JSON response carrying :func:`error_content`; also usable as an ASGI app."""
    body = error_content(api, message, type_=type_, param=param, code=code)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


# --------------------------------------------------------------------------------------------
# Domain errors


def status_of(error: WhisperdError) -> tuple[int, str]:
    """HTTP status and OpenAI error type for a domain error."""
    for cls, status, type_ in _STATUS:
        if isinstance(error, cls):
            return status, type_
    return 500, "server_error"


def domain_error_response(error: WhisperdError) -> JSONResponse:
    """The OpenAI API's response for a domain error."""
    status, type_ = status_of(error)
    headers: dict[str, str] = {}
    if isinstance(error, QueueFullError):
        headers["retry-after"] = str(error.retry_after)
    elif status >= 500:
        headers.update(_NO_RETRY)
    return error_response(
        "openai",
        status,
        error.message,
        type_=type_,
        param=error.param,
        code=error.code,
        headers=headers,
    )


def native_error_response(error: WhisperdError) -> JSONResponse:
    """The native API's ``{"detail": "..."}`` response for a domain error."""
    status, template = 500, "{message}"
    for cls, code, text in _NATIVE:
        if isinstance(error, cls):
            status, template = code, text
            break
    headers = {"retry-after": str(error.retry_after)} if isinstance(error, QueueFullError) else {}
    return error_response("native", status, template.format(message=error.message), headers=headers)


def validation_response(api: Api, failure: ValidationFailure) -> JSONResponse:
    """A 400 naming every problem; OpenAI's ``param`` is the first field at fault."""
    found = problems(failure)
    param = found[0].field if found else None
    return error_response(api, 400, describe(failure), param=param, code="invalid_value")


# --------------------------------------------------------------------------------------------
# Request bodies over the limit


def body_too_large_message(upload_limit_mb: float) -> str:
    """What a 413 for a request body over the limit says: the limit and how to raise it."""
    return (
        f"Maximum content size limit ({upload_limit_mb:g} MiB) exceeded. The server's limit "
        "is set with --max-upload-mb (WHISPERD_MAX_UPLOAD_MB)."
    )


class _BodyLimitEscapeError(Exception):
    """The body limit's 413, raised again so that it is answered outside the limiter."""


async def _escape_body_limit(request: Request, exc: Exception) -> NoReturn:
    # The limit FastAPI puts around a route (``max_body_size``) raises a 413 HTTPException
    # into the route, but while the declared Content-Length is over the limit it replaces any
    # answer the route starts with its own plain-text 413. Raised again as another type, the
    # error passes the limiter and the app-wide handler below answers it in the envelope.
    raise _BodyLimitEscapeError from exc


def _answer_body_too_large(
    upload_limit_mb: float,
) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    message = body_too_large_message(upload_limit_mb)

    async def answer(request: Request, exc: Exception) -> JSONResponse:
        return error_response(
            api_of(request.scope),
            413,
            message,
            param="file",
            code="file_too_large",
            headers=_CLOSE,
        )

    return answer


# --------------------------------------------------------------------------------------------
# Handlers


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WhisperdError)
    if api_of(request.scope) == "openai":
        return domain_error_response(exc)
    return native_error_response(exc)


def fastapi_validation_response(exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own 422 (``{"detail": [{"loc", "msg", "type", "input", ...}]}``), whose
    echoed inputs may hold non-finite numbers (a JSON body's ``NaN``, ``Infinity`` or
    ``1e309``): those are written as the strings ``"nan"``, ``"inf"`` and ``"-inf"``, since
    JSON has no such numbers and FastAPI's handler would fail on them."""
    return JSONResponse({"detail": _json_safe(jsonable_encoder(exc.errors()))}, status_code=422)


def _json_safe(value: Any) -> Any:
    """``value`` with every non-finite float, however deeply nested, as its ``repr``."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    return value


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ValidationError | RequestValidationError)
    api = api_of(request.scope)
    if api == "native" and isinstance(exc, RequestValidationError):
        return fastapi_validation_response(exc)
    return validation_response(api, exc)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    type_ = "server_error" if exc.status_code >= 500 else "invalid_request_error"
    return error_response(
        api_of(request.scope), exc.status_code, str(exc.detail), type_=type_, headers=exc.headers
    )


_INTERNAL_ERROR = "The server failed while handling the request; see its log for details."


def internal_error_response(scope: Scope, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The 500 (``internal_error``) for an unexpected fault, in the envelope of the request's
    API."""
    return error_response(
        api_of(scope),
        500,
        _INTERNAL_ERROR,
        type_="server_error",
        code="internal_error",
        headers=headers,
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The last resort, for an error in a middleware outside UnexpectedErrorMiddleware. This
    # answer leaves from outside every middleware (Starlette's ServerErrorMiddleware), so the
    # request id that RequestIdMiddleware left in the scope is set here.
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    request_id = getattr(request.state, "request_id", None)
    headers = {"x-request-id": request_id} if isinstance(request_id, str) else None
    return internal_error_response(request.scope, headers)


class AnsweredElsewhereError(Exception):
    """Raised into the app by a middleware that answers the request itself (a stalled body's
    408): :class:`UnexpectedErrorMiddleware` lets it, and what it caused, pass unlogged."""


def _answered_elsewhere(exc: BaseException) -> bool:
    """Whether ``exc`` is, holds (exception groups) or was caused by an
    :class:`AnsweredElsewhereError`."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, AnsweredElsewhereError):
            return True
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return False


class UnexpectedErrorMiddleware:
    """Answer an HTTP request whose app raised an unexpected exception with a 500, and return.

    Starlette's ``ServerErrorMiddleware``, outside every middleware, answers such an
    exception too, but then raises it again (by design, for the server to log); uvicorn
    closes the connection when an app raises, so a pooled keep-alive client's next request on
    it fails with "connection reset". Here the exception is logged with its traceback and
    answered with :func:`internal_error_response`, and the app returns normally, so the
    connection stays open for the next request.

    An exception raised once the response is complete (in a background task) is logged and
    goes no further: the client has its whole answer, and the connection stays open.

    Passed on unchanged: an exception raised while the response is under way (the answer
    cannot be replaced, and closing the connection is how the client learns it is
    incomplete), one a middleware answers itself (:class:`AnsweredElsewhereError`), and
    WebSocket and lifespan scopes.

    Args:
        app: The ASGI app to wrap (the routes, behind Starlette's exception middleware).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; answer for it if it fails before its response starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = completed = False

        async def watched_send(message: Message) -> None:
            nonlocal started, completed
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                completed = True
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as exc:
            if (started and not completed) or _answered_elsewhere(exc):
                raise
            where = (scope.get("method"), route_path(scope))
            if completed:
                logger.exception("error after the response to %s %s was sent", *where)
                return
            logger.exception("unhandled error on %s %s", *where)
            await internal_error_response(scope)(scope, receive, send)


def install_error_handlers(app: FastAPI, *, upload_limit_mb: float) -> None:
    """Make every error of ``app`` leave in the envelope of the API it belongs to.

    Adds :class:`UnexpectedErrorMiddleware` as a middleware of ``app``: called before the
    other middlewares are added, it is the innermost one, right around the routes.

    Args:
        app: The app.
        upload_limit_mb: The upload limit in MiB that a 413 for a too-large body names.
    """
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_exception_handler(WhisperdError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(ValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(413, _escape_body_limit)
    app.add_exception_handler(_BodyLimitEscapeError, _answer_body_too_large(upload_limit_mb))
    app.add_exception_handler(Exception, _on_unexpected)

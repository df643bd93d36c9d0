"""One mapping from errors to HTTP answers, in the envelope of the API each path belongs to.

Paths under ``/v1`` (OpenAI-compatible) answer ``{"error": {"message", "type", "param",
"code"}}``: bad input is 4xx with ``param`` naming the field; 500 is only for real faults, with
``x-should-retry: false`` where a retry cannot help (the official SDKs retry 5xx otherwise).
Every other path speaks the native API's ``{"detail": "..."}`` (FastAPI's array for a request
that fails FastAPI's own validation), as the Faster-Whisper Transcriber's clients expect.

:func:`error_content` is the one builder of both envelopes: the exception handlers here and the
middlewares (401, 400, 408 answered before any route runs) all go through it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from fastapi.exception_handlers import request_validation_exception_handler
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
    ModelUnavailableError,
    QueueFullError,
    ShuttingDownError,
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
    from starlette.types import Scope

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
    (UnknownModelError, 404, "invalid_request_error"),
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
    (UnknownModelError, 400, "{message}"),
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


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ValidationError | RequestValidationError)
    api = api_of(request.scope)
    if api == "native" and isinstance(exc, RequestValidationError):
        return await request_validation_exception_handler(request, exc)
    return validation_response(api, exc)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    type_ = "server_error" if exc.status_code >= 500 else "invalid_request_error"
    return error_response(
        api_of(request.scope), exc.status_code, str(exc.detail), type_=type_, headers=exc.headers
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    message = "The server failed while handling the request; see its log for details."
    # This answer leaves from outside every middleware (Starlette's ServerErrorMiddleware), so
    # the request id that RequestIdMiddleware left in the scope is set here.
    request_id = getattr(request.state, "request_id", None)
    headers = {"x-request-id": request_id} if isinstance(request_id, str) else None
    return error_response(
        api_of(request.scope),
        500,
        message,
        type_="server_error",
        code="internal_error",
        headers=headers,
    )


def install_error_handlers(app: FastAPI, *, upload_limit_mb: float) -> None:
    """Make every error of ``app`` leave in the envelope of the API it belongs to.

    Args:
        app: The app.
        upload_limit_mb: The upload limit in MiB that a 413 for a too-large body names.
    """
    app.add_exception_handler(WhisperdError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(ValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(413, _escape_body_limit)
    app.add_exception_handler(_BodyLimitEscapeError, _answer_body_too_large(upload_limit_mb))
    app.add_exception_handler(Exception, _on_unexpected)

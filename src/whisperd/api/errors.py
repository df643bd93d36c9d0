"""One mapping from domain errors to HTTP status codes, in each API's own envelope.

Routes under ``/v1`` (OpenAI-compatible) answer ``{"error": {"message", "type", "param",
"code"}}``: bad input is 4xx with ``param`` naming the field; 500 is only for real faults, with
``x-should-retry: false`` where a retry cannot help (the official SDKs retry 5xx otherwise).
Every other route speaks the native API's ``{"detail": "..."}`` (FastAPI's array for a missing
field), as the Faster-Whisper Transcriber's clients expect.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from collections.abc import Mapping

    from fastapi import FastAPI, Request

logger = logging.getLogger(__name__)

_NO_RETRY = {"x-should-retry": "false"}

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


def error_body(
    message: str, *, type_: str, param: str | None = None, code: str | None = None
) -> dict[str, dict[str, str | None]]:
    """OpenAI's error envelope."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A JSON response carrying OpenAI's error envelope."""
    body = error_body(message, type_=type_, param=param, code=code)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def status_of(error: WhisperdError) -> tuple[int, str]:
    """HTTP status and OpenAI error type for a domain error."""
    for cls, status, type_ in _STATUS:
        if isinstance(error, cls):
            return status, type_
    return 500, "server_error"


def domain_error_response(error: WhisperdError) -> JSONResponse:
    """The response for a domain error."""
    status, type_ = status_of(error)
    headers: dict[str, str] = {}
    if isinstance(error, QueueFullError):
        headers["retry-after"] = str(error.retry_after)
    elif status >= 500:
        headers.update(_NO_RETRY)
    return error_response(
        status, error.message, type_=type_, param=error.param, code=error.code, headers=headers
    )


def validation_response(error: ValidationError | RequestValidationError) -> JSONResponse:
    """A 400 naming the first field at fault, like OpenAI's own validation errors."""
    first = error.errors()[0]
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query")]
    param = location[0] if location else None
    message = f"Invalid value for '{param}': {first.get('msg')}" if param else str(first.get("msg"))
    return error_response(400, message, param=param, code="invalid_value")


def _is_openai(request: Request) -> bool:
    return request.url.path.startswith("/v1/") or request.url.path == "/v1"


# (class, status, how the detail is written); the first match in order wins.
_NATIVE: tuple[tuple[type[WhisperdError], int, str], ...] = (
    (EmptyAudioError, 400, "Empty audio data"),
    (AudioError, 400, "Failed to process audio: {message}"),
    (InvalidOptionError, 400, "Transcription failed: {message}"),
    (UnknownModelError, 400, "{message}"),
    (ModelUnavailableError, 400, "{message}"),
    (ShuttingDownError, 503, "Server shutting down"),
    (QueueFullError, 503, "{message}"),
    (TranscriptionError, 500, "{message}"),
)


def native_error_response(error: WhisperdError) -> JSONResponse:
    """The native API's ``{"detail": "..."}`` response for a domain error."""
    status, template = 500, "{message}"
    for cls, code, text in _NATIVE:
        if isinstance(error, cls):
            status, template = code, text
            break
    headers = {"retry-after": str(error.retry_after)} if isinstance(error, QueueFullError) else {}
    detail = template.format(message=error.message)
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _first_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"Invalid value for '{where}': {first.get('msg')}" if where else str(first.get("msg"))


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WhisperdError)
    if _is_openai(request):
        return domain_error_response(exc)
    return native_error_response(exc)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ValidationError | RequestValidationError)
    if _is_openai(request):
        return validation_response(exc)
    if isinstance(exc, RequestValidationError):
        return await request_validation_exception_handler(request, exc)
    return JSONResponse({"detail": _first_problem(exc)}, status_code=400)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = getattr(exc, "headers", None)
    if not _is_openai(request):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)
    type_ = "server_error" if exc.status_code >= 500 else "invalid_request_error"
    return error_response(exc.status_code, str(exc.detail), type_=type_, headers=headers)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    message = "The server failed while handling the request; see its log for details."
    if not _is_openai(request):
        return JSONResponse({"detail": message}, status_code=500)
    return error_response(500, message, type_="server_error", code="internal_error")


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` leave in the envelope of the API it belongs to."""
    app.add_exception_handler(WhisperdError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(ValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)

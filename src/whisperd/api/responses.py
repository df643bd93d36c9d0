"""What the routes answer, as FastAPI ``responses=`` declarations for the OpenAPI document.

Every error status a route can answer is listed with the envelope of its API: OpenAI's
:class:`~whisperd.schemas.openai.ErrorResponse` under ``/v1``, the native
:class:`~whisperd.schemas.native.NativeError` elsewhere. Each function returns a new dict, as
FastAPI keeps what it is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from pydantic import TypeAdapter

from whisperd.schemas.native import NativeError
from whisperd.schemas.openai import (
    ErrorResponse,
    TranscriptionJson,
    TranscriptionVerbose,
    TranscriptStreamEvent,
)

__all__ = ["Responses", "native_errors", "openai_errors", "transcription_responses"]

Responses = dict[int | str, dict[str, Any]]
"""FastAPI's ``responses=``: status code to OpenAPI response (plus FastAPI's ``model``)."""

_WHY: Final[Mapping[int, str]] = MappingProxyType(
    {
        400: "A parameter, or the audio, cannot be used (`param` names the field).",
        401: "The API key is missing or wrong (only on a server started with --api-key).",
        404: "No such model.",
        408: "The request body, or the audio URL, stopped sending.",
        413: "The body is over --max-upload-mb, or the audio over its duration cap.",
        499: "The client went away; its transcription was stopped.",
        500: "The model failed.",
        503: "Busy (retry after Retry-After seconds), the model cannot be had, or the server "
        "is shutting down.",
    }
)

_STREAM = (
    "With `stream=true`: Server-Sent Events, each a `data: <JSON>` line and a blank line. "
    "A `transcript.text.delta` per decoded segment, then one `transcript.text.done` with the "
    'whole text and usage; an error after the stream began arrives as one `{"error": ...}` '
    "event. `x-itemSchema` (OpenAPI 3.2's `itemSchema`) describes the events."
)


def openai_errors(*statuses: int) -> Responses:
    """OpenAI's error envelope for each of ``statuses``."""
    return {status: {"model": ErrorResponse, "description": _WHY[status]} for status in statuses}


def native_errors(*statuses: int) -> Responses:
    """The native ``{"detail": ...}`` envelope for each of ``statuses``."""
    return {status: {"model": NativeError, "description": _WHY[status]} for status in statuses}


def _event_schema() -> dict[str, Any]:
    """An SSE event whose ``data`` holds one :data:`TranscriptStreamEvent`, as FastAPI writes it."""
    events = TypeAdapter[Any](TranscriptStreamEvent).json_schema(
        mode="serialization", ref_template="#/components/schemas/{model}"
    )
    data = {"type": "string", "contentMediaType": "application/json", "contentSchema": events}
    return {"type": "object", "required": ["data"], "properties": {"data": data}}


def transcription_responses() -> Responses:
    """A transcription route's answers: each ``response_format``, the stream, OpenAI's errors."""
    return {
        200: {
            "model": TranscriptionJson | TranscriptionVerbose,
            "description": "`json` and `verbose_json` as JSON; `text` and `srt` as "
            "`text/plain`, `vtt` as `text/vtt` (both UTF-8). " + _STREAM,
            "content": {
                "text/plain": {"schema": {"type": "string"}},
                "text/vtt": {"schema": {"type": "string"}},
                "text/event-stream": {
                    "schema": {"type": "string"},
                    "x-itemSchema": _event_schema(),
                },
            },
        },
        **openai_errors(400, 401, 404, 408, 413, 499, 500, 503),
    }

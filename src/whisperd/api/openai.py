"""OpenAI-compatible routes: ``/v1/audio/transcriptions``, ``/v1/audio/translations``, models."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from whisperd.api.deps import FetcherDep, ServiceDep, SettingsDep, accepting_work
from whisperd.api.disconnect import until_disconnected
from whisperd.api.errors import error_content, status_of
from whisperd.api.inputs import audio_source, parse_form, report_ignored
from whisperd.api.models import ServedModels, find_entry, missing_model, model_entries
from whisperd.api.responses import openai_errors, transcription_responses
from whisperd.audio.formats import render, to_json, to_verbose_json
from whisperd.engine.base import Transcript
from whisperd.errors import WhisperdError
from whisperd.schemas.openai import (
    ARRAY_FIELDS,
    OBJECT_FIELDS,
    DurationUsage,
    ModelList,
    ModelObject,
    OpenAIFields,
    TranscriptionJson,
    TranscriptionVerbose,
    TranscriptTextDelta,
    TranscriptTextDone,
    decoding_options,
    known_fields,
    refuse_unsupported,
    request_schema,
)
from whisperd.service import TranscriptionRequest

if TYPE_CHECKING:
    from whisperd.config import Settings
    from whisperd.service import Transcription, TranscriptionService

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", dependencies=[Depends(accepting_work)])

_DEFAULT_ALIASES = frozenset(
    {"", "whisper-1", "whisper-large-v3-turbo", "openai/whisper-large-v3-turbo"}
)
"""Ids OpenAI clients and hosted-Whisper scripts send that mean "the server's model"."""


def _form_doc() -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": request_schema()}},
        }
    }


def _model_name(requested: str, settings: Settings) -> str | None:
    """None (the default model) for OpenAI's ids and the configured name; else the name."""
    name = requested.strip()
    return None if name in _DEFAULT_ALIASES or name == settings.model else name


def _form_limits(settings: Settings) -> dict[str, int]:
    limit = int(settings.max_upload_mb * 1024 * 1024)
    # Base64 audio arrives as a plain field, so plain fields may be as large as an upload.
    return {"max_files": 2, "max_fields": 256, "max_part_size": limit * 4 // 3 + 1024}


def _render(transcript: Transcript, fields: OpenAIFields) -> Response:
    fmt = fields.response_format
    if fmt == "json":
        body = TranscriptionJson.model_validate(to_json(transcript))
        return JSONResponse(body.model_dump())
    if fmt == "verbose_json":
        granularities = fields.timestamp_granularities or ("segment",)
        verbose = to_verbose_json(transcript, granularities=granularities)
        return JSONResponse(
            TranscriptionVerbose.model_validate(verbose).model_dump(exclude_none=True)
        )
    media = "text/vtt" if fmt == "vtt" else "text/plain"
    return PlainTextResponse(render(transcript, fmt), media_type=f"{media}; charset=utf-8")


def _sse(payload: TranscriptTextDelta | TranscriptTextDone | dict[str, Any]) -> bytes:
    content = payload if isinstance(payload, dict) else payload.model_dump()
    return f"data: {json.dumps(content, ensure_ascii=False)}\n\n".encode()


async def _events(transcription: Transcription) -> AsyncIterator[bytes]:
    """A delta per decoded segment as soon as it exists, then the done event."""
    try:
        async for event in transcription.events():
            if isinstance(event, Transcript):
                yield _sse(
                    TranscriptTextDone(text=event.text, usage=DurationUsage.of(event.duration))
                )
            else:
                yield _sse(TranscriptTextDelta(delta=event.text))
    except WhisperdError as exc:
        _, type_ = status_of(exc)
        yield _sse(
            error_content("openai", exc.message, type_=type_, param=exc.param, code=exc.code)
        )
    except Exception:
        logger.exception("transcription stream failed")
        message = "The transcription failed on the server."
        yield _sse(error_content("openai", message, type_="server_error", code="internal_error"))


async def _transcribe(
    request: Request,
    task: str,
    service: TranscriptionService,
    fetcher: FetcherDep,
    settings: Settings,
) -> Response:
    async with request.form(**_form_limits(settings)) as raw_form:
        form = parse_form(raw_form, arrays=ARRAY_FIELDS, objects=OBJECT_FIELDS)
        refuse_unsupported(form.fields)
        fields = OpenAIFields.model_validate(form.fields)
        options = decoding_options(fields, form.fields, task=task)
        async with audio_source(form, fetcher) as source:
            transcription = await service.open(
                TranscriptionRequest(source, options, model=_model_name(fields.model, settings))
            )
    ignored = (*form.unknown(known_fields()), *fields.ignored())
    if fields.stream:
        response: Response = StreamingResponse(
            _events(transcription),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache"},
            background=BackgroundTask(transcription.aclose),
        )
    else:
        transcript = await until_disconnected(
            request, lambda cancel: transcription.run(cancel=cancel)
        )
        response = _render(transcript, fields)
    return report_ignored(response, ignored, route=request.url.path)


@router.post(
    "/audio/transcriptions",
    openapi_extra=_form_doc(),
    response_model=None,
    responses=transcription_responses(),
)
async def create_transcription(
    request: Request, service: ServiceDep, fetcher: FetcherDep, settings: SettingsDep
) -> Response:
    """Transcribe audio in its own language (OpenAI's ``audio.transcriptions.create``)."""
    return await _transcribe(request, "transcribe", service, fetcher, settings)


@router.post(
    "/audio/translations",
    openapi_extra=_form_doc(),
    response_model=None,
    responses=transcription_responses(),
)
async def create_translation(
    request: Request, service: ServiceDep, fetcher: FetcherDep, settings: SettingsDep
) -> Response:
    """Translate audio into English (OpenAI's ``audio.translations.create``)."""
    return await _transcribe(request, "translate", service, fetcher, settings)


@router.get("/models", responses=openai_errors(401, 500))
async def list_models(request: Request, settings: SettingsDep, service: ServiceDep) -> ModelList:
    """Every model this server can serve, with capabilities and accepted parameters."""
    served = ServedModels.of(service)
    entries = await asyncio.to_thread(model_entries, settings, request.app.state.started, served)
    return ModelList(data=entries)


@router.get("/models/{model_id:path}", responses=openai_errors(401, 404, 500, 503))
async def retrieve_model(
    model_id: str, request: Request, settings: SettingsDep, service: ServiceDep
) -> ModelObject:
    """One model by id (ids with ``/`` may come raw or percent-encoded).

    Raises:
        UnknownModelError: no model has that id (404).
        ModelUnavailableError: the id names the default model, which failed to load (503).
    """
    served = ServedModels.of(service)
    entries = await asyncio.to_thread(model_entries, settings, request.app.state.started, served)
    entry = find_entry(entries, model_id)
    if entry is None:
        raise missing_model(model_id, settings, served)
    return entry

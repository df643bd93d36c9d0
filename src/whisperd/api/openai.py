"""OpenAI-compatible routes: ``/v1/audio/transcriptions``, ``/v1/audio/translations``, models."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from whisperd.api.deps import FetcherDep, ServiceDep, SettingsDep, accepting_work
from whisperd.api.errors import error_body, error_response, status_of
from whisperd.api.inputs import audio_source, parse_form
from whisperd.api.models import find_entry, model_entries
from whisperd.audio.formats import render, to_json, to_verbose_json
from whisperd.errors import CancelledError, WhisperdError
from whisperd.schemas.openai import (
    ModelList,
    ModelObject,
    OpenAIFields,
    decoding_options,
    request_schema,
    usage_seconds,
)
from whisperd.service import Cancellation

if TYPE_CHECKING:
    from whisperd.audio.decode import DecodedAudio
    from whisperd.config import Settings
    from whisperd.engine.base import Engine, Segment, Transcript
    from whisperd.engine.options import TranscribeOptions
    from whisperd.service import TranscriptionService

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", dependencies=[Depends(accepting_work)])

T = TypeVar("T")

_DEFAULT_ALIASES = frozenset(
    {"", "whisper-1", "whisper-large-v3-turbo", "openai/whisper-large-v3-turbo"}
)
"""Ids OpenAI clients and hosted-Whisper scripts send that mean "the server's model"."""
_DISCONNECT_POLL_S = 0.25


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


async def _until_disconnected(request: Request, work: Awaitable[T], cancel: Cancellation) -> T:
    """Await ``work``; if the client goes away first, cancel it and raise CancelledError."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=_DISCONNECT_POLL_S)
            if done:
                return task.result()
            if await request.is_disconnected():
                cancel.cancel()
                raise CancelledError("The client disconnected; the transcription was stopped.")
    finally:
        if not task.done():
            cancel.cancel()
            task.cancel()


def _render(transcript: Transcript, fields: OpenAIFields) -> Response:
    fmt = fields.response_format
    if fmt == "json":
        return JSONResponse(to_json(transcript))
    if fmt == "verbose_json":
        granularities = fields.timestamp_granularities or ("segment",)
        return JSONResponse(to_verbose_json(transcript, granularities=granularities))
    media = "text/vtt" if fmt == "vtt" else "text/plain"
    return PlainTextResponse(render(transcript, fmt), media_type=f"{media}; charset=utf-8")


def _sse(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


async def _stream_events(
    service: TranscriptionService,
    engine: Engine,
    audio: DecodedAudio,
    options: TranscribeOptions,
    held: AsyncExitStack,
) -> AsyncIterator[bytes]:
    """Yield a delta per decoded segment as soon as it exists, then the done event.

    ``held`` keeps the request's admission slot until the stream ends.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Segment] = asyncio.Queue()
    cancel = Cancellation()

    def on_segment(segment: Segment) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, segment)

    work = asyncio.ensure_future(
        service.run(engine, audio, options, on_segment=on_segment, cancel=cancel)
    )
    try:
        while not (work.done() and queue.empty()):
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, work}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield _sse({"type": "transcript.text.delta", "delta": getter.result().text})
            else:
                getter.cancel()
        transcript = work.result()
        yield _sse(
            {
                "type": "transcript.text.done",
                "text": transcript.text,
                "usage": {"type": "duration", "seconds": usage_seconds(transcript.duration)},
            }
        )
    except WhisperdError as exc:
        _, type_ = status_of(exc)
        yield _sse(error_body(exc.message, type_=type_, param=exc.param, code=exc.code))
    except Exception:
        logger.exception("transcription stream failed")
        yield _sse(
            error_body(
                "The transcription failed on the server.",
                type_="server_error",
                code="internal_error",
            )
        )
    finally:
        if not work.done():
            cancel.cancel()
            work.cancel()
        await held.aclose()


async def _transcribe(
    request: Request,
    task: str,
    service: TranscriptionService,
    fetcher: FetcherDep,
    settings: Settings,
) -> Response:
    held = AsyncExitStack()
    async with held:
        async with request.form(**_form_limits(settings)) as raw_form:
            form = parse_form(raw_form)
            fields = OpenAIFields.model_validate(form.fields)
            options = decoding_options(fields, form.fields, task=task)
            model = _model_name(fields.model, settings)
            await held.enter_async_context(service.admission.slot())
            async with audio_source(form, fetcher) as source:
                engine, audio = await service.prepare(source, options, model=model)
        if fields.stream:
            events = _stream_events(service, engine, audio, options, held.pop_all())
            return StreamingResponse(
                events, media_type="text/event-stream", headers={"cache-control": "no-cache"}
            )
        cancel = Cancellation()
        transcript = await _until_disconnected(
            request, service.run(engine, audio, options, cancel=cancel), cancel
        )
    return _render(transcript, fields)


@router.post("/audio/transcriptions", openapi_extra=_form_doc(), response_model=None)
async def create_transcription(
    request: Request, service: ServiceDep, fetcher: FetcherDep, settings: SettingsDep
) -> Response:
    """Transcribe audio in its own language (OpenAI's ``audio.transcriptions.create``)."""
    return await _transcribe(request, "transcribe", service, fetcher, settings)


@router.post("/audio/translations", openapi_extra=_form_doc(), response_model=None)
async def create_translation(
    request: Request, service: ServiceDep, fetcher: FetcherDep, settings: SettingsDep
) -> Response:
    """Translate audio into English (OpenAI's ``audio.translations.create``)."""
    return await _transcribe(request, "translate", service, fetcher, settings)


@router.get("/models")
async def list_models(request: Request, settings: SettingsDep) -> ModelList:
    """Every model this server can serve, with capabilities and accepted parameters."""
    entries = await asyncio.to_thread(model_entries, settings, request.app.state.started)
    return ModelList(data=entries)


@router.get("/models/{model_id:path}", response_model=None)
async def retrieve_model(
    model_id: str, request: Request, settings: SettingsDep
) -> ModelObject | JSONResponse:
    """One model by id (ids with ``/`` may come raw or percent-encoded)."""
    entries = await asyncio.to_thread(model_entries, settings, request.app.state.started)
    entry = find_entry(entries, model_id)
    if entry is not None:
        return entry
    return error_response(
        404, f"The model '{model_id}' does not exist.", param="model", code="model_not_found"
    )

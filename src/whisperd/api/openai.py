"""OpenAI-compatible routes: ``/v1/audio/transcriptions``, ``/v1/audio/translations``, models."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable
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
from whisperd.api.transcript_extras import check_ask, response_extras
from whisperd.audio.formats import logprobs_json, render, to_json, to_verbose_json
from whisperd.audio.speakers import diarized_segment_id, to_diarized_json
from whisperd.engine.base import TokenLogprob, Transcript
from whisperd.errors import WhisperdError
from whisperd.schemas.diarization import (
    DIARIZE_MODEL,
    DiarizationFields,
    TranscriptionDiarized,
    TranscriptTextSegment,
)
from whisperd.schemas.openai import (
    ARRAY_FIELDS,
    OBJECT_FIELDS,
    DurationUsage,
    ModelList,
    ModelObject,
    OpenAIFields,
    TranscriptionJson,
    TranscriptionLanguage,
    TranscriptionVerbose,
    TranscriptLogprob,
    TranscriptTextDelta,
    TranscriptTextDone,
    decoding_options,
    known_fields,
    refuse_unsupported,
    request_schema,
)
from whisperd.schemas.subtitles import SubtitleFields
from whisperd.service import TranscriptionRequest

if TYPE_CHECKING:
    from whisperd.audio.subtitles import SubtitleStyle
    from whisperd.config import Settings
    from whisperd.engine.options import TranscribeOptions
    from whisperd.service import Transcription, TranscriptionService

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", dependencies=[Depends(accepting_work)])

_DEFAULT_ALIASES = frozenset(
    {"", "whisper-1", "whisper-large-v3-turbo", "openai/whisper-large-v3-turbo", DIARIZE_MODEL}
)
"""Ids OpenAI clients and hosted-Whisper scripts send that mean "the server's model"
(``gpt-4o-transcribe-diarize`` also turns diarization on)."""


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


def _render(
    transcript: Transcript,
    fields: OpenAIFields,
    options: TranscribeOptions,
    style: SubtitleStyle | None = None,
    extras: dict[str, Any] | None = None,
) -> Response:
    fmt = fields.response_format
    if fmt == "json":
        body = TranscriptionJson.model_validate(
            {**to_json(transcript, logprobs=options.logprobs), **(extras or {})}
        )
        return JSONResponse(body.model_dump(exclude_none=True))
    if fmt == "diarized_json":
        diarized = TranscriptionDiarized.model_validate(to_diarized_json(transcript))
        return JSONResponse(diarized.model_dump())
    if fmt == "verbose_json":
        granularities = fields.timestamp_granularities or ("segment",)
        verbose = {**to_verbose_json(transcript, granularities=granularities), **(extras or {})}
        return JSONResponse(
            TranscriptionVerbose.model_validate(verbose).model_dump(exclude_none=True)
        )
    media = "text/vtt" if fmt == "vtt" else "text/plain"
    text = render(transcript, fmt, style=style)
    return PlainTextResponse(text, media_type=f"{media}; charset=utf-8")


def _logprobs(entries: Iterable[TokenLogprob]) -> list[TranscriptLogprob]:
    return [TranscriptLogprob.model_validate(entry) for entry in logprobs_json(entries)]


def _sse(
    payload: TranscriptTextDelta | TranscriptTextDone | TranscriptTextSegment | dict[str, Any],
) -> bytes:
    content = payload if isinstance(payload, dict) else payload.model_dump(exclude_none=True)
    return f"data: {json.dumps(content, ensure_ascii=False)}\n\n".encode()


async def _events(
    transcription: Transcription, *, logprobs: bool, languages: bool = False
) -> AsyncIterator[bytes]:
    """A delta per decoded segment as soon as it exists, then the done event; each with its
    tokens' ``logprobs`` when asked for, the done event with the ``languages`` detected among
    the candidates when there were candidates. The deltas join to the done event's text, as
    OpenAI's do: the text's leading space is left off the first (:class:`_Deltas`)."""
    deltas = _Deltas()
    try:
        async for event in transcription.events():
            if isinstance(event, Transcript):
                done = TranscriptTextDone(
                    text=event.text,
                    usage=DurationUsage.of(event.duration),
                    logprobs=_logprobs(event.logprobs) if logprobs else None,
                    languages=TranscriptionLanguage.of(event) if languages else None,
                )
                yield _sse(done)
            else:
                entries = _logprobs(event.logprobs or ()) if logprobs else None
                yield _sse(TranscriptTextDelta(delta=deltas.of(event.text), logprobs=entries))
    except WhisperdError as exc:
        _, type_ = status_of(exc)
        yield _sse(
            error_content("openai", exc.message, type_=type_, param=exc.param, code=exc.code)
        )
    except Exception:
        logger.exception("transcription stream failed")
        message = "The transcription failed on the server."
        yield _sse(error_content("openai", message, type_="server_error", code="internal_error"))


class _Deltas:
    """The text of each delta of a stream, so that the deltas join to the transcript's text
    (its segment texts joined and trimmed), as OpenAI's do: the leading whitespace is left off
    until some text has been sent."""

    def __init__(self) -> None:
        self._started = False

    def of(self, text: str) -> str:
        """The delta for the next segment's ``text``."""
        delta = text if self._started else text.lstrip()
        self._started = self._started or bool(delta)
        return delta


async def _diarized_events(transcription: Transcription) -> AsyncIterator[bytes]:
    """Speakers are known once the whole audio is heard: then, per diarized segment, a delta
    with its ``segment_id`` and a ``transcript.text.segment`` event; then the done event."""
    deltas = _Deltas()
    try:
        transcript = await transcription.run()
        for index, segment in enumerate(s for s in transcript.segments if s.text.strip()):
            segment_id = diarized_segment_id(index)
            delta = deltas.of(segment.text)
            yield _sse(TranscriptTextDelta(delta=delta, segment_id=segment_id))
            event = TranscriptTextSegment(
                id=segment_id,
                start=segment.start,
                end=segment.end,
                text=segment.text.strip(),
                speaker=segment.speaker or "A",
            )
            yield _sse(event)
        yield _sse(
            TranscriptTextDone(text=transcript.text, usage=DurationUsage.of(transcript.duration))
        )
    except WhisperdError as exc:
        _, type_ = status_of(exc)
        yield _sse(
            error_content("openai", exc.message, type_=type_, param=exc.param, code=exc.code)
        )


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
        check_ask(fields, settings)
        options = decoding_options(fields, form.fields, task=task)
        diarization, references = DiarizationFields.model_validate(form.fields).options(
            model=fields.model, response_format=fields.response_format
        )
        style = SubtitleFields.model_validate(form.fields).style(
            fields.response_format, stream=fields.stream
        )
        if style is not None:  # cues are cut at word timings
            options = options.model_copy(update={"word_timestamps": True})
        async with audio_source(form, fetcher) as source:
            transcription = await service.open(
                TranscriptionRequest(
                    source,
                    options,
                    model=_model_name(fields.model, settings),
                    diarization=diarization,
                    speaker_references=references,
                )
            )
    ignored = (*form.unknown(known_fields()), *fields.ignored())
    if fields.stream:
        events = (
            _diarized_events(transcription)
            if diarization is not None
            else _events(transcription, logprobs=options.logprobs, languages=bool(fields.languages))
        )
        response: Response = StreamingResponse(
            events,
            media_type="text/event-stream",
            headers={"cache-control": "no-cache"},
            background=BackgroundTask(transcription.aclose),
        )
    else:
        transcript = await until_disconnected(
            request, lambda cancel: transcription.run(cancel=cancel)
        )
        extras = await response_extras(request, transcript, fields, settings)
        response = _render(transcript, fields, options, style, extras)
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

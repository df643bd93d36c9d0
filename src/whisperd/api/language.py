"""Language detection on its own: ``POST /v1/audio/language``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from whisperd.api.deps import FetcherDep, ServiceDep, SettingsDep, accepting_work
from whisperd.api.disconnect import until_disconnected
from whisperd.api.inputs import audio_source, parse_form, report_ignored
from whisperd.api.responses import openai_errors
from whisperd.schemas.language import (
    LANGUAGE_ARRAY_FIELDS,
    LanguageDetectionFields,
    LanguageDetectionResponse,
)
from whisperd.service import TranscriptionRequest

router = APIRouter(prefix="/v1", dependencies=[Depends(accepting_work)])

_DEFAULT_ALIASES = frozenset(
    {"", "whisper-1", "whisper-large-v3-turbo", "openai/whisper-large-v3-turbo"}
)
"""Ids that mean "the server's model", as on the transcription routes."""


def _form_doc() -> dict[str, Any]:
    schema = LanguageDetectionFields.model_json_schema(by_alias=True)
    schema["properties"] = {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "The audio file (or an http(s) URL as a string).",
        },
        "url": {"type": "string", "description": "http(s) URL of the audio."},
        **schema["properties"],
    }
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": schema}},
        }
    }


@router.post(
    "/audio/language",
    openapi_extra=_form_doc(),
    response_model=LanguageDetectionResponse,
    responses=openai_errors(400, 401, 404, 413, 500, 503),
)
async def detect_language(
    request: Request, service: ServiceDep, fetcher: FetcherDep, settings: SettingsDep
) -> Response:
    """Detect the spoken language: the most probable language and the ``top_n`` most probable
    ones with their probabilities, from one encoder pass of the first 30 s window (after VAD)
    through the scheduler; ``languages[]`` restricts it to candidates."""
    limit = int(settings.max_upload_mb * 1024 * 1024)
    limits = {"max_files": 2, "max_fields": 64, "max_part_size": limit * 4 // 3 + 1024}
    async with request.form(**limits) as raw_form:
        form = parse_form(raw_form, arrays=LANGUAGE_ARRAY_FIELDS)
        fields = LanguageDetectionFields.model_validate(form.fields)
        model = fields.model.strip()
        name = None if model in _DEFAULT_ALIASES or model == settings.model else model
        async with audio_source(form, fetcher) as source:
            transcription = await service.open(
                TranscriptionRequest(source, fields.options(), model=name)
            )
    detection = await until_disconnected(
        request, lambda cancel: transcription.detect_language(cancel=cancel)
    )
    body = LanguageDetectionResponse.of(detection, fields.top_n)
    response = JSONResponse(body.model_dump())
    return report_ignored(
        response, form.unknown(LanguageDetectionFields.known()), route=request.url.path
    )

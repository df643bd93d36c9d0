"""The Faster-Whisper Transcriber's native API: /health, /status, /models, /transcribe(/raw).

Its scripts run unchanged against whisperd; errors use this API's own ``{"detail": ...}`` style.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Form, Request, Response

from whisperd import __version__
from whisperd.api.deps import ServiceDep, SettingsDep, accepting_work
from whisperd.api.disconnect import until_disconnected
from whisperd.api.inputs import report_ignored
from whisperd.api.responses import native_errors, openai_errors
from whisperd.audio.decode import AudioSource
from whisperd.audio.formats import render
from whisperd.audio.turns import speaker_text
from whisperd.engine.catalogue import KNOWN_MODELS
from whisperd.errors import AudioError, EmptyAudioError, UnknownModelError
from whisperd.schemas.native import (
    NativeModel,
    NativeSegment,
    NativeSettings,
    NativeStatus,
    NativeTranscription,
    NativeWord,
    RawTranscribeRequest,
    TranscribeForm,
)
from whisperd.service import TranscriptionRequest

if TYPE_CHECKING:
    from whisperd.engine.base import Segment, Transcript
    from whisperd.service import TranscriptionService

router = APIRouter(tags=["native"])
raw_router = APIRouter(tags=["native"])
"""``/transcribe/raw`` alone: its body, base64 in JSON, is a third larger than the audio, so
the app gives it a larger body limit."""

_TRANSCRIBE_ERRORS = (400, 401, 408, 413, 500, 503)

_TEXT_PART_LIMIT = 1 << 40
"""No limit of its own on a text part: an ``audio`` part sent without a filename arrives as
one (Starlette's default limit is 1 MiB), and the body limit the app puts on this router
already bounds it."""

SEED_DISTIL_NAMES = {
    "distil-large-v3": "distil-whisper-large-v3",
    "distil-medium.en": "distil-whisper-medium.en",
    "distil-small.en": "distil-whisper-small.en",
}
"""The native API's spelling of the distil models."""


def native_model_names() -> list[str]:
    """Model names as the native API lists them."""
    return [SEED_DISTIL_NAMES.get(name, name) for name in KNOWN_MODELS]


def _segment(segment: Segment, words: bool) -> NativeSegment:
    return NativeSegment(
        start=round(segment.start, 3),
        end=round(segment.end, 3),
        text=segment.text,
        speaker=segment.speaker,
        words=[
            NativeWord(
                start=round(w.start, 3),
                end=round(w.end, 3),
                word=w.word,
                probability=w.probability,
                speaker=w.speaker,
            )
            for w in segment.words or ()
        ]
        if words
        else None,
    )


def _result(
    transcript: Transcript, settings: NativeSettings, model_used: str, began: float
) -> NativeTranscription:
    with_words = bool(settings.word_timestamps)
    return NativeTranscription(
        text=speaker_text(transcript),
        segments=[_segment(s, with_words) for s in transcript.segments]
        if settings.include_timestamps
        else [],
        language=transcript.language,
        duration=round(transcript.duration, 3),
        task=transcript.task,
        model_used=model_used,
        processing_time_seconds=round(time.perf_counter() - began, 3),
        subtitles=None
        if settings.subtitle_format is None
        else render(transcript, settings.subtitle_format, style=settings.subtitle_style()),
    )


async def _run(
    request: Request, service: TranscriptionService, source: AudioSource, native: NativeSettings
) -> NativeTranscription:
    began = time.perf_counter()
    wanted = TranscriptionRequest(
        source,
        native.options(),
        model=native.model,
        device=native.device or service.settings.device,
        compute_type=native.quantization,
        diarization=native.diarization(),
    )
    try:
        transcription = await service.open(wanted)
    except UnknownModelError:
        raise UnknownModelError(
            f"Unknown model '{native.model}'. Available: {native_model_names()}"
        ) from None
    transcript = await until_disconnected(request, lambda cancel: transcription.run(cancel=cancel))
    name = native.model or service.settings.model
    model_used = f"{name} - {transcription.model.compute_type}"
    return _result(transcript, native, model_used, began)


def _source(data: bytes, settings: NativeSettings) -> AudioSource:
    if not data:
        raise EmptyAudioError("Empty audio data")
    return AudioSource(
        data, format=settings.audio_format, sample_rate=settings.sample_rate, dtype=settings.dtype
    )


@router.post(
    "/transcribe",
    dependencies=[Depends(accepting_work)],
    responses=native_errors(*_TRANSCRIBE_ERRORS),
    form_limits={"max_part_size": _TEXT_PART_LIMIT},
)
async def transcribe(
    request: Request,
    response: Response,
    form: Annotated[TranscribeForm, Form(media_type="multipart/form-data")],
    service: ServiceDep,
) -> NativeTranscription:
    """Transcribe an uploaded file (multipart field ``audio``) with optional settings."""
    result = await _run(request, service, _source(await form.audio.read(), form), form)
    report_ignored(response, form.ignored(), route=request.url.path)
    return result


@raw_router.post(
    "/transcribe/raw",
    dependencies=[Depends(accepting_work)],
    responses=native_errors(*_TRANSCRIBE_ERRORS),
)
async def transcribe_raw(
    request: Request, response: Response, body: RawTranscribeRequest, service: ServiceDep
) -> NativeTranscription:
    """Transcribe base64 audio sent in a JSON body (``audio_data`` plus the same settings)."""
    try:
        data = base64.b64decode(body.audio_data, validate=True)
    except (binascii.Error, ValueError):
        raise AudioError("audio_data is not valid base64.", param="audio_data") from None
    result = await _run(request, service, _source(data, body), body)
    report_ignored(response, body.ignored(), route=request.url.path)
    return result


@router.get("/status", responses=native_errors(401))
@router.get("/v1/status", tags=["openai"], responses=openai_errors(401))
async def status(request: Request, service: ServiceDep, settings: SettingsDep) -> NativeStatus:
    """Queue depth, whether a transcription is running, loaded models and uptime."""
    admission = service.admission
    return NativeStatus(
        queue_depth=admission.waiting,
        transcription_active=admission.running + admission.stream_decodes > 0,
        requests_in_flight=admission.in_flight,
        queued_audio_seconds=round(admission.audio_seconds, 1),
        active_streams=admission.streams,
        stream_decodes=admission.stream_decodes,
        loaded_models=[f"{m.name} - {m.compute_type}" for m in service.models.loaded()],
        default_model=settings.model,
        uptime_seconds=round(time.monotonic() - request.app.state.started_monotonic, 1),
        version=__version__,
        replica=settings.replica_name,
    )


@router.get("/models", responses=native_errors(401))
async def models() -> dict[str, NativeModel]:
    """Every model name, keyed by name, with whether it can translate."""
    entries = {}
    for canonical, known in KNOWN_MODELS.items():
        name = SEED_DISTIL_NAMES.get(canonical, canonical)
        entries[name] = NativeModel(name=name, supports_translation=known.supports_translation)
    return entries

"""The Faster-Whisper Transcriber's native API: /health, /status, /models, /transcribe(/raw).

Its scripts run unchanged against whisperd; errors use this API's own ``{"detail": ...}`` style.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile

from whisperd import __version__
from whisperd.api.deps import ServiceDep, SettingsDep, accepting_work
from whisperd.audio.decode import AudioFormat, AudioSource, PcmDtype
from whisperd.engine.registry import KNOWN_MODELS
from whisperd.errors import AudioError, EmptyAudioError, UnknownModelError
from whisperd.schemas.native import (
    Device,
    NativeModel,
    NativeSegment,
    NativeSettings,
    NativeStatus,
    NativeTranscription,
    NativeWord,
    Quantization,
    RawTranscribeRequest,
    TaskMode,
)

if TYPE_CHECKING:
    from whisperd.engine.base import Segment, Transcript
    from whisperd.service import TranscriptionService

router = APIRouter(tags=["native"])

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
        words=[
            NativeWord(
                start=round(w.start, 3), end=round(w.end, 3), word=w.word, probability=w.probability
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
        text="\n".join(s.text.strip() for s in transcript.segments if s.text.strip()),
        segments=[_segment(s, with_words) for s in transcript.segments]
        if settings.include_timestamps
        else [],
        language=transcript.language,
        duration=round(transcript.duration, 3),
        task=transcript.task,
        model_used=model_used,
        processing_time_seconds=round(time.perf_counter() - began, 3),
    )


async def _run(
    service: TranscriptionService, source: AudioSource, settings: NativeSettings
) -> NativeTranscription:
    began = time.perf_counter()
    options = settings.options()
    device, compute_type = await service.hardware(settings.device, settings.quantization)
    async with service.admission.slot():
        try:
            engine, audio = await service.prepare(
                source, options, model=settings.model, device=device, compute_type=compute_type
            )
        except UnknownModelError:
            raise UnknownModelError(
                f"Unknown model '{settings.model}'. Available: {native_model_names()}"
            ) from None
        transcript = await service.run(engine, audio, options)
    name = settings.model or service.settings.model
    model_used = f"{name} - {engine.info.compute_type}"
    return _result(transcript, settings, model_used, began)


def _source(data: bytes, settings: NativeSettings) -> AudioSource:
    if not data:
        raise EmptyAudioError("Empty audio data")
    return AudioSource(
        data, format=settings.audio_format, sample_rate=settings.sample_rate, dtype=settings.dtype
    )


def _doc(name: str) -> str:
    return " ".join((NativeSettings.model_fields[name].description or "").split())


def form_settings(
    model: Annotated[str | None, Form(description=_doc("model"))] = None,
    quantization: Annotated[Quantization | None, Form(description=_doc("quantization"))] = None,
    device: Annotated[Device | None, Form(description=_doc("device"))] = None,
    language: Annotated[str | None, Form(description=_doc("language"))] = None,
    task_mode: Annotated[TaskMode | None, Form(description=_doc("task_mode"))] = None,
    include_timestamps: Annotated[bool | None, Form(description=_doc("include_timestamps"))] = None,
    word_timestamps: Annotated[bool | None, Form(description=_doc("word_timestamps"))] = None,
    beam_size: Annotated[int | None, Form(ge=1, le=20, description=_doc("beam_size"))] = None,
    vad_filter: Annotated[bool | None, Form(description=_doc("vad_filter"))] = None,
    condition_on_previous_text: Annotated[
        bool | None, Form(description=_doc("condition_on_previous_text"))
    ] = None,
    batch_size: Annotated[int | None, Form(ge=1, le=128, description=_doc("batch_size"))] = None,
    audio_format: Annotated[AudioFormat, Form(description=_doc("audio_format"))] = "auto",
    sample_rate: Annotated[
        int | None, Form(ge=1000, le=768_000, description=_doc("sample_rate"))
    ] = None,
    dtype: Annotated[PcmDtype | None, Form(description=_doc("dtype"))] = None,
) -> NativeSettings:
    """The multipart settings of ``/transcribe``, each documented in the API docs."""
    return NativeSettings(
        model=model,
        quantization=quantization,
        device=device,
        language=language,
        task_mode=task_mode,
        include_timestamps=include_timestamps,
        word_timestamps=word_timestamps,
        beam_size=beam_size,
        vad_filter=vad_filter,
        condition_on_previous_text=condition_on_previous_text,
        batch_size=batch_size,
        audio_format=audio_format,
        sample_rate=sample_rate,
        dtype=dtype,
    )


@router.post(
    "/transcribe", response_model=NativeTranscription, dependencies=[Depends(accepting_work)]
)
async def transcribe(
    audio: Annotated[UploadFile, File(description="Audio or video file, .npy, .pt or raw PCM.")],
    settings: Annotated[NativeSettings, Depends(form_settings)],
    service: ServiceDep,
) -> NativeTranscription:
    """Transcribe an uploaded file (multipart field ``audio``) with optional settings."""
    return await _run(service, _source(await audio.read(), settings), settings)


@router.post(
    "/transcribe/raw", response_model=NativeTranscription, dependencies=[Depends(accepting_work)]
)
async def transcribe_raw(body: RawTranscribeRequest, service: ServiceDep) -> NativeTranscription:
    """Transcribe base64 audio sent in a JSON body (``audio_data`` plus the same settings)."""
    try:
        data = base64.b64decode(body.audio_data, validate=True)
    except (binascii.Error, ValueError):
        raise AudioError("audio_data is not valid base64.", param="audio_data") from None
    return await _run(service, _source(data, body), body)


@router.get("/status")
@router.get("/v1/status", tags=["openai"])
async def status(request: Request, service: ServiceDep, settings: SettingsDep) -> NativeStatus:
    """Queue depth, whether a transcription is running, loaded models and uptime."""
    admission = service.admission
    return NativeStatus(
        queue_depth=admission.waiting,
        transcription_active=admission.running > 0,
        requests_in_flight=admission.in_flight,
        queued_audio_seconds=round(admission.audio_seconds, 1),
        active_streams=admission.streams,
        loaded_models=[f"{m.name} - {m.compute_type}" for m in service.models.loaded()],
        default_model=settings.model,
        uptime_seconds=round(time.monotonic() - request.app.state.started_monotonic, 1),
        version=__version__,
    )


@router.get("/models")
async def models() -> dict[str, NativeModel]:
    """Every model name, keyed by name, with whether it can translate."""
    entries = {}
    for canonical, known in KNOWN_MODELS.items():
        name = SEED_DISTIL_NAMES.get(canonical, canonical)
        entries[name] = NativeModel(name=name, supports_translation=known.supports_translation)
    return entries

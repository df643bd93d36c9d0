"""``WS /v1/stream``: Baseten-compatible real-time transcription (transport only).

The first text message is the metadata; then binary PCM frames of any size, and JSON control
messages: ``end_audio`` (flush, answered ``acknowledged`` then ``finished``), ``finalize``
(force an endpoint), ``keepalive`` and ``health_check``. The per-stream logic lives in
:mod:`whisperd.streaming.session`.

Close codes: 1007 invalid metadata, 1008 a limit was reached (idle time, stream length),
1011 the model could not be had, 1012 the server is shutting down, 1013 at stream capacity.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, ValidationError

from whisperd.api.deps import ServiceDep
from whisperd.api.stream_events import emitter
from whisperd.api.stream_io import StreamClosed, receive_message, run_stream, serve_stream
from whisperd.api.stream_render import BasetenRenderer
from whisperd.api.stream_speakers import StreamSpeakers
from whisperd.diarization import DiarizationUnavailableError
from whisperd.errors import InvalidOptionError, WhisperdError
from whisperd.scheduler.batcher import Priority
from whisperd.schemas.client_messages import Rejection, read_message
from whisperd.schemas.stream import StreamMetadata
from whisperd.schemas.stream_messages import (
    ControlMessage,
    EndAudio,
    EndAudioMessage,
    EndAudioStatus,
    ErrorBody,
    ErrorMessage,
    Finalize,
    HealthCheckMessage,
    HealthCheckRequest,
    KeepAlive,
)
from whisperd.schemas.validation import describe
from whisperd.streaming.pcm import PcmDecoder
from whisperd.streaming.session import StreamConfig, StreamSession

if TYPE_CHECKING:
    from whisperd.service import TranscriptionService

router = APIRouter()


def stream_config(metadata: StreamMetadata) -> StreamConfig:
    """The session settings a stream's metadata asks for (sampling fields left out keep
    :class:`StreamConfig`'s batch-route defaults)."""
    whisper, streaming, vad = (
        metadata.whisper_params,
        metadata.streaming_params,
        metadata.streaming_vad_config,
    )
    sampling = whisper.whisper_sampling_params
    finals = StreamConfig()
    language: str | None = whisper.audio_language
    if language == "auto":
        language = whisper.language_options[0] if len(whisper.language_options) == 1 else None
    return StreamConfig(
        language=language,
        prompt=whisper.prompt or None,
        word_timestamps=whisper.show_word_timestamps,
        partials=streaming.enable_partial_transcripts,
        partial_interval_s=streaming.partial_transcript_interval_s,
        max_utterance_s=streaming.final_transcript_max_duration_s,
        vad=whisper.enable_vad,
        vad_threshold=vad.threshold,
        min_silence_ms=vad.min_silence_duration_ms,
        speech_pad_ms=vad.speech_pad_ms,
        beam_size=sampling.beam_width or finals.beam_size,
        temperatures=tuple(sampling.sampling_temperatures or finals.temperatures),
        length_penalty=(
            finals.length_penalty if sampling.length_penalty is None else sampling.length_penalty
        ),
        repetition_penalty=sampling.repetition_penalty or finals.repetition_penalty,
        max_new_tokens=sampling.max_new_tokens,
    )


def _metadata(text: str) -> StreamMetadata:
    try:
        return StreamMetadata.model_validate_json(text)
    except ValidationError as exc:
        raise StreamClosed(1007, f"Invalid metadata: {describe(exc)}") from None


def _refusal(rejection: Rejection) -> str:
    """Baseten's words for a control message that is not one."""
    if rejection.reason == "not_json":
        return "Invalid JSON message."
    if rejection.reason == "invalid_field":
        return rejection.message
    if rejection.reason == "not_an_object":
        return "A control message must be a JSON object with a type."
    return f"Unhandled message type: {rejection.event_type!r}."


_Handler = Callable[[Any, StreamSession], Awaitable[None]]


class BasetenStream:
    """Moves one Baseten-protocol stream between its socket and its session."""

    def __init__(self, websocket: WebSocket, service: TranscriptionService) -> None:
        """Serve ``websocket`` with ``service``."""
        self.websocket = websocket
        self.service = service
        self.settings = service.settings
        self.outbox: asyncio.Queue[BaseModel] = asyncio.Queue()
        self.speakers: StreamSpeakers | None = None
        """With ``enable_diarization``: the stream's audio and speakers."""
        self._handlers: dict[type[BaseModel], _Handler] = {
            EndAudio: self._end_audio,
            Finalize: self._finalize,
            KeepAlive: self._keepalive,
            HealthCheckRequest: self._health_check,
        }

    async def run(self) -> None:
        """Handshake, then pump audio in and messages out until the client leaves."""
        first = await receive_message(self.websocket, self.settings.stream_idle_timeout_s)
        if first.get("text") is None:
            raise StreamClosed(1007, "The first message must be the JSON metadata.")
        metadata = _metadata(first["text"])
        pcm = PcmDecoder(metadata.streaming_params.encoding, metadata.streaming_params.sample_rate)
        emit = emitter(BasetenRenderer(metadata), self.outbox)
        try:
            if metadata.whisper_params.enable_diarization:
                encoder = await self.service.speakers.encoder(Priority.STREAM_FINAL)
                self.speakers = StreamSpeakers(encoder)
                emit = self.speakers.wrap(emit)
            session = await self.service.stream_session(
                stream_config(metadata), emit, hotwords=metadata.whisper_params.hotwords
            )
        except (DiarizationUnavailableError, InvalidOptionError) as exc:
            raise StreamClosed(1007, exc.message) from None
        except WhisperdError as exc:
            raise StreamClosed(1011, exc.message) from None
        await run_stream(
            self.websocket,
            session,
            self.outbox,
            lambda message: self._on_message(message, session, pcm),
        )

    async def _on_message(
        self, message: dict[str, Any], session: StreamSession, pcm: PcmDecoder
    ) -> None:
        if message.get("bytes") is not None:
            samples = pcm.decode(message["bytes"])
            if self.speakers is not None:
                self.speakers.feed(samples)
            await session.feed(samples)
            if session.audio_seconds > self.settings.stream_max_seconds:
                await session.end_audio()
                raise StreamClosed(1008, "The stream reached its maximum length.")
            return
        control = read_message(ControlMessage, message.get("text") or "")
        if isinstance(control, Rejection):
            await self.outbox.put(ErrorMessage(body=ErrorBody(error=_refusal(control))))
            return
        await self._handlers[type(control)](control, session)

    async def _end_audio(self, _: EndAudio, session: StreamSession) -> None:
        await self.outbox.put(EndAudioMessage(body=EndAudioStatus(status="acknowledged")))
        await session.end_audio()
        await self.outbox.put(EndAudioMessage(body=EndAudioStatus(status="finished")))

    async def _finalize(self, _: Finalize, session: StreamSession) -> None:
        await session.finalize()

    async def _keepalive(self, _: KeepAlive, session: StreamSession) -> None:
        return

    async def _health_check(self, _: HealthCheckRequest, session: StreamSession) -> None:
        await self.outbox.put(HealthCheckMessage(timestamp=time.time()))


@router.websocket("/v1/stream")
async def stream(websocket: WebSocket, service: ServiceDep) -> None:
    """Real-time transcription in Baseten's streaming protocol."""
    await websocket.accept()
    await serve_stream(websocket, service, BasetenStream(websocket, service).run)

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
import json
import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError

from whisperd.api.stream_io import StreamClosed, receive_message, run_stream, serve_stream
from whisperd.errors import WhisperdError
from whisperd.schemas.stream import StreamMetadata
from whisperd.streaming.pcm import PcmDecoder
from whisperd.streaming.session import (
    Event,
    Failed,
    Result,
    SpeechStarted,
    SpeechStopped,
    StreamConfig,
    StreamSession,
)

if TYPE_CHECKING:
    from whisperd.engine.base import Segment, Word
    from whisperd.service import TranscriptionService

router = APIRouter()


def _hallucinated(segment: Segment) -> bool:
    silent = segment.no_speech_prob > 0.6 and segment.avg_logprob < -1.0
    return silent or segment.compression_ratio > 2.4


def _word(word: Word, offset: float) -> dict[str, Any]:
    return {
        "start_time": round(offset + word.start, 3),
        "end_time": round(offset + word.end, 3),
        "word": word.word.strip(),
        "prob": word.probability,
    }


def _segment(segment: Segment, result: Result) -> dict[str, Any]:
    transcript = result.transcript
    return {
        "start_time": round(result.start + segment.start, 3),
        "end_time": round(result.start + segment.end, 3),
        "text": segment.text.strip(),
        "log_prob": segment.avg_logprob,
        "word_timestamps": [_word(w, result.start) for w in segment.words or ()],
        "speaker": None,
        "speaker_confidence": None,
        "possible_hallucination": _hallucinated(segment),
        "beam_results": [],
        "language_code": transcript.language,
        "language_prob": transcript.language_probability,
    }


def transcription_message(result: Result, metadata: StreamMetadata) -> dict[str, Any] | None:
    """Baseten's ``transcription`` message (None for a partial to be skipped)."""
    segments = [_segment(s, result) for s in result.transcript.segments]
    skip = metadata.streaming_params.skip_partial_if_hallucination
    if not result.is_final and skip and any(s["possible_hallucination"] for s in segments):
        return None
    latency = round(result.latency, 3)
    message: dict[str, Any] = {
        "type": "transcription",
        "segments": segments,
        "language_code": result.transcript.language,
        "language_prob": result.transcript.language_probability,
        "diarization": [],
        "timing_info": None,
        "enable_chunk_level_language_detection": False,
        "audio_length_sec": round(result.duration, 3),
        "is_final": result.is_final,
        "transcription_num": result.number,
        "next_partial": None,
        "pipeline_latency": latency
        if metadata.streaming_params.include_pipeline_latency_metric
        else None,
        "latency_ms": round(result.latency * 1000),
        "stable_text": result.stable,
        "unstable_text": result.unstable,
    }
    if result.end_of_audio:
        message["is_end_of_audio_flush"] = True
    return message


def render(event: Event, metadata: StreamMetadata) -> dict[str, Any] | None:
    """The JSON message for a session event (None: nothing to send)."""
    if isinstance(event, Result):
        return transcription_message(event, metadata)
    if isinstance(event, SpeechStarted | SpeechStopped):
        kind = "speech_started" if isinstance(event, SpeechStarted) else "speech_stopped"
        return {
            "type": kind,
            "audio_time": round(event.audio_time, 3),
            "transcription_num": event.number,
        }
    assert isinstance(event, Failed)
    return {
        "type": "error",
        "body": {"error": event.message, "code": event.code, "recoverable": True},
    }


def stream_config(metadata: StreamMetadata) -> StreamConfig:
    """The session settings a stream's metadata asks for."""
    whisper, streaming, vad = (
        metadata.whisper_params,
        metadata.streaming_params,
        metadata.streaming_vad_config,
    )
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
    )


def _metadata(text: str) -> StreamMetadata:
    try:
        return StreamMetadata.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'metadata'}: {e['msg']}" for e in exc.errors()
        )
        raise StreamClosed(1007, f"Invalid metadata: {problems}") from None


class BasetenStream:
    """Moves one Baseten-protocol stream between its socket and its session."""

    def __init__(self, websocket: WebSocket, service: TranscriptionService) -> None:
        """Serve ``websocket`` with ``service``."""
        self.websocket = websocket
        self.service = service
        self.settings = service.settings
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def run(self) -> None:
        """Handshake, then pump audio in and messages out until the client leaves."""
        first = await receive_message(self.websocket, self.settings.stream_idle_timeout_s)
        if first.get("text") is None:
            raise StreamClosed(1007, "The first message must be the JSON metadata.")
        metadata = _metadata(first["text"])
        config = stream_config(metadata)
        try:
            engine = await self.service.engine()
            decoder = self.service.stream_decoder(engine, config, metadata.whisper_params.hotwords)
        except WhisperdError as exc:
            raise StreamClosed(1011, exc.message) from None
        pcm = PcmDecoder(metadata.streaming_params.encoding, metadata.streaming_params.sample_rate)

        async def emit(event: Event) -> None:
            message = render(event, metadata)
            if message is not None:
                await self.outbox.put(message)

        session = StreamSession(config, decoder, self.service.stream_vad(), emit)
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
            await session.feed(pcm.decode(message["bytes"]))
            if session.audio_seconds > self.settings.stream_max_seconds:
                await session.end_audio()
                raise StreamClosed(1008, "The stream reached its maximum length.")
            return
        await self._on_control(message.get("text") or "", session)

    async def _on_control(self, text: str, session: StreamSession) -> None:
        try:
            control = json.loads(text)
            kind = control.get("type") if isinstance(control, dict) else None
        except json.JSONDecodeError:
            await self._error("Invalid JSON message.")
            return
        if kind == "end_audio":
            await self.outbox.put({"type": "end_audio", "body": {"status": "acknowledged"}})
            await session.end_audio()
            await self.outbox.put({"type": "end_audio", "body": {"status": "finished"}})
        elif kind == "finalize":
            await session.finalize()
        elif kind == "health_check":
            await self.outbox.put(
                {"type": "health_check", "body": {"healthy": True}, "timestamp": time.time()}
            )
        elif kind != "keepalive":
            await self._error(f"Unhandled message type: {kind!r}.")

    async def _error(self, text: str) -> None:
        await self.outbox.put({"type": "error", "body": {"error": text, "recoverable": True}})


@router.websocket("/v1/stream")
async def stream(websocket: WebSocket) -> None:
    """Real-time transcription in Baseten's streaming protocol."""
    service: TranscriptionService = websocket.app.state.service
    await websocket.accept()
    await serve_stream(websocket, BasetenStream(websocket, service).run)

"""``WS /v1/realtime?intent=transcription``: OpenAI Realtime transcription sessions.

Both protocol generations are spoken on one endpoint: the current one (``session.update`` with
``session.audio.input``) and the older beta one (``transcription_session.update``, chosen by
an ``OpenAI-Beta: realtime=v1`` header or by the first update the client sends). Audio comes as
base64 ``input_audio_buffer.append`` (PCM16 at 24 kHz, or G.711 mu-law); with server VAD the
server commits turns itself, otherwise the client sends ``input_audio_buffer.commit``. Deltas
carry newly stable words as the person speaks; ``completed`` carries the final transcript.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, WebSocket

from whisperd.api.stream_io import StreamClosed, refuse, run_stream, serve_stream
from whisperd.errors import WhisperdError
from whisperd.schemas.openai import usage_seconds
from whisperd.streaming.pcm import Encoding, PcmDecoder
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
    from whisperd.service import TranscriptionService

router = APIRouter()

_MIN_COMMIT_S = 0.1


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


@dataclass
class RealtimeConfig:
    """A transcription session's settings, in OpenAI's terms."""

    audio_format: str = "pcm16"
    model: str = "whisper-1"
    language: str | None = None
    prompt: str = ""
    turn_detection: dict[str, Any] | None = field(
        default_factory=lambda: {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 500,
        }
    )

    def update(self, session: dict[str, Any], *, beta: bool) -> None:
        """Apply a (partial) ``session.update`` / ``transcription_session.update``."""
        if beta:
            audio_format = session.get("input_audio_format")
            transcription = session.get("input_audio_transcription")
            turn = session.get("turn_detection", ...)
        else:
            audio_input = (session.get("audio") or {}).get("input") or {}
            fmt = audio_input.get("format")
            audio_format = (
                None
                if fmt is None
                else {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw"}.get(
                    fmt.get("type"), fmt.get("type")
                )
            )
            transcription = audio_input.get("transcription")
            turn = audio_input.get("turn_detection", ...)
        if audio_format is not None:
            self.audio_format = audio_format
        if isinstance(transcription, dict):
            self.model = transcription.get("model") or self.model
            self.language = transcription.get("language") or None
            self.prompt = transcription.get("prompt") or ""
        if turn is not ...:
            self.turn_detection = turn

    def pcm(self) -> PcmDecoder:
        """The decoder for this session's audio format."""
        formats: dict[str, tuple[Encoding, int]] = {
            "pcm16": ("pcm_s16le", 24000),
            "g711_ulaw": ("pcm_mulaw", 8000),
        }
        if self.audio_format not in formats:
            raise StreamClosed(1007, f"Unsupported input audio format {self.audio_format!r}.")
        encoding, rate = formats[self.audio_format]
        return PcmDecoder(encoding, rate)

    def stream(self) -> StreamConfig:
        """The stream session settings."""
        turn = self.turn_detection
        return StreamConfig(
            language=self.language,
            prompt=self.prompt or None,
            partials=True,
            vad=turn is not None,
            vad_threshold=float((turn or {}).get("threshold", 0.5)),
            min_silence_ms=int((turn or {}).get("silence_duration_ms", 500)),
            speech_pad_ms=int((turn or {}).get("prefix_padding_ms", 300)),
        )

    def describe(self, session_id: str, *, beta: bool) -> dict[str, Any]:
        """The session object sent in ``*.created`` / ``*.updated``."""
        transcription = {"model": self.model, "language": self.language, "prompt": self.prompt}
        if beta:
            return {
                "id": session_id,
                "object": "realtime.transcription_session",
                "input_audio_format": self.audio_format,
                "input_audio_transcription": transcription,
                "turn_detection": self.turn_detection,
                "modalities": ["text"],
            }
        fmt = (
            {"type": "audio/pcm", "rate": 24000}
            if self.audio_format == "pcm16"
            else {"type": "audio/pcmu"}
        )
        return {
            "id": session_id,
            "object": "realtime.transcription_session",
            "type": "transcription",
            "audio": {
                "input": {
                    "format": fmt,
                    "transcription": transcription,
                    "turn_detection": self.turn_detection,
                    "noise_reduction": None,
                }
            },
        }


class RealtimeStream:
    """One Realtime transcription session between its socket and its stream session."""

    def __init__(self, websocket: WebSocket, service: TranscriptionService, *, beta: bool) -> None:
        """Serve ``websocket``; ``beta`` picks the older event names."""
        self.websocket = websocket
        self.service = service
        self.beta = beta
        self.config = RealtimeConfig()
        self.session_id = _id("sess")
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.items: list[str] = [_id("item")]
        self.sent_delta: dict[str, str] = {}
        self.buffered = 0.0
        self.pcm = self.config.pcm()
        self.session: StreamSession | None = None

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"event_id": _id("event"), "type": kind, **fields}

    @property
    def _prefix(self) -> str:
        return "transcription_session" if self.beta else "session"

    async def run(self) -> None:
        """Announce the session, then run it until the client leaves."""
        await self.outbox.put(
            self._event(
                f"{self._prefix}.created",
                session=self.config.describe(self.session_id, beta=self.beta),
            )
        )
        self.session = await self._new_session()
        try:
            await run_stream(self.websocket, self.session, self.outbox, self._on_message)
        finally:
            await self.session.close()  # the one a session.update may have put in

    async def _new_session(self) -> StreamSession:
        try:
            engine = await self.service.engine()
        except WhisperdError as exc:
            raise StreamClosed(1011, exc.message) from None
        config = self.config.stream()
        decoder = self.service.stream_decoder(engine, config, None)
        return StreamSession(config, decoder, self.service.stream_vad(), self._emit)

    async def _on_message(self, message: dict[str, Any]) -> None:
        text = message.get("text")
        if text is None:
            await self._error(
                "Send JSON client events; audio goes in input_audio_buffer.append.", "invalid_event"
            )
            return
        try:
            event = json.loads(text)
        except json.JSONDecodeError:
            await self._error("The event is not valid JSON.", "invalid_json")
            return
        if not isinstance(event, dict):
            await self._error("An event must be a JSON object.", "invalid_event")
            return
        await self._dispatch(event)

    async def _dispatch(self, event: dict[str, Any]) -> None:
        kind, event_id = event.get("type"), event.get("event_id")
        if kind in ("session.update", "transcription_session.update"):
            await self._update(event, beta=kind == "transcription_session.update")
        elif kind == "input_audio_buffer.append":
            await self._append(event.get("audio"), event_id)
        elif kind == "input_audio_buffer.commit":
            await self._commit(event_id)
        elif kind == "input_audio_buffer.clear":
            assert self.session is not None
            self.session.clear()
            self.buffered = 0.0
            await self.outbox.put(self._event("input_audio_buffer.cleared"))
        else:
            await self._error(f"Unsupported event type {kind!r}.", "invalid_event", event_id)

    async def _update(self, event: dict[str, Any], *, beta: bool) -> None:
        self.beta = beta
        session = event.get("session")
        if not isinstance(session, dict):
            await self._error("session must be an object.", "invalid_value", event.get("event_id"))
            return
        self.config.update(session, beta=beta)
        self.pcm = self.config.pcm()
        assert self.session is not None
        await self.session.end_audio()
        await self.session.close()
        self.session = await self._new_session()
        self.session.start()
        await self.outbox.put(
            self._event(
                f"{self._prefix}.updated", session=self.config.describe(self.session_id, beta=beta)
            )
        )

    async def _append(self, audio: Any, event_id: str | None) -> None:
        try:
            data = base64.b64decode(audio or "", validate=True)
        except (binascii.Error, ValueError):
            await self._error("audio must be base64.", "invalid_value", event_id)
            return
        samples = self.pcm.decode(data)
        self.buffered += len(samples) / 16000
        assert self.session is not None
        await self.session.feed(samples)

    async def _commit(self, event_id: str | None) -> None:
        if self.buffered < _MIN_COMMIT_S:
            await self._error(
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"100ms of audio, but buffer only has {self.buffered * 1000:.0f}ms of audio.",
                "input_audio_buffer_commit_empty",
                event_id,
            )
            return
        assert self.session is not None
        if self.config.turn_detection is None:
            await self.session.commit()
        else:
            await self.session.finalize()
        self.buffered = 0.0

    async def _error(self, message: str, code: str, event_id: str | None = None) -> None:
        await self.outbox.put(
            self._event(
                "error",
                error={
                    "type": "invalid_request_error",
                    "code": code,
                    "message": message,
                    "param": None,
                    "event_id": event_id,
                },
            )
        )

    async def _emit(self, event: Event) -> None:
        item = self.items[-1]
        if isinstance(event, SpeechStarted):
            await self.outbox.put(
                self._event(
                    "input_audio_buffer.speech_started",
                    audio_start_ms=round(event.audio_time * 1000),
                    item_id=item,
                )
            )
        elif isinstance(event, SpeechStopped):
            await self.outbox.put(
                self._event(
                    "input_audio_buffer.speech_stopped",
                    audio_end_ms=round(event.audio_time * 1000),
                    item_id=item,
                )
            )
        elif isinstance(event, Result):
            await self._result(event, item)
        elif isinstance(event, Failed):
            await self.outbox.put(
                self._event(
                    "conversation.item.input_audio_transcription.failed",
                    item_id=item,
                    content_index=0,
                    error={
                        "type": "server_error",
                        "code": event.code,
                        "message": event.message,
                        "param": None,
                    },
                )
            )

    async def _result(self, result: Result, item: str) -> None:
        sent = self.sent_delta.get(item, "")
        if not result.is_final:
            if result.stable and result.stable.startswith(sent) and len(result.stable) > len(sent):
                delta = result.stable[len(sent) :]
                self.sent_delta[item] = result.stable
                await self.outbox.put(self._delta(item, delta))
            return
        previous = self.items[-2] if len(self.items) > 1 else None
        await self.outbox.put(
            self._event("input_audio_buffer.committed", item_id=item, previous_item_id=previous)
        )
        added = "conversation.item.created" if self.beta else "conversation.item.added"
        await self.outbox.put(
            self._event(
                added,
                previous_item_id=previous,
                item={
                    "id": item,
                    "object": "realtime.item",
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_audio", "transcript": None}],
                },
            )
        )
        text = result.transcript.text
        if not sent:
            await self.outbox.put(self._delta(item, text))
        await self.outbox.put(
            self._event(
                "conversation.item.input_audio_transcription.completed",
                item_id=item,
                content_index=0,
                transcript=text,
                usage={"type": "duration", "seconds": usage_seconds(result.duration)},
            )
        )
        self.sent_delta.pop(item, None)
        self.items.append(_id("item"))

    def _delta(self, item: str, text: str) -> dict[str, Any]:
        return self._event(
            "conversation.item.input_audio_transcription.delta",
            item_id=item,
            content_index=0,
            delta=text,
        )


@router.websocket("/v1/realtime")
async def realtime(websocket: WebSocket) -> None:
    """OpenAI Realtime transcription sessions (``intent=transcription``)."""
    service: TranscriptionService = websocket.app.state.service
    subprotocols = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol="realtime" if "realtime" in subprotocols else None)
    if websocket.query_params.get("intent", "transcription") != "transcription":
        await refuse(
            websocket, 1008, "Only transcription sessions (intent=transcription) are served here."
        )
        return
    beta = websocket.headers.get("openai-beta", "").startswith("realtime")
    await serve_stream(websocket, RealtimeStream(websocket, service, beta=beta).run)

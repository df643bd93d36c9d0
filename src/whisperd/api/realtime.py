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
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, WebSocket
from pydantic import BaseModel

from whisperd.api.deps import ServiceDep
from whisperd.api.realtime_config import RealtimeConfig
from whisperd.api.realtime_render import RealtimeRenderer
from whisperd.api.stream_events import emitter
from whisperd.api.stream_io import StreamClosed, refuse, run_stream, serve_stream
from whisperd.engine.base import SAMPLE_RATE
from whisperd.errors import WhisperdError
from whisperd.schemas.client_messages import Rejection, read_message
from whisperd.schemas.realtime_client import (
    ClientMessage,
    InputAudioBufferAppend,
    InputAudioBufferClear,
    InputAudioBufferCommit,
    SessionUpdate,
    TranscriptionSessionUpdate,
)
from whisperd.schemas.realtime_server import (
    ErrorDetail,
    ErrorEvent,
    InputAudioBufferCleared,
    new_id,
)

if TYPE_CHECKING:
    from whisperd.schemas.realtime_session import SessionChanges
    from whisperd.service import TranscriptionService
    from whisperd.streaming.session import StreamSession

router = APIRouter()

_MIN_COMMIT_S = 0.1

_Handler = Callable[[Any], Awaitable[None]]


class RealtimeStream:
    """One Realtime transcription session between its socket and its stream session."""

    def __init__(self, websocket: WebSocket, service: TranscriptionService, *, beta: bool) -> None:
        """Serve ``websocket``; ``beta`` picks the older event names."""
        self.websocket = websocket
        self.service = service
        self.config = RealtimeConfig()
        self.renderer = RealtimeRenderer(beta=beta)
        self.session_id = new_id("sess")
        self.outbox: asyncio.Queue[BaseModel] = asyncio.Queue()
        self.buffered = 0.0
        self.pcm = self.config.pcm()
        self.session: StreamSession | None = None
        self._handlers: dict[type[BaseModel], _Handler] = {
            SessionUpdate: self._update,
            TranscriptionSessionUpdate: self._update_beta,
            InputAudioBufferAppend: self._append,
            InputAudioBufferCommit: self._commit,
            InputAudioBufferClear: self._clear,
        }

    async def run(self) -> None:
        """Announce the session, then run it until the client leaves."""
        await self.outbox.put(self.renderer.session(self.config, self.session_id, created=True))
        self.session = await self._new_session()
        try:
            await run_stream(self.websocket, self.session, self.outbox, self._on_message)
        finally:
            await self.session.close()  # the one a session.update may have put in

    async def _new_session(self) -> StreamSession:
        emit = emitter(self.renderer, self.outbox)
        try:
            return await self.service.stream_session(self.config.stream(), emit)
        except WhisperdError as exc:
            raise StreamClosed(1011, exc.message) from None

    async def _on_message(self, message: dict[str, Any]) -> None:
        text = message.get("text")
        if text is None:
            await self._error(
                "Send JSON client events; audio goes in input_audio_buffer.append.", "invalid_event"
            )
            return
        event = read_message(ClientMessage, text)
        if isinstance(event, Rejection):
            await self._error(event.message, event.code, event.event_id, event.param)
            return
        await self._handlers[type(event)](event)

    async def _update(self, event: SessionUpdate) -> None:
        await self._reconfigure(event.session.changes(), beta=False)

    async def _update_beta(self, event: TranscriptionSessionUpdate) -> None:
        await self._reconfigure(event.session.changes(), beta=True)

    async def _reconfigure(self, changes: SessionChanges, *, beta: bool) -> None:
        self.renderer.beta = beta
        self.config.apply(changes)
        self.pcm = self.config.pcm()
        assert self.session is not None
        await self.session.end_audio()
        await self.session.close()
        self.session = await self._new_session()
        self.session.start()
        await self.outbox.put(self.renderer.session(self.config, self.session_id, created=False))

    async def _append(self, event: InputAudioBufferAppend) -> None:
        samples = self.pcm.decode(event.audio)
        self.buffered += len(samples) / SAMPLE_RATE
        assert self.session is not None
        await self.session.feed(samples)

    async def _commit(self, event: InputAudioBufferCommit) -> None:
        if self.buffered < _MIN_COMMIT_S:
            await self._error(
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"100ms of audio, but buffer only has {self.buffered * 1000:.0f}ms of audio.",
                "input_audio_buffer_commit_empty",
                event.event_id,
            )
            return
        assert self.session is not None
        if self.config.turn_detection is None:
            await self.session.commit()
        else:
            await self.session.finalize()
        self.buffered = 0.0

    async def _clear(self, event: InputAudioBufferClear) -> None:
        assert self.session is not None
        self.session.clear()
        self.buffered = 0.0
        await self.outbox.put(InputAudioBufferCleared())

    async def _error(
        self, message: str, code: str, event_id: str | None = None, param: str | None = None
    ) -> None:
        detail = ErrorDetail(code=code, message=message, param=param, event_id=event_id)
        await self.outbox.put(ErrorEvent(error=detail))


@router.websocket("/v1/realtime")
async def realtime(websocket: WebSocket, service: ServiceDep) -> None:
    """OpenAI Realtime transcription sessions (``intent=transcription``)."""
    subprotocols = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol="realtime" if "realtime" in subprotocols else None)
    if websocket.query_params.get("intent", "transcription") != "transcription":
        await refuse(
            websocket, 1008, "Only transcription sessions (intent=transcription) are served here."
        )
        return
    beta = websocket.headers.get("openai-beta", "").startswith("realtime")
    await serve_stream(websocket, service, RealtimeStream(websocket, service, beta=beta).run)

"""``WS /v1/realtime?intent=transcription``: OpenAI Realtime transcription sessions.

A connection without an intent is a transcription session too; any other intent
(``realtime``, ``conversation``) is refused with an ``invalid_intent`` error event and close
code 1008 (:func:`intent_refusal`).

Both protocol generations are spoken on one endpoint: the current one (``session.update`` with
``session.audio.input``) and the older beta one (``transcription_session.update``, chosen by
an ``OpenAI-Beta: realtime=v1`` header or by the first update the client sends). Audio comes as
base64 ``input_audio_buffer.append`` (PCM16 at 24 kHz, G.711 mu-law or A-law at 8 kHz); with
server VAD the server commits turns itself, otherwise the client sends
``input_audio_buffer.commit``. Deltas carry newly stable words as the person speaks;
``completed`` carries the final transcript (:mod:`whisperd.api.realtime_render`).

The input buffer is the audio appended since the last commit (the client's, or server VAD's
at the end of a turn) or clear; a commit needs at least 100 ms of it, and with server VAD a turn
in progress, else it is answered with ``input_audio_buffer_commit_empty`` (OpenAI's "Error if
the buffer is empty"). A ``session.update`` applies from then on and keeps the buffer and any
speech in progress, as OpenAI's does. Every refusal, of an event or of the whole connection,
is an ``error`` event (a refused connection is then closed with a WebSocket code).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel
from starlette.websockets import WebSocketState

from whisperd.api.deps import ServiceDep
from whisperd.api.draining import SHUTTING_DOWN
from whisperd.api.realtime_config import RealtimeConfig
from whisperd.api.realtime_render import RealtimeRenderer
from whisperd.api.stream_events import emitter
from whisperd.api.stream_io import StreamClosed, run_stream
from whisperd.errors import InvalidOptionError, QueueFullError, WhisperdError
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
    import numpy as np

    from whisperd.schemas.realtime_session import SessionChanges
    from whisperd.service import TranscriptionService
    from whisperd.streaming.session import StreamSession

router = APIRouter()

MIN_COMMIT_S = 0.1
"""Least audio a commit takes (OpenAI: "Expected at least 100ms of audio")."""
COMMIT_EMPTY = "input_audio_buffer_commit_empty"

_Handler = Callable[[Any], Awaitable[None]]


class RealtimeClosed(StreamClosed):
    """End the session with an ``error`` event, then a close code."""

    def __init__(self, code: int, error: ErrorDetail) -> None:
        """Close with WebSocket ``code`` after sending ``error``."""
        super().__init__(code, error.message)
        self.error = error


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
        self.pcm = self.config.pcm()
        self._session: StreamSession | None = None
        self._buffer_from = 0.0
        """Stream time (s) where the client's last commit or clear left the buffer empty."""
        self._handlers: dict[type[BaseModel], _Handler] = {
            SessionUpdate: self._update,
            TranscriptionSessionUpdate: self._update_beta,
            InputAudioBufferAppend: self._append,
            InputAudioBufferCommit: self._commit,
            InputAudioBufferClear: self._clear,
        }

    @property
    def session(self) -> StreamSession:
        """The stream session (built when the connection starts)."""
        assert self._session is not None
        return self._session

    @property
    def buffered_s(self) -> float:
        """Seconds of audio in the input buffer: appended since the last commit or clear."""
        committed = max(self._buffer_from, self.renderer.stopped_at or 0.0)
        return max(0.0, self.session.audio_seconds - committed)

    async def run(self) -> None:
        """Announce the session, then run it until the client leaves.

        Raises:
            RealtimeClosed: if the model cannot be had, or the stream reaches its longest.
        """
        await self.outbox.put(self.renderer.session(self.config, self.session_id, created=True))
        try:
            self._session = await self._build_session()
        except InvalidOptionError as exc:
            raise RealtimeClosed(1008, _invalid(exc, beta=self.renderer.beta)) from None
        await run_stream(
            self.websocket, self.session, self.outbox, self._on_message, on_drain=self._drain
        )

    async def _build_session(self) -> StreamSession:
        """A session on the current settings.

        Raises:
            InvalidOptionError: if the model cannot decode as the settings ask.
            RealtimeClosed: if the model cannot be had.
        """
        emit = emitter(self.renderer, self.outbox)
        try:
            stable = self.service.settings.stream_stable_partials
            config = self.config.stream(stable_partials=stable)
            return await self.service.stream_session(config, emit)
        except InvalidOptionError:
            raise
        except WhisperdError as exc:
            raise RealtimeClosed(1011, _server_error(exc.code, exc.message)) from None

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

    # -- session.update ---------------------------------------------------------------------

    async def _update(self, event: SessionUpdate) -> None:
        param = "session.audio.input.noise_reduction"
        await self._reconfigure(event.session.changes(), event.event_id, param, beta=False)

    async def _update_beta(self, event: TranscriptionSessionUpdate) -> None:
        param = "session.input_audio_noise_reduction"
        await self._reconfigure(event.session.changes(), event.event_id, param, beta=True)

    async def _reconfigure(
        self, changes: SessionChanges, event_id: str | None, noise_param: str, *, beta: bool
    ) -> None:
        """Apply an update from now on, keeping the buffer and any speech in progress.

        An update asking for noise reduction is refused whole (nothing of it applies): no
        noise filter runs, and the session never describes settings other than those that run.
        """
        if changes.noise_reduction is not None:
            message = (
                "Noise reduction is not supported: the audio is transcribed as it is sent. "
                f"Set {noise_param.rsplit('.', 1)[-1]} to null or leave it out."
            )
            await self._error(message, "unsupported_value", event_id, noise_param)
            return
        self.renderer.beta = beta
        previous = copy.copy(self.config)
        self.config.apply(changes)
        try:
            successor = await self._build_session()
        except InvalidOptionError as exc:
            self.config = previous  # nothing of a refused update applies
            detail = _invalid(exc, beta=beta)
            await self._error(detail.message, detail.code, event_id, detail.param)
            return
        if self.config.audio_format != previous.audio_format:
            await self._feed(self.pcm.decode(b"", last=True))  # the old format's last samples
            self.pcm = self.config.pcm()
        await self.session.reconfigure(successor)
        await successor.close()  # never started: this lets its hold on the model go
        await self.outbox.put(self.renderer.session(self.config, self.session_id, created=False))

    # -- the input buffer -------------------------------------------------------------------

    async def _append(self, event: InputAudioBufferAppend) -> None:
        await self._feed(self.pcm.decode(event.audio))

    async def _feed(self, samples: np.ndarray[Any, Any]) -> None:
        """Feed decoded audio to the session; end it past the stream's longest audio.

        Raises:
            RealtimeClosed: once the session's audio passes ``stream_max_seconds``.
        """
        await self.session.feed(samples)
        longest = self.service.settings.stream_max_seconds
        if self.session.audio_seconds > longest:
            await self._finish_turn()
            error = ErrorDetail(
                code="session_expired",
                message=f"The session reached its longest audio, {longest:g} seconds.",
            )
            raise RealtimeClosed(1008, error)

    async def _commit(self, event: InputAudioBufferCommit) -> None:
        refusal = self._commit_refusal()
        if refusal is not None:
            await self._error(refusal, COMMIT_EMPTY, event.event_id)
            return
        await self._commit_turn()

    async def _commit_turn(self) -> None:
        if self.config.turn_detection is None:
            await self._send(self.renderer.commit(self.session.number))
            await self.session.commit()
        else:
            await self.session.finalize()  # speech stops here: the renderer commits the turn
        self._buffer_from = self.session.audio_seconds

    async def _drain(self) -> RealtimeClosed:
        """The server is shutting down: commit the turn in progress, wait for its transcript
        (``completed``), then close with 1012."""
        await self._finish_turn()
        return RealtimeClosed(1012, _server_error("shutting_down", SHUTTING_DOWN))

    async def _finish_turn(self) -> None:
        """Commit the turn in progress (when it can be) and wait for every transcript owed."""
        if self._commit_refusal() is None:
            await self._commit_turn()
        await self.session.end_audio()

    def _commit_refusal(self) -> str | None:
        """Why the buffer cannot be committed now, or None."""
        buffered = self.buffered_s
        if buffered < MIN_COMMIT_S:
            return (
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"100ms of audio, but buffer only has {buffered * 1000:.0f}ms of audio."
            )
        if self.config.turn_detection is not None and not self.renderer.speaking:
            return (
                "Error committing input audio buffer: it holds no speech. Server VAD "
                "commits each turn when its speech stops, and none has started since."
            )
        return None

    async def _clear(self, event: InputAudioBufferClear) -> None:
        self.session.clear()
        self.renderer.cleared()
        self._buffer_from = self.session.audio_seconds
        await self.outbox.put(InputAudioBufferCleared())

    async def _send(self, events: Sequence[BaseModel]) -> None:
        for message in events:
            await self.outbox.put(message)

    async def _error(
        self, message: str, code: str, event_id: str | None = None, param: str | None = None
    ) -> None:
        detail = ErrorDetail(code=code, message=message, param=param, event_id=event_id)
        await self.outbox.put(ErrorEvent(error=detail))


def _invalid(exc: InvalidOptionError, *, beta: bool) -> ErrorDetail:
    """An option of the session the model cannot honour, named by its session field."""
    field = "session.input_audio_transcription" if beta else "session.audio.input.transcription"
    param = f"{field}.{exc.param}" if exc.param == "language" else None
    return ErrorDetail(code="invalid_value", message=exc.message, param=param)


def _server_error(code: str, message: str) -> ErrorDetail:
    return ErrorDetail(type="server_error", code=code, message=message)


async def _refuse(websocket: WebSocket, code: int, error: ErrorDetail) -> None:
    """Send ``error`` as an ``error`` event, then close with ``code``."""
    if websocket.client_state != WebSocketState.CONNECTED:
        return
    with contextlib.suppress(Exception):
        await websocket.send_json(ErrorEvent(error=error).model_dump(mode="json"))
        await websocket.close(code=code, reason=error.message[:120])


async def _serve(
    websocket: WebSocket, service: TranscriptionService, stream: RealtimeStream
) -> None:
    """Run an accepted session under a stream slot; every way it can end closes it cleanly,
    a refusal always as an ``error`` event first (1012 draining, 1013 full, or the code of a
    :class:`StreamClosed`); a client that vanished needs no answer."""
    if websocket.app.state.draining:
        await _refuse(
            websocket, 1012, _server_error("shutting_down", "The server is shutting down.")
        )
        return
    try:
        async with service.stream_capacity():
            await stream.run()
    except QueueFullError as exc:
        await _refuse(websocket, 1013, _server_error(exc.code, exc.message))
    except RealtimeClosed as exc:
        await _refuse(websocket, exc.code, exc.error)
    except StreamClosed as exc:
        await _refuse(websocket, exc.code, ErrorDetail(code="session_closed", message=exc.reason))
    except WebSocketDisconnect:
        return


def intent_refusal(intent: str | None) -> ErrorDetail | None:
    """Why a connection with the query parameter ``intent`` is refused, or ``None``.

    OpenAI opens transcription sessions with ``intent=transcription``; ``realtime`` (and any
    other value) asks for a conversation with a speech-to-speech model, which whisperd does
    not have, so it is refused rather than served as something else. A missing (or empty)
    intent is a transcription session: OpenAI's beta clients and speaches-style clients
    connect without one, and a transcription session is all this endpoint serves.
    """
    if not intent or intent == "transcription":
        return None
    message = (
        f"intent={intent!r} is not served: whisperd serves only transcription sessions. "
        "Connect with ?intent=transcription (or without an intent)."
    )
    return ErrorDetail(code="invalid_intent", message=message, param="intent")


@router.websocket("/v1/realtime")
async def realtime(websocket: WebSocket, service: ServiceDep) -> None:
    """OpenAI Realtime transcription sessions (``intent=transcription``, or no intent)."""
    subprotocols = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol="realtime" if "realtime" in subprotocols else None)
    refusal = intent_refusal(websocket.query_params.get("intent"))
    if refusal is not None:
        await _refuse(websocket, 1008, refusal)
        return
    beta = websocket.headers.get("openai-beta", "").startswith("realtime")
    await _serve(websocket, service, RealtimeStream(websocket, service, beta=beta))

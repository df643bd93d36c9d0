"""Shared WebSocket plumbing of the streaming endpoints: receive with a timeout, pump events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from whisperd.api.draining import SHUTTING_DOWN
from whisperd.errors import QueueFullError
from whisperd.schemas.stream_messages import ErrorBody, ErrorMessage

if TYPE_CHECKING:
    from pydantic import BaseModel

    from whisperd.api.draining import Drain
    from whisperd.service import TranscriptionService
    from whisperd.streaming.session import StreamSession


class StreamClosed(Exception):  # noqa: N818 - a control-flow signal, not an error
    """End the stream with a close code and a reason sent to the client."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def receive_message(websocket: WebSocket, idle_s: float) -> dict[str, Any]:
    """The next message, or StreamClosed(1008) after ``idle_s`` seconds of silence.

    Raises:
        WebSocketDisconnect: when the client went away.
    """
    try:
        async with asyncio.timeout(idle_s):
            message = dict(await websocket.receive())
    except TimeoutError:
        raise StreamClosed(1008, f"No message for {idle_s:g} seconds.") from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    return message


async def refuse(websocket: WebSocket, code: int, reason: str) -> None:
    """Tell the client why in an error message, then close with ``code``."""
    if websocket.client_state != WebSocketState.CONNECTED:
        return
    with contextlib.suppress(Exception):
        refusal = ErrorMessage(body=ErrorBody(error=reason, recoverable=False))
        await websocket.send_json(refusal.model_dump(mode="json"))
        await websocket.close(code=code, reason=reason[:120])


INBOX_MESSAGES = 16
"""Client messages read ahead of the one being handled (audio frames or control messages)."""

OnDrain = Callable[[], Awaitable[StreamClosed]]
"""Finishes a stream's pending speech when the server drains; returns how to close it."""


async def run_stream(
    websocket: WebSocket,
    session: StreamSession,
    outbox: asyncio.Queue[BaseModel],
    on_message: Callable[[dict[str, Any]], Awaitable[None]],
    *,
    on_drain: OnDrain | None = None,
) -> None:
    """Run the session until the client leaves: messages in, events out, nothing left behind.

    Messages are read on while one is handled (up to :data:`INBOX_MESSAGES` ahead), so a
    client that leaves while a flush waits for its finals is seen at once and its work
    dropped. When the server drains, the stream stops reading (after the message in hand),
    awaits ``on_drain`` (default: the session's pending speech becomes a final, and the stream
    closes with 1012), sends every event left, then ends as ``on_drain`` says.

    Raises:
        StreamClosed: when a handler, the idle timeout or the server's drain ends the stream.
    """
    pump = _Pump(websocket, session, outbox, on_message)
    drain: Drain | None = getattr(websocket.app.state, "drain", None)
    session.start()
    try:
        async with asyncio.TaskGroup() as group:
            readers = (group.create_task(pump.receive()), group.create_task(pump.handle()))
            group.create_task(pump.send())
            if drain is not None:
                group.create_task(pump.finish(drain, readers, on_drain or _end_audio(session)))
    except* WebSocketDisconnect:
        pass  # the client left: nothing to answer
    except* StreamClosed as closed:
        first = closed.exceptions[0]
        assert isinstance(first, StreamClosed)
        raise first from None
    finally:
        await session.close()


class _Pump:
    """The tasks of one stream: read client messages, handle them in order, send events."""

    def __init__(
        self,
        websocket: WebSocket,
        session: StreamSession,
        outbox: asyncio.Queue[BaseModel],
        on_message: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        self.websocket, self.session, self.outbox = websocket, session, outbox
        self.on_message = on_message
        self.idle_s: float = websocket.app.state.settings.stream_idle_timeout_s
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=INBOX_MESSAGES)
        self.handling = asyncio.Lock()

    async def receive(self) -> None:
        while True:
            try:
                message = await receive_message(self.websocket, self.idle_s)
            except StreamClosed:
                if self.session.busy or not self.inbox.empty():
                    continue  # a client waiting for owed results is not idle
                raise
            await self.inbox.put(message)

    async def handle(self) -> None:
        while True:
            message = await self.inbox.get()
            async with self.handling:
                await self.on_message(message)

    async def send(self) -> None:
        while True:
            message = await self.outbox.get()
            await self.websocket.send_json(message.model_dump(mode="json"))
            self.outbox.task_done()

    async def finish(
        self, drain: Drain, readers: tuple[asyncio.Task[None], ...], on_drain: OnDrain
    ) -> None:
        await drain.finishing()
        async with self.handling:
            for reader in readers:
                reader.cancel()
        closed = await on_drain()
        await self.outbox.join()
        raise closed


def _end_audio(session: StreamSession) -> OnDrain:
    """The default drain of a stream: a final for the pending speech, then close 1012."""

    async def end() -> StreamClosed:
        await session.end_audio()
        return StreamClosed(1012, SHUTTING_DOWN)

    return end


async def serve_stream(
    websocket: WebSocket, service: TranscriptionService, run: Callable[[], Awaitable[None]]
) -> None:
    """Run an accepted stream under a stream slot; every way it can end closes it cleanly.

    Draining servers answer 1012, a full server 1013, a :class:`StreamClosed` its own code; a
    client that vanished needs no answer.
    """
    if websocket.app.state.draining:
        await refuse(websocket, 1012, "The server is shutting down.")
        return
    try:
        async with service.stream_capacity():
            await run()
    except QueueFullError as exc:
        await refuse(websocket, 1013, exc.message)
    except StreamClosed as exc:
        await refuse(websocket, exc.code, exc.reason)
    except WebSocketDisconnect:
        return

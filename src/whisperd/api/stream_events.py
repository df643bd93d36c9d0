"""Session events to protocol messages: one renderer per stream protocol, dispatched in one place.

A stream session reports what happens (:data:`~whisperd.streaming.session.Event`); each stream
protocol says what it sends for each kind of event through a :class:`SessionEventRenderer`, and
:func:`emitter` turns a renderer into the session's event sink.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Protocol

from pydantic import BaseModel

from whisperd.streaming.session import Failed, Result, SpeechStarted, SpeechStopped

if TYPE_CHECKING:
    import asyncio

    from whisperd.streaming.session import Emit, Event


class SessionEventRenderer(Protocol):
    """The messages a stream protocol sends for each kind of session event (maybe none)."""

    def speech_started(self, event: SpeechStarted) -> Sequence[BaseModel]:
        """VAD heard speech begin."""
        ...

    def speech_stopped(self, event: SpeechStopped) -> Sequence[BaseModel]:
        """VAD heard speech end."""
        ...

    def result(self, event: Result) -> Sequence[BaseModel]:
        """A partial or final transcript."""
        ...

    def failed(self, event: Failed) -> Sequence[BaseModel]:
        """A decode failed; the stream goes on."""
        ...


_Render = Callable[[SessionEventRenderer, Any], Sequence[BaseModel]]

_BY_KIND: Final[Mapping[type[Any], _Render]] = MappingProxyType(
    {
        SpeechStarted: lambda renderer, event: renderer.speech_started(event),
        SpeechStopped: lambda renderer, event: renderer.speech_stopped(event),
        Result: lambda renderer, event: renderer.result(event),
        Failed: lambda renderer, event: renderer.failed(event),
    }
)


def render(renderer: SessionEventRenderer, event: Event) -> Sequence[BaseModel]:
    """The messages ``renderer`` sends for ``event``."""
    return _BY_KIND[type(event)](renderer, event)


def emitter(renderer: SessionEventRenderer, outbox: asyncio.Queue[BaseModel]) -> Emit:
    """A session's event sink that queues ``renderer``'s messages for the socket."""

    async def emit(event: Event) -> None:
        for message in render(renderer, event):
            await outbox.put(message)

    return emit

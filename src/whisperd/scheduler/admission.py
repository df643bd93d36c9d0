"""Admission control: bounded work in the server, counted in requests and in audio seconds.

A request holds a slot from the moment it is admitted until its result is delivered; once its
audio is decoded it also reserves its duration against the audio budget until it is
transcribed. When either bound is reached, new work is refused at once with
:class:`~whisperd.errors.QueueFullError` (the HTTP layers answer 503 with ``Retry-After`` and
the reason) instead of queueing without bound. A single request longer than the whole budget is
still admitted when nothing else is queued, so no input is refused forever.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from whisperd.errors import QueueFullError

_MIN_RETRY_S = 1
_MAX_RETRY_S = 120


class Admission:
    """Counts requests and audio seconds in flight against fixed bounds. Event-loop only."""

    def __init__(
        self, capacity: int, *, max_audio_seconds: float = math.inf, max_streams: int = 64
    ) -> None:
        """Admit at most ``capacity`` requests, ``max_audio_seconds`` of queued audio and
        ``max_streams`` real-time streams."""
        if capacity < 1 or max_audio_seconds <= 0 or max_streams < 1:
            raise ValueError("capacity, max_audio_seconds and max_streams must be positive")
        self.capacity = capacity
        self.max_streams = max_streams
        self._streams = 0
        self._stream_decodes = 0
        self.max_audio_seconds = max_audio_seconds
        self._in_flight = 0
        self._running = 0
        self._audio = 0.0
        self._throughput = 0.0
        """Recent audio seconds transcribed per wall second (0 until measured)."""

    @property
    def in_flight(self) -> int:
        """Requests admitted and not yet finished."""
        return self._in_flight

    @property
    def running(self) -> int:
        """Admitted requests whose model work has started."""
        return self._running

    @property
    def waiting(self) -> int:
        """Admitted requests not yet running on the model."""
        return self._in_flight - self._running

    @property
    def streams(self) -> int:
        """Real-time streams open."""
        return self._streams

    @property
    def stream_decodes(self) -> int:
        """Stream decodes (partials and finals) running or waiting for the model."""
        return self._stream_decodes

    @asynccontextmanager
    async def stream_slot(self) -> AsyncIterator[None]:
        """Hold one stream slot while a real-time stream is open.

        Raises:
            QueueFullError: once ``max_streams`` streams are open.
        """
        if self._streams >= self.max_streams:
            raise QueueFullError(
                f"The server is at its capacity of {self.max_streams} streams; "
                "retry in a few seconds.",
                retry_after=5,
            )
        self._streams += 1
        try:
            yield
        finally:
            self._streams -= 1

    @property
    def audio_seconds(self) -> float:
        """Audio admitted and not yet transcribed, in seconds."""
        return self._audio

    def retry_after(self) -> int:
        """Seconds after which a refused client may expect room."""
        if self._throughput <= 0:
            return 5
        wait = math.ceil(self._audio / self._throughput)
        return max(_MIN_RETRY_S, min(_MAX_RETRY_S, wait))

    def _refuse(self, reason: str) -> QueueFullError:
        after = self.retry_after()
        return QueueFullError(
            f"The server is at capacity: {reason} ({self._in_flight} requests and "
            f"{self._audio:.0f} s of audio in progress); retry in {after} seconds.",
            retry_after=after,
        )

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one request slot for the duration of the block.

        Raises:
            QueueFullError: if every slot is taken.
        """
        if self._in_flight >= self.capacity:
            raise self._refuse(f"all {self.capacity} request slots are taken")
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1

    @asynccontextmanager
    async def running_work(self, audio_seconds: float = 0.0) -> AsyncIterator[None]:
        """Reserve ``audio_seconds`` of budget and mark the request as on the model.

        Raises:
            QueueFullError: if the audio budget would be exceeded.
        """
        if self._audio > 0 and self._audio + audio_seconds > self.max_audio_seconds:
            raise self._refuse(
                f"{audio_seconds:.0f} s more audio would exceed the "
                f"{self.max_audio_seconds:.0f} s queue"
            )
        self._audio += audio_seconds
        self._running += 1
        began = time.monotonic()
        try:
            yield
        finally:
            self._running -= 1
            self._audio -= audio_seconds
            self._measure(audio_seconds, time.monotonic() - began)

    @asynccontextmanager
    async def stream_work(self, audio_seconds: float) -> AsyncIterator[None]:
        """Count one stream decode of ``audio_seconds`` while it runs; never refused (the
        stream was admitted when it opened)."""
        self._audio += audio_seconds
        self._stream_decodes += 1
        try:
            yield
        finally:
            self._stream_decodes -= 1
            self._audio -= audio_seconds

    def _measure(self, audio_seconds: float, elapsed: float) -> None:
        if audio_seconds <= 0 or elapsed <= 0:
            return
        rate = audio_seconds / elapsed * max(self._running + 1, 1)
        self._throughput = rate if self._throughput == 0 else 0.8 * self._throughput + 0.2 * rate

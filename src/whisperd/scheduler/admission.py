"""Admission control: bounded work in the server, counted in requests, audio seconds and the
estimated wait.

A request holds a slot from the moment it is admitted until its result is delivered; once its
audio is decoded it also reserves its duration against the audio budget until it is
transcribed. When either bound is reached, new work is refused at once with
:class:`~whisperd.errors.QueueFullError` (the HTTP layers answer 503 with ``Retry-After`` and
the reason) instead of queueing without bound. A single request longer than the whole budget is
still admitted when nothing else is queued, so no input is refused forever.

Admission by wait. Once the server's speed is measured (:class:`~whisperd.scheduler.throughput.
Throughput`), a new request is also refused when its estimated wait exceeds ``max_wait_s``:
work that would wait longer than a client's timeout only makes everyone slower, while a quick
503 lets the client go elsewhere or come back. The wait is the audio ahead of the request
divided by the measured speed. Ahead of it are every stream decode (streams run first), and
the first :data:`FIRST_COME_AUDIO_S` seconds of each admitted request (the scheduler serves a
request's first windows in arrival order, then lets newer requests pass it, see
:mod:`whisperd.scheduler.batcher`); requests still being decoded count as a recent request's
mean length. ``Retry-After`` is then the time until the wait is back under the bound at the
measured speed. Until a request has finished there is no speed to divide by, and only the
request and audio bounds apply. Bulk work (CLI files, durable jobs) is never refused for its
wait, since no client waits on it with a timeout, and is not counted ahead of interactive
requests, which the scheduler serves first.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from whisperd.errors import QueueFullError
from whisperd.scheduler.batcher import Priority
from whisperd.scheduler.throughput import Throughput

_MIN_RETRY_S = 1
_MAX_RETRY_S = 120

FIRST_COME_AUDIO_S = 60.0
"""Audio a new request waits behind, at most, per admitted request: the one or two windows that
the scheduler's first-come quantum covers (``batcher.FIRST_COME_CALLS``), counted high."""


class Admission:
    """Counts requests and audio seconds in flight against fixed bounds, and estimates the
    wait of a new request from the measured speed. Event-loop only."""

    def __init__(
        self,
        capacity: int,
        *,
        max_audio_seconds: float = math.inf,
        max_streams: int = 64,
        max_wait_s: float = math.inf,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Admit at most ``capacity`` requests, ``max_audio_seconds`` of queued audio,
        ``max_streams`` real-time streams, and no request whose estimated wait exceeds
        ``max_wait_s`` seconds (``math.inf``: no bound). ``clock`` gives monotonic seconds.

        Raises:
            ValueError: if a bound is not positive.
        """
        if capacity < 1 or max_audio_seconds <= 0 or max_streams < 1 or max_wait_s <= 0:
            raise ValueError(
                "capacity, max_audio_seconds, max_streams and max_wait_s must be positive"
            )
        self.capacity = capacity
        self.max_streams = max_streams
        self._streams = 0
        self._stream_decodes = 0
        self.max_audio_seconds = max_audio_seconds
        self.max_wait_s = max_wait_s
        self._in_flight = 0
        self._running = 0
        self._audio = 0.0
        self._ahead = 0.0
        """Audio a new request waits behind: streams' decodes and each running request's
        first-come share (at most :data:`FIRST_COME_AUDIO_S`)."""
        self._throughput = Throughput(clock)
        self.rejections: Counter[str] = Counter()
        """New work refused so far, by reason: ``requests`` (every slot taken), ``wait`` (the
        estimated wait), ``audio`` (the queued audio budget), ``streams`` (every stream slot
        taken). Read by the metrics (:mod:`whisperd.service.metrics`)."""

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
            self.rejections["streams"] += 1
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

    @property
    def throughput(self) -> float:
        """Measured audio seconds transcribed per busy second (0.0 until a request finished)."""
        return self._throughput.rate

    def estimated_wait(self) -> float | None:
        """Seconds a request admitted now would wait before its first window runs, or None
        while the server's speed is not measured yet (see the module's docstring)."""
        rate = self._throughput.rate
        if rate <= 0:
            return None
        decoding = self.waiting * min(self._throughput.mean_audio, FIRST_COME_AUDIO_S)
        return (self._ahead + decoding) / rate

    def retry_after(self) -> int:
        """Seconds after which a refused client may expect room: the time to transcribe the
        audio in progress at the measured speed (5 while unmeasured), 1 to 120."""
        rate = self._throughput.rate
        if rate <= 0:
            return 5
        return _clamp_retry(self._audio / rate)

    def _refuse(self, reason: str, *, kind: str) -> QueueFullError:
        self.rejections[kind] += 1
        after = self.retry_after()
        return QueueFullError(
            f"The server is at capacity: {reason} ({self._in_flight} requests and "
            f"{self._audio:.0f} s of audio in progress); retry in {after} seconds.",
            retry_after=after,
        )

    @asynccontextmanager
    async def slot(self, priority: Priority = Priority.INTERACTIVE) -> AsyncIterator[None]:
        """Hold one request slot for the duration of the block.

        Raises:
            QueueFullError: if every slot is taken, or (above bulk ``priority``) the estimated
                wait exceeds ``max_wait_s`` (its ``retry_after`` is the time until it no
                longer would).
        """
        if self._in_flight >= self.capacity:
            raise self._refuse(f"all {self.capacity} request slots are taken", kind="requests")
        if priority < Priority.BULK:
            self._check_wait()
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1

    @asynccontextmanager
    async def running_work(
        self, audio_seconds: float = 0.0, priority: Priority = Priority.INTERACTIVE
    ) -> AsyncIterator[None]:
        """Reserve ``audio_seconds`` of budget and mark the request as on the model; its first
        :data:`FIRST_COME_AUDIO_S` count in the wait of new requests unless it is bulk work.

        Raises:
            QueueFullError: if the audio budget would be exceeded.
        """
        if self._audio > 0 and self._audio + audio_seconds > self.max_audio_seconds:
            raise self._refuse(
                f"{audio_seconds:.0f} s more audio would exceed the "
                f"{self.max_audio_seconds:.0f} s queue",
                kind="audio",
            )
        share = min(audio_seconds, FIRST_COME_AUDIO_S) if priority < Priority.BULK else 0.0
        self._audio += audio_seconds
        self._ahead += share
        self._running += 1
        self._throughput.started()
        transcribed = 0.0
        try:
            yield
            transcribed = audio_seconds
        finally:
            self._running -= 1
            self._audio -= audio_seconds
            self._ahead -= share
            self._throughput.finished(transcribed)

    @asynccontextmanager
    async def stream_work(self, audio_seconds: float) -> AsyncIterator[None]:
        """Count one stream decode of ``audio_seconds`` while it runs; never refused (the
        stream was admitted when it opened)."""
        self._audio += audio_seconds
        self._ahead += audio_seconds
        self._stream_decodes += 1
        try:
            yield
        finally:
            self._stream_decodes -= 1
            self._audio -= audio_seconds
            self._ahead -= audio_seconds

    def _check_wait(self) -> None:
        """Refuse a new request whose estimated wait exceeds the bound.

        Raises:
            QueueFullError: with ``retry_after`` the seconds until the wait is back under it.
        """
        wait = self.estimated_wait()
        if wait is None or wait <= self.max_wait_s:
            return
        after = _clamp_retry(wait - self.max_wait_s)
        self.rejections["wait"] += 1
        raise QueueFullError(
            f"The server is at capacity: the estimated wait of {wait:.0f} s exceeds its "
            f"{self.max_wait_s:.0f} s bound ({self._in_flight} requests and "
            f"{self._audio:.0f} s of audio in progress); retry in {after} seconds.",
            retry_after=after,
        )


def _clamp_retry(seconds: float) -> int:
    """Whole seconds for ``Retry-After``, rounded up, from 1 to 120."""
    return max(_MIN_RETRY_S, min(_MAX_RETRY_S, math.ceil(seconds)))

"""The decoded-audio budget: how much decoded audio all requests together may hold in memory.

Decoded audio is 16 kHz mono float32: 4 bytes per sample, 230 MB per hour. A request holds it
from the moment its decode starts until its transcript is done, so the server's memory for
audio is this budget (``WHISPERD_MAX_DECODED_AUDIO_SECONDS``) plus small constants, whatever
the uploads declare. A decode reserves its audio before it holds it: the duration its container
declares, at once, where there is one, and otherwise each further minute as it decodes
(:mod:`whisperd.audio.buffer`). A reservation that would take the total over the budget is
refused with :class:`~whisperd.errors.QueueFullError` (503 with ``Retry-After``): the memory
frees itself as other requests finish. A request alone may always hold up to the longest audio
accepted (``max_audio_seconds``), so no input is refused forever.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from whisperd.errors import QueueFullError

__all__ = ["DecodedAudioBudget", "DecodedAudioReservation"]

_RETRY_AFTER_S = 5
"""Seconds a refused client is told to wait: other requests' audio frees as they finish."""


class DecodedAudioBudget:
    """Seconds of decoded audio held across requests, against one bound. Thread-safe.

    Reservations grow from decode threads and are released on the event loop.
    """

    def __init__(self, max_seconds: float) -> None:
        """Hold at most ``max_seconds`` of decoded audio in total (one request may exceed it
        alone).

        Raises:
            ValueError: if ``max_seconds`` is not positive.
        """
        if not max_seconds > 0:
            raise ValueError("max_seconds must be positive")
        self.max_seconds = max_seconds
        self._held = 0.0
        self._lock = threading.Lock()
        self.rejections = 0
        """Requests refused so far because the budget was full (for the metrics)."""

    @property
    def held_seconds(self) -> float:
        """Seconds of decoded audio reserved now, across requests."""
        with self._lock:
            return self._held

    @contextmanager
    def reservation(self) -> Iterator[DecodedAudioReservation]:
        """A reservation of nothing yet, released (whatever it grew to) when the block ends."""
        held = DecodedAudioReservation(self)
        try:
            yield held
        finally:
            held.release()

    def _grow(self, held: DecodedAudioReservation, total: float) -> None:
        """Grow ``held`` to ``total`` seconds, or refuse."""
        with self._lock:
            if held.closed:
                raise QueueFullError("The request was released while its audio was decoding.")
            if total <= held.seconds:
                return
            others = self._held - held.seconds
            if others > 0 and others + total > self.max_seconds:
                self.rejections += 1
                raise QueueFullError(
                    f"The server is at capacity: {total:.0f} s of decoded audio for this request "
                    f"and the {others:.0f} s held for others would exceed the "
                    f"{self.max_seconds:.0f} s it holds in memory at once; retry in "
                    f"{_RETRY_AFTER_S} seconds.",
                    retry_after=_RETRY_AFTER_S,
                )
            self._held = others + total
            held.seconds = total

    def _release(self, held: DecodedAudioReservation) -> None:
        with self._lock:
            if not held.closed:
                held.closed = True
                self._held = max(0.0, self._held - held.seconds)
                held.seconds = 0.0


class DecodedAudioReservation:
    """One request's share of a :class:`DecodedAudioBudget`; call it with the total seconds
    the request is about to hold (a :data:`~whisperd.audio.buffer.Reserve`)."""

    __slots__ = ("_budget", "closed", "seconds")

    def __init__(self, budget: DecodedAudioBudget) -> None:
        """An empty reservation against ``budget``; its fields change under the budget's lock."""
        self._budget = budget
        self.seconds = 0.0
        """Seconds reserved now."""
        self.closed = False
        """Whether it was released."""

    def __call__(self, total_seconds: float) -> None:
        """Hold ``total_seconds`` in all (a smaller total than before changes nothing).

        Raises:
            QueueFullError: The budget is full with other requests' audio, or the reservation
                was released already (its request is gone: the decode should stop).
        """
        self._budget._grow(self, total_seconds)

    def release(self) -> None:
        """Give the reserved seconds back; later calls are refused."""
        self._budget._release(self)

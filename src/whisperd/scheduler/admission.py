"""Admission control: a bounded number of requests in the server at once.

A request holds a slot from the moment it is admitted until its result is delivered. When every
slot is taken, new work is refused at once with :class:`~whisperd.errors.QueueFullError` (the
HTTP layers answer 503 with ``Retry-After``) instead of queueing without bound.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from whisperd.errors import QueueFullError


class Admission:
    """Counts requests in flight against a fixed capacity. Event-loop only (no locking)."""

    def __init__(self, capacity: int, *, retry_after: int = 5) -> None:
        """Admit at most ``capacity`` requests; refusals suggest waiting ``retry_after`` s."""
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.retry_after = retry_after
        self._in_flight = 0
        self._running = 0

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
        """Admitted requests still waiting for the model."""
        return self._in_flight - self._running

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the duration of the block.

        Raises:
            QueueFullError: if every slot is taken.
        """
        if self._in_flight >= self.capacity:
            raise QueueFullError(
                f"The server is at capacity ({self.capacity} requests in progress); "
                f"retry in {self.retry_after} seconds.",
                retry_after=self.retry_after,
            )
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1

    @asynccontextmanager
    async def running_work(self) -> AsyncIterator[None]:
        """Mark an admitted request as running on the model for the duration of the block."""
        self._running += 1
        try:
            yield
        finally:
            self._running -= 1

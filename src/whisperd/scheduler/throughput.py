"""The server's measured speed: audio seconds transcribed per second of busy wall time.

Admission turns queued audio into an estimated wait with it
(:mod:`whisperd.scheduler.admission`). The estimate is a ratio of recent sums: each finished
request adds its audio seconds, and the busy time (wall time during which at least one request
was running) since the previous finish. Both sums fade with busy time (half of their weight per
:data:`HALF_LIFE_S` busy seconds), not per request: the requests of one batch finish together,
the first of them bringing the batch's busy time and the others none, and fading per request
would weigh their audio against a fraction of that time (2.5 times the real speed for a batch
of eight). Idle time never counts, and a request that failed or was cancelled adds no audio
(its busy time is carried into the next finish). At low load the rate is that of one request at
a time, below what batching reaches under load: the estimate errs towards a longer wait.
A long file is credited when it ends, so for about a half-life after it the rate runs high.
"""

from __future__ import annotations

import time
from collections.abc import Callable

HALF_LIFE_S = 30.0
"""Busy seconds after which a finished request's weight in the rate has halved."""
_MEAN_WEIGHT = 0.2
"""Weight of each finished request in the mean request length."""


class Throughput:
    """Audio seconds per busy wall second over recent requests. Event-loop only.

    ``clock`` gives monotonic seconds (injected by tests).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        """Start with nothing measured."""
        self._clock = clock
        self._running = 0
        self._since = 0.0
        self._busy = 0.0
        """Busy seconds since the last finished request."""
        self._audio_sum = 0.0
        self._busy_sum = 0.0
        self._mean_audio = 0.0

    @property
    def rate(self) -> float:
        """Audio seconds transcribed per busy second; 0.0 until a request has finished."""
        return self._audio_sum / self._busy_sum if self._busy_sum > 0 else 0.0

    @property
    def mean_audio(self) -> float:
        """Audio seconds of a recent request, on average; 0.0 until one has finished."""
        return self._mean_audio

    def started(self) -> None:
        """A request began running."""
        self._advance()
        self._running += 1

    def finished(self, audio_seconds: float) -> None:
        """A request stopped running, having transcribed ``audio_seconds`` (0 if it failed)."""
        self._advance()
        self._running = max(self._running - 1, 0)
        if audio_seconds <= 0:
            return
        fade = 0.5 ** (self._busy / HALF_LIFE_S)
        self._audio_sum = self._audio_sum * fade + audio_seconds
        self._busy_sum = self._busy_sum * fade + self._busy
        self._busy = 0.0
        if self._mean_audio == 0:
            self._mean_audio = audio_seconds
        else:
            self._mean_audio += _MEAN_WEIGHT * (audio_seconds - self._mean_audio)

    def _advance(self) -> None:
        """Count the wall time since the last event as busy if a request was running."""
        now = self._clock()
        if self._running > 0:
            self._busy += max(now - self._since, 0.0)
        self._since = now

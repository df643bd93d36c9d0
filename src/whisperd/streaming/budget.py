"""How much a stream's next final may cost: its context shrinks while finals come late.

A final decoded over :attr:`StreamConfig.context_s` seconds of the previous finals' audio hears
its words as the batch route does, but it encodes that audio and decodes the context's words
again: on tiny.en and a CPU a final with 20 s of context costs about 3.5x one without
(docs/benchmarks.md). One
stream on an idle server whose finals take under the target can afford it; several streams
on a few cores cannot, and their finals queue without bound. So each stream steers its own
cost by the latency it gets, additive increase and multiplicative decrease (as TCP steers its
window):

- a final later than :data:`LATENCY_TARGET_S` (from the end of speech to its transcript)
  halves the next finals' context, down to none;
- a final in time gives :data:`CONTEXT_STEP_S` back, up to the configured context.

On an idle server every final gets the whole context; under load the streams shed context
until their finals are in time again, and take it back as the load goes.
"""

from __future__ import annotations

LATENCY_TARGET_S = 0.7
"""Seconds from the end of speech (endpointing silence heard) to the final, above which the
next finals get less context."""
CONTEXT_STEP_S = 5.0
"""Seconds of context a final in time gives back."""
LEAST_CONTEXT_S = 2.0
"""Below this, halving the context drops it altogether."""


class ContextBudget:
    """The context (seconds) of a stream's next final, adapted to its finals' latency."""

    def __init__(self, most_s: float, *, target_s: float = LATENCY_TARGET_S) -> None:
        """Start with the whole ``most_s`` seconds of context."""
        self.most_s = most_s
        self.target_s = target_s
        self._seconds = most_s

    @property
    def seconds(self) -> float:
        """Seconds of previous finals' audio the next final hears (0 to ``most_s``)."""
        return self._seconds

    def observe(self, latency_s: float) -> None:
        """Take the latency (seconds) of a final just sent."""
        if latency_s > self.target_s:
            half = self._seconds / 2
            self._seconds = half if half >= LEAST_CONTEXT_S else 0.0
        else:
            self._seconds = min(self.most_s, self._seconds + CONTEXT_STEP_S)

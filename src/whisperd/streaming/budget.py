"""How much context a stream's next final can afford: predicted from what its finals cost.

A final decoded over :attr:`StreamConfig.context_s` seconds of the previous finals' audio hears
its words as the batch route does, but it encodes that audio and decodes the context's words
again: on tiny.en and a CPU a final with 20 s of context costs about 4x one without
(docs/benchmarks.md). One stream on an idle server can afford it; several streams on a few
cores cannot, and their finals would queue without bound.

A final's decode costs about ``rate * (seconds decoded + OVERHEAD_S)`` wall seconds (tiny.en,
CTranslate2 int8, one CPU thread, beam 5: a rate of about 0.06-0.075 s per second, with or
without context; ``bench/stream_decode_costs.py``). Each stream learns its rate from its own finals'
decodes, in wall time, so the load other streams put on the machine is in it. When a final is
about to be decoded, it hears as much context as the time it has left affords:

    context = (target - waited) / rate - OVERHEAD_S - own seconds, within [0, context_s]

where ``waited`` is the time since the end of its speech (the stream's earlier finals ran
meanwhile). So a stream on an idle fast server hears the whole context, a stream on a loaded
one hears what fits its latency target, and a final that already waited hears none.
"""

from __future__ import annotations

LATENCY_TARGET_S = 1.0
"""Seconds from the end of speech (endpointing silence heard) to the final that a final's
context is chosen to fit in."""
OVERHEAD_S = 1.0
"""A decode's fixed cost, in seconds of audio decoded at the learned rate: chosen so that the
rate comes out about the same for finals with and without context (tiny.en on a CPU,
``bench/stream_decode_costs.py``), so one final's cost predicts the next one's."""
RATE_WEIGHT = 0.5
"""Weight of the newest decode in the learned rate (an exponentially weighted mean): the rate
follows a change of load within a few finals."""


class ContextBudget:
    """The context (seconds) a stream's next final can afford, learned from its finals' cost."""

    def __init__(self, most_s: float, *, target_s: float = LATENCY_TARGET_S) -> None:
        """Allow up to ``most_s`` seconds of context, fitting finals within ``target_s``."""
        self.most_s = most_s
        self.target_s = target_s
        self._rate: float | None = None

    @property
    def rate(self) -> float | None:
        """Wall seconds a final's decode takes per second of audio decoded (overhead
        included; None: no final decoded yet)."""
        return self._rate

    def affordable(self, own_s: float, *, waited_s: float) -> float:
        """Seconds of context (0 to ``most_s``) for a final of ``own_s`` seconds of its own
        audio that ended ``waited_s`` seconds ago: none once the target has passed, the whole
        context while no cost is known (or it is too small to measure)."""
        if waited_s >= self.target_s:
            return 0.0
        if not self._rate:
            return self.most_s
        decodable_s = (self.target_s - waited_s) / self._rate - OVERHEAD_S
        return min(self.most_s, max(0.0, decodable_s - own_s))

    def observe(self, decoded_s: float, took_s: float) -> None:
        """Take a final's decode: ``decoded_s`` seconds of audio in ``took_s`` wall seconds."""
        rate = took_s / (decoded_s + OVERHEAD_S)
        if self._rate is None:
            self._rate = rate
        else:
            self._rate += RATE_WEIGHT * (rate - self._rate)

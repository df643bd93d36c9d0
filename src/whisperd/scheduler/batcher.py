"""The batching scheduler: one queue of model calls from every request, run in shared batches.

Requests never call the model themselves. Each window of each request becomes a :class:`Call`
(encode, generate, detect_language, align) submitted here; the scheduler's worker threads take
calls off one queue, merge the ones that can share a model call (same kind and compatibility
key, such as equal decoding options and prompt layout), run the merged call once, and hand
every caller its own share of the result.

Fairness policy. The next batch is led by the queued call that ranks first by
``(priority, service level of its request, arrival order)`` (:meth:`Ticket.rank`): stream
finals, then stream partials, then interactive requests, then bulk work. Within a class, a
request's first :data:`FIRST_COME_CALLS` calls (about one window; a call counts as many as
the windows it carries) are served in arrival order;
past them, its level rises each time its calls served double, and lower levels go first
(least attained service, in coarse steps, first come first served within a step):

- under overload, equal short requests finish about in the order they came, each as soon as
  its own windows ran, instead of all together at the end: ranking by calls served alone let
  every newcomer pass the requests already under way, so each new request stretched every
  other one and all of them finished with the backlog;
- a short request admitted while a long one runs still passes the long one once that has had
  its first windows, and finishes after a few windows instead of after the long file; of two
  long files, the one that has had less runs first.

A request usually has one call in flight at a time (its windows depend on one another); a
batched long file keeps one batch of VAD chunks in flight per worker (they do not).
Compatible calls join the leader's batch in the same order, up to ``max_batch_size`` items;
bulk calls (CLI files, durable jobs) join only a bulk leader: on a CPU a batched call costs
about the sum of its parts, so a job's 30 s window riding along would make a short interactive
request wait for it (``bench/bench_jobs.py``). For the same reason a scheduler built without
``merge_across_levels`` (CTranslate2 on a CPU) merges only calls of one priority and service
level: a 5 s clip whose encode a long file's window joined paid about 1 s instead of 0.2 s.

Adaptive batching. When only some of the active requests have a call queued (the others are
preparing their next window on the CPU), a worker waits up to ``max_wait_s`` for them, so the
batch fills under load; with everyone queued, or a single request active, it starts at once.

Failure isolation. If a merged call fails (a bad option, out of memory on a big batch), each
of its calls is run again alone, so only the call that fails by itself gets the error.

Logging. A worker thread runs calls of several requests at once, so it has no request context
of its own: while it runs a batch, :data:`BATCH_CONTEXTS` holds the context of each call in it
(captured when the call was submitted), and a log filter can name every request of the batch.
"""

from __future__ import annotations

import contextvars
import enum
import itertools
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from whisperd.errors import CancelledError

logger = logging.getLogger(__name__)

BATCH_CONTEXTS: contextvars.ContextVar[tuple[contextvars.Context, ...]] = contextvars.ContextVar(
    "whisperd_batch_contexts", default=()
)
"""The submitters' contexts of the calls this scheduler thread runs now (empty elsewhere)."""


@contextmanager
def batch_contexts(contexts: Iterable[contextvars.Context]) -> Iterator[None]:
    """Run the block as working for the calls submitted in ``contexts`` (for log lines)."""
    token = BATCH_CONTEXTS.set(tuple(contexts))
    try:
        yield
    finally:
        BATCH_CONTEXTS.reset(token)


class Priority(enum.IntEnum):
    """Scheduling class of a request; lower runs first."""

    STREAM_FINAL = 0
    STREAMING = 1
    INTERACTIVE = 2
    BULK = 3


FIRST_COME_CALLS = 4
"""Calls of a request served in arrival order before newer requests may pass it: one 30 s
window with its encode, a generate or two and an alignment, or two windows decoded greedily, so
clips up to 30 s are served first come, first served. Eight let a batched long file that had
just started lead four 1 s beam-5 chunk decodes ahead of a 5 s clip sent 3 s after it (the
clip took 4.7x its idle latency; ``bench/bench_concurrency.py``)."""


RETURN_WAIT_S = 0.05
"""How long a worker keeps the model idle for a request that ranks ahead of the queue's leader
and got its previous call's result less than this long ago: its next call (a clip's decode
after its encode) is about to come, and a model call cannot be interrupted once a long file's
window has started. On a loaded machine the request thread can take tens of milliseconds to be
scheduled again, far beyond the batch-filling wait."""


def service_level(served: int) -> int:
    """0 for a request's first :data:`FIRST_COME_CALLS` calls, then one more each time the
    calls served double (with 4: 4-7 are level 1, 8-15 level 2, ...)."""
    return (served // FIRST_COME_CALLS).bit_length()


@dataclass(eq=False)
class Ticket:
    """One request's identity in the scheduler: its class, arrival, progress and cancel flag."""

    priority: Priority = Priority.INTERACTIVE
    arrival: int = 0
    served: int = 0
    """Calls of this request run so far, each counted by its items (windows or VAD chunks), so
    a batched long file leaves its first-come calls after its first batch."""
    cancelled: threading.Event = field(default_factory=threading.Event)
    returned_at: float = -math.inf
    """When its last call's result was handed back (monotonic seconds): a request that got a
    result a moment ago is about to submit its next call."""

    def cancel(self) -> None:
        """Drop the request's remaining calls; its next submit raises CancelledError."""
        self.cancelled.set()

    def rank(self) -> tuple[int, int, int]:
        """Order of service under the fairness policy: ``(priority, level, arrival)``, lowest
        first (see the module's docstring and :func:`service_level`)."""
        return (int(self.priority), service_level(self.served), self.arrival)


@dataclass(eq=False)
class Call:
    """One model call of one request, waiting to be merged into a batch."""

    kind: str
    key: Hashable
    """Calls with equal ``(kind, key)`` may run together."""
    payload: Any
    items: int
    ticket: Ticket
    future: Future[Any] = field(default_factory=Future)
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    """The submitter's context variables (its request id among them), for log lines."""
    queued_at: float = field(default_factory=time.monotonic)
    """When it was submitted (monotonic seconds), for the batch waits of the metrics."""

    def rank(self) -> tuple[int, int, int]:
        """Order of service under the fairness policy (its ticket's :meth:`Ticket.rank`)."""
        return self.ticket.rank()


Runner = Callable[[str, Sequence[Call]], Sequence[Any]]
"""Runs one merged model call for compatible calls; returns one result per call."""

BatchObserver = Callable[[str, int, float], None]
"""Told of each model call that ran: its kind, how many request calls it merged, and how long
(seconds) the oldest of them waited in the queue. Called on a scheduler thread; keep it quick."""


def split_by_call(values: Any, calls: Sequence[Call]) -> list[Any]:
    """Cut a merged call's outputs (anything sliceable along its items) into one part per call:
    each call's ``items`` consecutive entries, in order."""
    parts, start = [], 0
    for call in calls:
        parts.append(values[start : start + call.items])
        start += call.items
    return parts


@dataclass
class BatchStats:
    """What the scheduler has done so far."""

    batches: int = 0
    calls: int = 0
    sizes: Counter[int] = field(default_factory=Counter)
    """How many model calls merged that many request calls."""
    kinds: Counter[str] = field(default_factory=Counter)
    """Request calls served, by kind (encode, generate, ...)."""

    def mean_size(self) -> float:
        """Average calls per model call."""
        return self.calls / self.batches if self.batches else 0.0


class Batcher:
    """The queue of model calls and the worker threads that run them in batches."""

    def __init__(
        self,
        runner: Runner,
        *,
        max_batch_size: int = 8,
        max_wait_s: float = 0.005,
        workers: int = 1,
        name: str = "whisperd-scheduler",
        observer: BatchObserver | None = None,
        merge_across_levels: bool = True,
    ) -> None:
        """Create a stopped scheduler; :meth:`start` launches its ``workers`` threads.

        ``observer`` is told of every model call that succeeded (the metrics' batch sizes and
        waits). Without ``merge_across_levels``, a call joins only a leader of its own priority
        and service level: where a merged call costs the sum of its parts (CTranslate2 on a
        CPU), a long file's window riding along would double a short request's call.
        """
        if max_batch_size < 1 or workers < 1:
            raise ValueError("max_batch_size and workers must be at least 1")
        self._runner = runner
        self._observer = observer
        self._merge_across_levels = merge_across_levels
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self._workers = workers
        self._name = name
        self._queue: list[Call] = []
        self._active: set[Ticket] = set()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._arrivals = itertools.count()
        self.stats = BatchStats()

    def start(self) -> None:
        """Launch the worker threads (idempotent)."""
        with self._cond:
            if self._threads:
                return
            self._stopping = False
            for index in range(self._workers):
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{index}", daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def stop(self) -> None:
        """Fail queued calls, let running batches finish, and join the workers."""
        with self._cond:
            self._stopping = True
            pending, self._queue = self._queue, []
            self._cond.notify_all()
            threads, self._threads = self._threads, []
        for call in pending:
            call.future.set_exception(CancelledError("The scheduler stopped."))
        for thread in threads:
            thread.join()

    def ticket(self, priority: Priority = Priority.INTERACTIVE) -> Ticket:
        """A new ticket for a request, in arrival order."""
        return Ticket(priority=priority, arrival=next(self._arrivals))

    @contextmanager
    def request(
        self, priority: Priority = Priority.INTERACTIVE, cancel: threading.Event | None = None
    ) -> Iterator[Ticket]:
        """A new ticket, active for the block (:meth:`enter`, then :meth:`leave` however the
        block ends); ``cancel``, when given, becomes its cancel flag."""
        ticket = self.ticket(priority)
        if cancel is not None:
            ticket.cancelled = cancel
        self.enter(ticket)
        try:
            yield ticket
        finally:
            self.leave(ticket)

    def enter(self, ticket: Ticket) -> None:
        """Count a request as active (it will submit calls soon)."""
        with self._cond:
            self._active.add(ticket)

    def leave(self, ticket: Ticket) -> None:
        """A request has no more calls to make."""
        with self._cond:
            self._active.discard(ticket)
            self._cond.notify_all()

    @property
    def workers(self) -> int:
        """Worker threads: model calls that may run at the same time."""
        return self._workers

    @property
    def queued(self) -> int:
        """Calls waiting for a worker."""
        with self._cond:
            return len(self._queue)

    def submit(self, kind: str, key: Hashable, payload: Any, *, items: int, ticket: Ticket) -> Any:
        """Queue one call and block until its share of a batch result is ready.

        Raises:
            CancelledError: if the ticket was cancelled before the call ran.
            Exception: whatever the model call raised when run alone.
        """
        if ticket.cancelled.is_set():
            raise CancelledError("The request was cancelled; its remaining audio was skipped.")
        call = Call(kind, key, payload, items, ticket)
        with self._cond:
            if self._stopping or not self._threads:
                raise CancelledError("The scheduler is not running.")
            self._queue.append(call)
            self._cond.notify_all()
        return call.future.result()

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _next_batch(self) -> list[Call] | None:
        with self._cond:
            while not self._queue:
                if self._stopping:
                    return None
                self._cond.wait()
            self._wait_for_stragglers()
            if not self._queue:
                return None if self._stopping else []
            return self._take_batch()

    def _wait_for_stragglers(self) -> None:
        """Under load, give active requests without a queued call a moment to catch up.

        A batch that is not full waits up to ``max_wait_s`` for more calls. A full batch starts
        at once, unless an active request that ranks ahead of its leader is between two calls:
        a model call is not interrupted, so a short request whose next call came a moment late
        would otherwise wait for a whole call of a long one at each of its calls. One that got
        its previous result within :data:`RETURN_WAIT_S` is waited for that long; others (still
        preparing their audio) for ``max_wait_s``.
        """
        filling_until = time.monotonic() + self.max_wait_s
        while not self._stopping and self._queue:  # another worker may take what was queued
            waiting = {call.ticket for call in self._queue}
            if len(waiting) >= len(self._active):
                return
            ahead = self._ahead_missing(waiting)
            if self._full() and not ahead:
                return
            returning_until = max((t.returned_at + RETURN_WAIT_S for t in ahead), default=0.0)
            remaining = max(filling_until, returning_until) - time.monotonic()
            if remaining <= 0:
                return
            self._cond.wait(remaining)

    def _ahead_missing(self, waiting: set[Ticket]) -> list[Ticket]:
        """The active requests without a queued call that rank ahead of the queue's leader."""
        leader = min(call.rank() for call in self._queue)
        return [t for t in self._active if t not in waiting and t.rank() < leader]

    def _full(self) -> bool:
        leader = min(self._queue, key=Call.rank)
        compatible = sum(c.items for c in self._queue if self._joins(leader, c))
        return compatible >= self.max_batch_size

    def _joins(self, leader: Call, call: Call) -> bool:
        """Whether ``call`` may share ``leader``'s model call (the leader itself included)."""
        if (call.kind, call.key) != (leader.kind, leader.key):
            return False
        if call.ticket.priority == Priority.BULK and leader.ticket.priority != Priority.BULK:
            return False
        return self._merge_across_levels or call.rank()[:2] == leader.rank()[:2]

    def _take_batch(self) -> list[Call]:
        ordered = sorted(self._queue, key=Call.rank)
        leader = ordered[0]
        batch, items = [leader], leader.items
        for call in ordered[1:]:
            if not self._joins(leader, call):
                continue
            if items + call.items > self.max_batch_size:
                break
            batch.append(call)
            items += call.items
        for call in batch:
            self._queue.remove(call)
        return batch

    def _run(self, batch: list[Call]) -> None:
        live = [call for call in batch if not self._drop_if_cancelled(call)]
        if not live:
            return
        with batch_contexts(call.context for call in live):
            self._run_live(live)

    def _run_live(self, live: list[Call]) -> None:
        waited = time.monotonic() - min(call.queued_at for call in live)
        try:
            results = self._runner(live[0].kind, live)
        except Exception as exc:
            if len(live) == 1:
                live[0].ticket.returned_at = time.monotonic()
                live[0].future.set_exception(exc)
                return
            logger.warning(
                "a batch of %d %s calls failed; running them one by one", len(live), live[0].kind
            )
            for call in live:
                self._run([call])
            return
        logger.debug("ran %d %s call(s) in one model call", len(live), live[0].kind)
        self._record(live)
        if self._observer is not None:
            self._observer(live[0].kind, len(live), waited)
        returned = time.monotonic()
        for call, result in zip(live, results, strict=True):
            call.ticket.returned_at = returned
            call.future.set_result(result)

    @staticmethod
    def _drop_if_cancelled(call: Call) -> bool:
        if call.ticket.cancelled.is_set():
            call.future.set_exception(
                CancelledError("The request was cancelled; its remaining audio was skipped.")
            )
            return True
        return False

    def _record(self, batch: list[Call]) -> None:
        with self._cond:
            self.stats.batches += 1
            self.stats.calls += len(batch)
            self.stats.sizes[len(batch)] += 1
            self.stats.kinds[batch[0].kind] += len(batch)
            for call in batch:
                call.ticket.served += call.items  # a batch of 8 VAD chunks is 8 windows' work

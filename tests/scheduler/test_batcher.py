"""The batching scheduler with a fake model: merging, fairness, waiting, failures, cancel."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from waiting import DEADLINE_S, joined, wait_until, waited
from whisperd.errors import CancelledError
from whisperd.scheduler.batcher import (
    FIRST_COME_CALLS,
    Batcher,
    Call,
    Priority,
    Ticket,
    service_level,
)


class FakeModel:
    """Records each merged call; answers every item with (kind, payload)."""

    def __init__(self, *, gate: threading.Event | None = None, fail_on: Any = None) -> None:
        self.calls: list[tuple[str, list[Any]]] = []
        self.entered = threading.Event()
        self.gate = gate
        self.fail_on = fail_on

    def __call__(self, kind: str, calls: Sequence[Call]) -> list[Any]:
        self.entered.set()
        if self.gate is not None and not self.gate.wait(DEADLINE_S):
            raise RuntimeError("the test never opened the gate")
        payloads = [call.payload for call in calls]
        self.calls.append((kind, payloads))
        if self.fail_on is not None and self.fail_on in payloads:
            raise RuntimeError(f"cannot run {self.fail_on}")
        return [(kind, payload) for payload in payloads]


@pytest.fixture
def started() -> Iterator[list[Batcher]]:
    batchers: list[Batcher] = []
    yield batchers
    for batcher in batchers:
        batcher.stop()


def _start(started: list[Batcher], model: FakeModel, **kwargs: Any) -> Batcher:
    batcher = Batcher(model, **kwargs)
    batcher.start()
    started.append(batcher)
    return batcher


def _start_jobs(
    batcher: Batcher, jobs: list[tuple[str, Any, Any, Ticket]]
) -> tuple[list[threading.Thread], list[Any]]:
    """Submit each job from its own thread; the threads and the list their results (or
    exceptions) land in."""
    results: list[Any] = [None] * len(jobs)

    def run(index: int) -> None:
        kind, key, payload, ticket = jobs[index]
        try:
            results[index] = batcher.submit(kind, key, payload, items=1, ticket=ticket)
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    return threads, results


def _in_threads(batcher: Batcher, jobs: list[tuple[str, Any, Any, Ticket]]) -> list[Any]:
    threads, results = _start_jobs(batcher, jobs)
    joined(*threads)
    return results


def _queue_while_blocked(batcher: Batcher, model: FakeModel, jobs, blocker_ticket):
    """Occupy the worker with one call, queue ``jobs`` behind it, then release it."""
    first = threading.Thread(
        target=lambda: batcher.submit("encode", None, "blocker", items=1, ticket=blocker_ticket)
    )
    first.start()
    waited(model.entered, "the worker never entered the blocker call")
    threads, out = _start_jobs(batcher, jobs)
    wait_until(lambda: batcher.queued == len(jobs), f"{len(jobs)} calls were never queued")
    assert model.gate is not None
    model.gate.set()
    joined(first, *threads)
    return out


def test_compatible_calls_of_different_requests_share_one_model_call(started) -> None:
    gate = threading.Event()
    model = FakeModel(gate=gate)
    batcher = _start(started, model, max_batch_size=8, max_wait_s=0)
    tickets = [batcher.ticket() for _ in range(5)]
    jobs = [("generate", "opts-a", f"window-{i}", tickets[i]) for i in range(4)]
    results = _queue_while_blocked(batcher, model, jobs, tickets[4])
    assert results == [("generate", f"window-{i}") for i in range(4)]
    assert model.calls[1] == ("generate", [f"window-{i}" for i in range(4)])
    assert batcher.stats.sizes[4] == 1


def test_bulk_calls_join_only_a_bulk_leader(started) -> None:
    gate = threading.Event()
    model = FakeModel(gate=gate)
    batcher = _start(started, model, max_batch_size=8, max_wait_s=0)
    jobs = [
        ("encode", None, "clip", batcher.ticket(Priority.INTERACTIVE)),
        ("encode", None, "job-1", batcher.ticket(Priority.BULK)),
        ("encode", None, "job-2", batcher.ticket(Priority.BULK)),
        ("encode", None, "stream", batcher.ticket(Priority.STREAMING)),
    ]
    _queue_while_blocked(batcher, model, jobs, batcher.ticket())
    assert [payloads for _, payloads in model.calls[1:]] == [["stream", "clip"], ["job-1", "job-2"]]


def test_incompatible_calls_never_mix_and_batches_are_capped(started) -> None:
    gate = threading.Event()
    model = FakeModel(gate=gate)
    batcher = _start(started, model, max_batch_size=2, max_wait_s=0)
    tickets = [batcher.ticket() for _ in range(6)]
    jobs = [
        ("generate", "a", "a1", tickets[0]),
        ("generate", "b", "b1", tickets[1]),
        ("generate", "a", "a2", tickets[2]),
        ("generate", "a", "a3", tickets[3]),
        ("encode", None, "e1", tickets[4]),
    ]
    _queue_while_blocked(batcher, model, jobs, tickets[5])
    merged = model.calls[1:]
    for kind, payloads in merged:
        assert len(payloads) <= 2
        assert len({p[0] for p in payloads}) == 1  # one key per model call
        assert kind == ("encode" if payloads == ["e1"] else "generate")
    assert sorted(p for _, payloads in merged for p in payloads) == ["a1", "a2", "a3", "b1", "e1"]


def test_priority_then_first_come_then_least_served_lead_the_next_batch(started) -> None:
    gate = threading.Event()
    model = FakeModel(gate=gate)
    batcher = _start(started, model, max_batch_size=1, max_wait_s=0)
    bulk = batcher.ticket(Priority.BULK)
    long = batcher.ticket(Priority.INTERACTIVE)
    long.served = 4 * FIRST_COME_CALLS  # far into a long file
    under_way = batcher.ticket(Priority.INTERACTIVE)
    under_way.served = FIRST_COME_CALLS - 1  # still within its first-come calls
    fresh = batcher.ticket(Priority.INTERACTIVE)
    longer = batcher.ticket(Priority.INTERACTIVE)
    longer.served = FIRST_COME_CALLS  # just past them
    live = batcher.ticket(Priority.STREAMING)
    jobs = [
        ("encode", None, "bulk", bulk),
        ("encode", None, "long", long),
        ("encode", None, "under-way", under_way),
        ("encode", None, "fresh", fresh),
        ("encode", None, "longer", longer),
        ("encode", None, "live", live),
    ]
    _queue_while_blocked(batcher, model, jobs, batcher.ticket())
    order = [payloads[0] for _, payloads in model.calls[1:]]
    assert order == ["live", "under-way", "fresh", "longer", "long", "bulk"]


def test_service_levels_rise_as_calls_served_double() -> None:
    levels = [service_level(n * FIRST_COME_CALLS // 2) for n in range(10)]
    assert levels == [0, 0, 1, 1, 2, 2, 2, 2, 3, 3]


def test_under_overload_requests_under_way_go_before_newcomers(started) -> None:
    gate = threading.Event()
    model = FakeModel(gate=gate)
    batcher = _start(started, model, max_batch_size=2, max_wait_s=0)
    tickets = [batcher.ticket() for _ in range(6)]
    for ticket in tickets[:2]:
        ticket.served = 2  # two short requests on their last window
    jobs = [("generate", "k", f"r{i}", ticket) for i, ticket in enumerate(tickets)]
    _queue_while_blocked(batcher, model, jobs, batcher.ticket())
    # The requests under way finish first, in arrival order, instead of every newcomer going
    # ahead of them and all six finishing together with the backlog.
    assert [payloads for _, payloads in model.calls[1:]] == [
        ["r0", "r1"],
        ["r2", "r3"],
        ["r4", "r5"],
    ]


def test_a_failing_call_fails_alone(started) -> None:
    gate = threading.Event()
    model = FakeModel(gate=gate, fail_on="poison")
    batcher = _start(started, model, max_batch_size=8, max_wait_s=0)
    tickets = [batcher.ticket() for _ in range(4)]
    jobs = [
        ("generate", "k", "ok-1", tickets[0]),
        ("generate", "k", "poison", tickets[1]),
        ("generate", "k", "ok-2", tickets[2]),
    ]
    results = _queue_while_blocked(batcher, model, jobs, tickets[3])
    assert results[0] == ("generate", "ok-1")
    assert isinstance(results[1], RuntimeError)
    assert results[2] == ("generate", "ok-2")
    assert model.calls[1] == ("generate", ["ok-1", "poison", "ok-2"])  # the merged try
    assert sorted(p for _, ps in model.calls[2:] for p in ps) == ["ok-1", "ok-2", "poison"]


def test_cancelled_requests_stop_submitting_and_queued_calls_are_dropped(started) -> None:
    gate = threading.Event()
    model = FakeModel(gate=gate)
    batcher = _start(started, model, max_batch_size=1, max_wait_s=0)
    ticket = batcher.ticket()
    ticket.cancel()
    with pytest.raises(CancelledError):
        batcher.submit("encode", None, "x", items=1, ticket=ticket)
    queued = batcher.ticket()
    outcome: list[Any] = []

    def submit() -> None:
        try:
            outcome.append(batcher.submit("encode", None, "later", items=1, ticket=queued))
        except CancelledError as exc:
            outcome.append(exc)

    blocker = threading.Thread(
        target=lambda: batcher.submit("encode", None, "blocker", items=1, ticket=batcher.ticket())
    )
    blocker.start()
    waited(model.entered, "the worker never entered the blocker call")
    waiter = threading.Thread(target=submit)
    waiter.start()
    wait_until(lambda: batcher.queued == 1, "the later call was never queued")
    queued.cancel()
    gate.set()
    joined(blocker, waiter)
    assert isinstance(outcome[0], CancelledError)
    assert ("encode", ["later"]) not in model.calls


def test_waits_for_active_requests_to_fill_a_batch(started) -> None:
    model = FakeModel()
    # Far longer than the test takes: the batch starts because every active request has a call
    # queued, not because the wait ran out.
    batcher = _start(started, model, max_batch_size=8, max_wait_s=DEADLINE_S)
    tickets = [batcher.ticket() for _ in range(3)]
    for ticket in tickets:
        batcher.enter(ticket)
    threads = []
    for i, ticket in enumerate(tickets):  # the calls arrive one after another
        thread = threading.Thread(
            target=batcher.submit,
            args=("generate", "k", f"w{i}"),
            kwargs={"items": 1, "ticket": ticket},
        )
        thread.start()
        threads.append(thread)
        if i < len(tickets) - 1:
            wait_until(lambda queued=i + 1: batcher.queued == queued, f"w{i} was never queued")
    joined(*threads, within=batcher.max_wait_s / 2)
    for ticket in tickets:
        batcher.leave(ticket)
    assert model.calls == [("generate", ["w0", "w1", "w2"])]


def test_a_lone_request_does_not_wait(started) -> None:
    model = FakeModel()
    batcher = _start(started, model, max_batch_size=8, max_wait_s=5.0)
    ticket = batcher.ticket()
    batcher.enter(ticket)
    began = time.monotonic()
    batcher.submit("encode", None, "solo", items=1, ticket=ticket)
    elapsed = time.monotonic() - began
    batcher.leave(ticket)
    assert elapsed < batcher.max_wait_s  # it did not sit out max_wait_s


def test_stop_fails_what_is_queued(started) -> None:
    batcher = Batcher(FakeModel(), max_batch_size=1)
    with pytest.raises(CancelledError):
        batcher.submit("encode", None, "x", items=1, ticket=batcher.ticket())
    with pytest.raises(ValueError, match="at least 1"):
        Batcher(FakeModel(), max_batch_size=0)


def _served_long(batcher: Batcher) -> Ticket:
    """An active request far past its first-come calls (a long file under way)."""
    ticket = batcher.ticket()
    ticket.served = 64 * FIRST_COME_CALLS
    batcher.enter(ticket)
    return ticket


def test_a_request_between_two_calls_keeps_its_turn(started, monkeypatch) -> None:
    monkeypatch.setattr("whisperd.scheduler.batcher.RETURN_WAIT_S", DEADLINE_S)
    gate = threading.Event()
    model = FakeModel(gate=gate)
    batcher = _start(started, model, max_batch_size=2, max_wait_s=0.001)
    long_file = _served_long(batcher)
    clip = batcher.ticket()
    batcher.enter(clip)

    def clip_request() -> None:
        batcher.submit("encode", None, "clip-encode", items=1, ticket=clip)
        time.sleep(0.2)  # the clip's thread comes back late (a loaded machine)
        batcher.submit("generate", None, "clip-generate", items=1, ticket=clip)
        batcher.leave(clip)

    blocker = threading.Thread(
        target=batcher.submit,
        args=("encode", None, "blocker"),
        kwargs={"items": 1, "ticket": batcher.ticket()},
    )
    blocker.start()
    waited(model.entered, "the worker never entered the blocker call")
    clip_thread = threading.Thread(target=clip_request)
    clip_thread.start()
    long_thread = threading.Thread(
        target=batcher.submit,
        args=("generate", "chunks", "long-window"),
        kwargs={"items": 2, "ticket": long_file},
    )
    long_thread.start()
    wait_until(
        lambda: batcher.queued == 2, "the clip's and the long file's calls were never queued"
    )
    gate.set()
    joined(blocker, clip_thread, long_thread)
    batcher.leave(long_file)
    order = [payloads[0] for _, payloads in model.calls]
    assert order == ["blocker", "clip-encode", "clip-generate", "long-window"]


def test_a_request_still_preparing_is_not_waited_for(started, monkeypatch) -> None:
    monkeypatch.setattr("whisperd.scheduler.batcher.RETURN_WAIT_S", DEADLINE_S)
    model = FakeModel()
    batcher = _start(started, model, max_batch_size=2, max_wait_s=0.001)
    long_file = _served_long(batcher)
    preparing = batcher.ticket()  # ranks ahead, has had no call yet (decoding its audio)
    batcher.enter(preparing)
    began = time.monotonic()
    batcher.submit("generate", "chunks", "long-window", items=2, ticket=long_file)
    elapsed = time.monotonic() - began
    batcher.leave(preparing)
    batcher.leave(long_file)
    assert elapsed < DEADLINE_S / 2  # not held for the returning request's wait


def test_without_merging_across_levels_a_long_files_window_does_not_ride_along(started) -> None:
    merged = []
    for merge_across_levels in (True, False):
        gate = threading.Event()
        model = FakeModel(gate=gate)
        batcher = _start(started, model, max_batch_size=2, merge_across_levels=merge_across_levels)
        long_file = _served_long(batcher)
        jobs = [
            ("encode", 3000, "long-window", long_file),
            ("encode", 3000, "clip", batcher.ticket()),
        ]
        _queue_while_blocked(batcher, model, jobs, batcher.ticket())
        batcher.leave(long_file)
        merged.append([payloads for _, payloads in model.calls[1:]])
    assert merged == [[["clip", "long-window"]], [["clip"], ["long-window"]]]


def test_two_workers_waiting_for_the_same_call_both_survive(started, monkeypatch) -> None:
    crashes: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: crashes.append(args.exc_value))
    model = FakeModel()
    batcher = _start(started, model, max_batch_size=8, max_wait_s=0.2, workers=2)
    assert batcher.workers == 2
    late, prompt = batcher.ticket(), batcher.ticket()
    batcher.enter(late)  # active but silent: both workers wait for it to fill the batch
    batcher.enter(prompt)
    for round_ in range(3):
        assert batcher.submit("encode", None, f"x{round_}", items=1, ticket=prompt) == (
            "encode",
            f"x{round_}",
        )
        time.sleep(batcher.max_wait_s)  # the worker that lost the call wakes to an empty queue
    batcher.leave(late)
    batcher.leave(prompt)
    assert crashes == []
    assert batcher.submit("encode", None, "after", items=1, ticket=prompt) == ("encode", "after")

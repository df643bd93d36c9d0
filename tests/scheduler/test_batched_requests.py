"""A request whose calls carry many windows at once (a long file's batch of VAD chunks) against
short requests: it leaves its first-come calls by windows served, and a short request between
two calls is waited for rather than passed by a full batch."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from waiting import DEADLINE_S, wait_until
from whisperd.scheduler.batcher import FIRST_COME_CALLS, Batcher, Call, Priority, service_level


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[list[Any]] = []

    def __call__(self, kind: str, calls: Sequence[Call]) -> list[Any]:
        self.calls.append([call.payload for call in calls])
        return [None for _ in calls]


@pytest.fixture
def batcher() -> Iterator[Batcher]:
    made = Batcher(_Recorder(), max_batch_size=2, max_wait_s=DEADLINE_S)
    made.start()
    yield made
    made.stop()


def test_a_batch_of_chunks_counts_as_its_windows(batcher: Batcher) -> None:
    long = batcher.ticket(Priority.INTERACTIVE)
    batcher.enter(long)
    batcher.submit("generate", "k", "chunks", items=FIRST_COME_CALLS, ticket=long)
    batcher.leave(long)
    assert long.served == FIRST_COME_CALLS
    assert service_level(long.served) == 1
    newcomer = batcher.ticket(Priority.INTERACTIVE)
    assert newcomer.rank() < long.rank()  # a short request now goes first


def test_a_full_batch_waits_for_a_request_that_ranks_ahead(batcher: Batcher) -> None:
    runner = batcher._runner
    assert isinstance(runner, _Recorder)
    short = batcher.ticket(Priority.INTERACTIVE)
    long = batcher.ticket(Priority.INTERACTIVE)
    long.served = 4 * FIRST_COME_CALLS
    batcher.enter(short)
    batcher.enter(long)
    done = threading.Event()

    def long_call() -> None:
        batcher.submit("generate", "k", "long", items=8, ticket=long)
        done.set()

    thread = threading.Thread(target=long_call)
    thread.start()
    try:
        # The long call is full (8 items over a batch of 2) but the short request, active
        # and ranked ahead, has no call queued yet: the worker waits for it.
        wait_until(lambda: batcher.queued == 1, "the long call was not queued")
        assert not done.wait(0.2)
        batcher.submit("encode", "e", "short", items=1, ticket=short)
        batcher.leave(short)  # its last call ran: nothing more to wait for
        thread.join(DEADLINE_S)
        assert done.is_set()
    finally:
        batcher.leave(short)
        batcher.leave(long)
        thread.join(DEADLINE_S)
    assert runner.calls == [["short"], ["long"]]

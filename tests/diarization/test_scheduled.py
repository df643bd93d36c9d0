"""Embedding calls go through the speaker model's batching scheduler: calls queued while one
runs are merged into one forward pass, and each caller gets its own rows back."""

from __future__ import annotations

import threading
import time

import numpy as np

from whisperd.diarization.scheduled import EmbeddingScheduler


class GatedEncoder:
    """Embeds a clip as ``[its first sample, 0]``; the first call waits for ``gate``."""

    dimension = 2

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.passes: list[int] = []

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        self.started.set()
        if not self.passes:
            self.gate.wait(10)
        self.passes.append(len(clips))
        return np.array([[clip[0], 0.0] for clip in clips], dtype=np.float32)


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def test_queued_calls_of_several_requests_share_one_forward_pass() -> None:
    encoder = GatedEncoder()
    scheduler = EmbeddingScheduler(encoder)
    results: dict[int, np.ndarray] = {}

    def request(value: int, count: int) -> None:
        clips = [np.full(10, value, dtype=np.float32)] * count
        results[value] = scheduler.for_request().embed(clips)

    try:
        first = threading.Thread(target=request, args=(1, 1))
        first.start()
        wait_for(encoder.started.is_set, "the first call did not start")
        others = [threading.Thread(target=request, args=(v, v)) for v in (2, 3)]
        for thread in others:
            thread.start()
        wait_for(lambda: scheduler._batcher.queued == 2, "the other calls did not queue")
        encoder.gate.set()
        for thread in (first, *others):
            thread.join(10)
    finally:
        scheduler.close()
    assert encoder.passes == [1, 5]
    assert scheduler.calls == 3
    assert scheduler.batches == 2
    assert {value: rows[:, 0].tolist() for value, rows in results.items()} == {
        1: [1.0],
        2: [2.0, 2.0],
        3: [3.0, 3.0, 3.0],
    }
    assert scheduler.for_request().embed([]).shape == (0, 2)

"""Log lines written for a request name it, from whichever thread works for it: the loading
pool that loads its model, and the scheduler thread that runs its batched model calls."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextvars import copy_context
from pathlib import Path
from typing import Any

import pytest

from waiting import joined
from whisperd.api.middleware import REQUEST_ID, RequestIdLogFilter
from whisperd.config import Settings
from whisperd.scheduler.batcher import Batcher, Call

DATA = Path(__file__).parents[1] / "data"
FORMAT = "%(levelname)s [%(request_id)s] %(name)s: %(message)s"


class Records(logging.Handler):
    """Keeps every record, as formatted by the server's log format, with its thread."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(RequestIdLogFilter())
        self.setFormatter(logging.Formatter(FORMAT))
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.threadName or "", self.format(record)))


@pytest.fixture
def records() -> Iterator[Records]:
    logger = logging.getLogger("whisperd")
    handler, level = Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_batch_of_several_requests_logs_every_request_id(records: Records) -> None:
    def runner(kind: str, calls: Sequence[Call]) -> list[Any]:
        logging.getLogger("whisperd.engine.test").info("running %d calls", len(calls))
        return [call.payload for call in calls]

    batcher = Batcher(runner, max_wait_s=30)
    batcher.start()
    tickets = [batcher.ticket(), batcher.ticket()]
    for ticket in tickets:
        batcher.enter(ticket)  # both active: the worker waits to batch them together

    def submit(request_id: str, index: int) -> None:
        REQUEST_ID.set(request_id)
        batcher.submit("encode", "k", index, items=1, ticket=tickets[index])

    threads = [
        threading.Thread(target=copy_context().run, args=(submit, name, index))
        for index, name in enumerate(("req-a", "req-b"))
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            joined(thread)
    finally:
        batcher.stop()
    ran = [line for _, line in records.lines if "running 2 calls" in line]
    assert ran == ["INFO [req-a,req-b] whisperd.engine.test: running 2 calls"]


def test_loading_and_decoding_for_a_request_log_its_id(
    serve: Callable[[Settings], Any], settings_for: Callable[..., Settings], records: Records
) -> None:
    # Loaded lazily, the model loads on the loading pool for the first request that needs it.
    with serve(settings_for(preload_model=False)) as running, running.http() as http:
        response = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("speech.mp3", (DATA / "speech.mp3").read_bytes())},
            headers={"x-request-id": "req-42"},
        )
    assert response.status_code == 200, response.text
    loading = [
        (thread, line) for thread, line in records.lines if "whisperd.engine.manager" in line
    ]
    assert loading, records.lines
    assert all(thread.startswith("whisperd-loading") for thread, _ in loading)
    assert all("[req-42]" in line for _, line in loading), loading
    batched = [line for thread, line in records.lines if thread.startswith("whisperd-scheduler")]
    assert batched, records.lines
    assert all("[req-42]" in line for line in batched), batched

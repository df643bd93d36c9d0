"""The service's thread pools: named by purpose, context carried into their threads."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from whisperd.config import Settings
from whisperd.service.pools import Pools, WorkerPool

_WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def test_a_pool_runs_off_the_loop_with_the_callers_context() -> None:
    pool = WorkerPool(1, name="whisperd-test")

    def seen() -> tuple[str, str]:
        return threading.current_thread().name, _WHO.get()

    async def scenario() -> tuple[str, str]:
        _WHO.set("request-7")
        return await pool.run(seen)

    try:
        thread, who = asyncio.run(scenario())
    finally:
        pool.shutdown()
    assert thread.startswith("whisperd-test")
    assert who == "request-7"


def test_pools_are_sized_by_purpose() -> None:
    settings = Settings(_env_file=None, max_pending_requests=3, max_streams=5)
    pools = Pools.create(settings)
    try:
        assert pools.requests.workers == settings.max_pending_requests
        assert pools.streams.workers == settings.max_streams
        names = {pools.requests.name, pools.streams.name, pools.audio.name, pools.vad.name}
        assert len(names | {pools.loading.name}) == 5
    finally:
        pools.shutdown()


def test_a_pool_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        WorkerPool(0, name="whisperd-test")

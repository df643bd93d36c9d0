"""A bounded thread pool that owns every model call, so none runs on the event loop."""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, ParamSpec, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

P = ParamSpec("P")
T = TypeVar("T")


class ModelExecutor:
    """Runs blocking callables on a fixed number of dedicated threads."""

    def __init__(self, workers: int, *, name: str = "whisperd-model") -> None:
        """Create a pool of ``workers`` threads named after ``name``."""
        if workers < 1:
            raise ValueError("an executor needs at least one worker")
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on the pool and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop accepting work; with ``wait``, let running calls finish."""
        self._pool.shutdown(wait=wait, cancel_futures=True)

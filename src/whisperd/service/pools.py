"""Thread pools by purpose: blocking work never runs on the event loop, and no kind of work can
take the threads another kind needs.

Model calls themselves run on each engine's scheduler threads
(:mod:`whisperd.scheduler.batcher`); these pools run the blocking code around them:

- ``requests``: one thread per admitted HTTP, CLI or job transcription, for its decoding loop
  (it blocks while its windows wait in the scheduler). Sized to ``max_pending_requests``.
- ``streams``: stream decodes (partials and finals). Sized to ``max_streams``: each stream has
  at most one decode in flight, so no HTTP load can delay a stream's final for want of a thread.
- ``audio``: decoding uploads and files (FFmpeg) to 16 kHz samples.
- ``vad``: every stream's voice-activity scoring, apart from upload decoding so a slow file
  cannot stall endpointing.
- ``loading``: resolving, downloading and loading models, so a download never holds a thread
  that audio decoding or VAD needs.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, ParamSpec, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

    from whisperd.config import Settings

P = ParamSpec("P")
T = TypeVar("T")

_AUDIO_THREADS = 2
_VAD_THREADS = 2
_LOADING_THREADS = 4


class WorkerPool:
    """A fixed number of named threads that run blocking callables for the event loop."""

    def __init__(self, workers: int, *, name: str) -> None:
        """Create ``workers`` threads named ``name-N``.

        Raises:
            ValueError: if ``workers`` is below 1.
        """
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        self.workers = workers
        self.name = name
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on a pool thread and await its result.

        The caller's context variables (the request id of log lines among them) travel with
        the call into the thread.
        """
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        call = functools.partial(context.run, fn, *args, **kwargs)
        return await loop.run_in_executor(self._pool, call)

    def shutdown(self, *, wait: bool = True) -> None:
        """Refuse new work and drop queued work; with ``wait``, let running calls finish."""
        self._pool.shutdown(wait=wait, cancel_futures=True)


@dataclass(frozen=True, slots=True)
class Pools:
    """The service's thread pools, one per kind of blocking work."""

    requests: WorkerPool
    streams: WorkerPool
    audio: WorkerPool
    vad: WorkerPool
    loading: WorkerPool

    @classmethod
    def create(cls, settings: Settings) -> Pools:
        """Pools sized from ``settings`` (see the module docstring)."""
        return cls(
            requests=WorkerPool(settings.max_pending_requests, name="whisperd-request"),
            streams=WorkerPool(settings.max_streams, name="whisperd-stream"),
            audio=WorkerPool(_AUDIO_THREADS, name="whisperd-audio"),
            vad=WorkerPool(_VAD_THREADS, name="whisperd-vad"),
            loading=WorkerPool(_LOADING_THREADS, name="whisperd-loading"),
        )

    def shutdown(self) -> None:
        """Stop every pool, letting running calls finish."""
        for pool in (self.requests, self.streams, self.audio, self.vad, self.loading):
            pool.shutdown()

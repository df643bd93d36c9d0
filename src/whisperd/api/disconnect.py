"""Stop a request's transcription when its HTTP client goes away."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, TypeVar

from whisperd.errors import CancelledError
from whisperd.service import Cancellation

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.requests import Request

T = TypeVar("T")

_POLL_S = 0.25


async def until_disconnected(request: Request, run: Callable[[Cancellation], Awaitable[T]]) -> T:
    """Await ``run(cancel)``; if the client goes away first, cancel it.

    Raises:
        CancelledError: when the client disconnected before the work finished.
    """
    cancel = Cancellation()
    task = asyncio.ensure_future(run(cancel))
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=_POLL_S)
            if done:
                return task.result()
            if await request.is_disconnected():
                cancel.cancel()
                raise CancelledError("The client disconnected; the transcription was stopped.")
    finally:
        if not task.done():
            cancel.cancel()
            task.cancel()

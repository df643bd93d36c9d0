"""Waiting in tests: every wait has a deadline, and a missed one fails saying what did not happen.

Tests wait for conditions, never for time: a fixed sleep is too short on a loaded machine and
too long everywhere else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import threading

DEADLINE_S = 60.0
"""How long a test waits for anything before it fails (generous: the machines are shared)."""
_POLL_S = 0.005


def wait_until(predicate: Callable[[], object], message: str, within: float = DEADLINE_S) -> None:
    """Return once ``predicate()`` is true; fail the test with ``message`` after ``within`` s."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{message} (waited {within:g} s)")
        time.sleep(_POLL_S)


async def until(predicate: Callable[[], object], message: str, within: float = DEADLINE_S) -> None:
    """:func:`wait_until` for coroutines: the event loop keeps running while it polls."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{message} (waited {within:g} s)")
        await asyncio.sleep(_POLL_S)


def waited(event: threading.Event, message: str, within: float = DEADLINE_S) -> None:
    """Return once ``event`` is set; fail the test with ``message`` after ``within`` s."""
    if not event.wait(within):
        pytest.fail(f"{message} (waited {within:g} s)")


def joined(*threads: threading.Thread, within: float = DEADLINE_S) -> None:
    """Join every thread; fail the test naming those still running after ``within`` s in all."""
    deadline = time.monotonic() + within
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    alive = [thread.name for thread in threads if thread.is_alive()]
    if alive:
        pytest.fail(f"threads still running after {within:g} s: {', '.join(alive)}")

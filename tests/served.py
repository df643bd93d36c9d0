"""A real ``whisperd serve`` process for tests: started, waited for until its model is loaded,
stopped with SIGTERM (killed if it does not stop)."""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from waiting import DEADLINE_S, wait_until

_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


@contextmanager
def served(command: list[str], log: Path) -> Iterator[str]:
    """Run ``command`` (a ``whisperd serve ... --port 0``), its output in ``log``; yield its
    base URL once ``/health`` answers 200."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=out)
    try:
        wait_until(
            lambda: _LISTENING.search(log.read_text()) or process.poll() is not None,
            "the server did not start",
        )
        match = _LISTENING.search(log.read_text())
        assert match, log.read_text()
        url = f"http://127.0.0.1:{match[1]}"
        wait_until(lambda: healthy(url), "the model did not load")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def healthy(url: str) -> bool:
    """Whether the server at ``url`` answers ``/health`` with 200."""
    try:
        return httpx.get(f"{url}/health", timeout=30).status_code == 200
    except httpx.TransportError:
        return False

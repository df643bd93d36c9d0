"""What native code writes to standard error, re-logged in the server's JSON log lines.

CTranslate2 logs from C++ (spdlog) straight to file descriptor 2, as
``[2026-12-01 10:32:34.189] [ctranslate2] [thread 24416] [warning] message``, past Python's
logging: in a ``json`` log stream such a line would be the one a collector cannot parse.
While :func:`native_stderr_logged` runs, descriptor 2 is a pipe read by a thread of its own:
each spdlog line becomes a record of the logger it names (``ctranslate2``) at its level, any
other line (a native library's message, a traceback printed by Python itself) a ``WARNING``
of the ``stderr`` logger; the log handler writes to the real standard error meanwhile.

The cost: what native code writes as the process dies (a fatal error, an abort) is in the
pipe when the reading thread dies with it, and is lost.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Final

from whisperd.api.log_format import LogFormat, configure_logging

__all__ = ["native_stderr_logged", "server_logging"]

_SPDLOG: Final = re.compile(
    r"\[[^\]]*\] \[(?P<logger>[\w.-]+)\] \[thread \d+\] \[(?P<level>\w+)\] (?P<message>.*)"
)
_LEVELS: Final = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
_JOIN_S: Final = 5.0
"""Longest wait for the last lines once standard error is given back."""


@contextmanager
def server_logging(level: str, log_format: LogFormat) -> Iterator[None]:
    """Log a server's lines in ``log_format`` (:func:`~whisperd.api.log_format.
    configure_logging`); with ``json``, native standard error too while the block runs.

    ``text`` leaves standard error alone: CTranslate2's lines are readable as they are, and a
    crash's last words (a fatal error printed as the process dies) reach the terminal rather
    than a pipe no one reads any more. Nor is it touched when logging was configured already
    (the handler was not installed): another handler writing to it would loop through the pipe.
    """
    handler = configure_logging(level, log_format)
    if log_format != "json" or handler not in logging.getLogger().handlers:
        yield
        return
    with native_stderr_logged(handler):
        yield


@contextmanager
def native_stderr_logged(handler: logging.StreamHandler[IO[str]]) -> Iterator[None]:
    """Re-log what is written to file descriptor 2 while the block runs (see the module).

    ``handler`` (the one that writes log lines to standard error) writes to a copy of the
    real standard error meanwhile, so no line loops back. On exit descriptor 2 is restored and
    the lines still in the pipe are logged before this returns.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)
    real = open(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    original = handler.setStream(real)
    pump = threading.Thread(target=_pump, args=(read,), name="whisperd-stderr", daemon=True)
    pump.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last writer closes: the pump reads to its end
        os.close(saved)
        pump.join(_JOIN_S)
        if original is not None:
            handler.setStream(original)
        real.close()


def _pump(read: int) -> None:
    """Log each line of the pipe until it closes."""
    with open(read, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            _log(line.rstrip("\r\n"))


def _log(line: str) -> None:
    """One line of native standard error as a record."""
    if not line.strip():
        return
    spdlog = _SPDLOG.fullmatch(line)
    if spdlog is None:
        logging.getLogger("stderr").warning("%s", line)
        return
    level = _LEVELS.get(spdlog["level"].lower(), logging.WARNING)
    logging.getLogger(spdlog["logger"]).log(level, "%s", spdlog["message"])

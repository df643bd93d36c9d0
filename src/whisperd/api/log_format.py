"""The server's log lines: one format (``text`` or ``json``) for whisperd's, uvicorn's and
faster-whisper's records, each naming its request, job and API key.

Every record gets three fields from the context it was logged in (:class:`LogContextFilter`):
``request_id`` (:data:`~whisperd.api.middleware.REQUEST_ID`), ``job_id`` and
``key_fingerprint`` (:mod:`whisperd.service.log_context`: the first 12 hex digits of the
key's SHA-256, never the key). Pool threads run with their caller's context; a scheduler
thread running a batched model call names every caller of the batch, comma-separated.

``json`` writes one JSON object per line (for Loki, Elasticsearch, Cloud Logging...)::

    {"time": "2026-01-02T03:04:05.678Z", "level": "INFO", "logger": "whisperd.access",
     "message": "POST /v1/audio/transcriptions 200 0.412 s", "request_id": "9f0c...",
     "job_id": null, "key_fingerprint": "5e884898da28", "thread": "MainThread"}

with ``exception`` holding the traceback when there is one. ``text`` writes
``TIME LEVEL [request job key] logger: message``, ``-`` for a field with no value.

What whisperd logs at INFO never holds transcript text, audio URLs or keys: the access line
names the route template, not the path and query (:mod:`whisperd.api.metrics`).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import IO, TYPE_CHECKING, Final, Literal, TypeAlias

from whisperd.api.middleware import REQUEST_ID
from whisperd.scheduler.batcher import BATCH_CONTEXTS
from whisperd.service.log_context import JOB_ID, KEY_FINGERPRINT

if TYPE_CHECKING:
    from contextvars import ContextVar

__all__ = [
    "CONTEXT_FIELDS",
    "JsonFormatter",
    "LogContextFilter",
    "LogFormat",
    "TextFormatter",
    "configure_logging",
]

LogFormat: TypeAlias = Literal["text", "json"]
"""How log lines are written (the ``log_format`` setting)."""

CONTEXT_FIELDS: Final = ("request_id", "job_id", "key_fingerprint")
"""The record attributes :class:`LogContextFilter` sets (``None`` where there is no value)."""

_VARS: Final[dict[str, ContextVar[str | None]]] = {
    "request_id": REQUEST_ID,
    "job_id": JOB_ID,
    "key_fingerprint": KEY_FINGERPRINT,
}

_THIRD_PARTY: Final = ("uvicorn", "uvicorn.error", "uvicorn.access", "faster_whisper")
"""Loggers of libraries whose records go through the same handler (their own handlers, if a
library set any, are removed so that no line is written twice or in another format)."""


class LogContextFilter(logging.Filter):
    """Set ``request_id``, ``job_id`` and ``key_fingerprint`` on every record it sees.

    Each comes from the record's context variables, else from the contexts of the batch the
    scheduler thread runs (values of every call, in order, without repeats, comma-separated),
    else ``None``. A value passed through ``extra=`` is kept. Attach it to a *handler*: a
    logger's filters do not see the records of its child loggers.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate the record; never drops it."""
        for name, var in _VARS.items():
            if getattr(record, name, None) is None:
                setattr(record, name, var.get() or _batch_values(var))
        return True


def _batch_values(var: ContextVar[str | None]) -> str | None:
    """The values of ``var`` in the calls of the batch this scheduler thread runs, or None."""
    values = (context.get(var) for context in BATCH_CONTEXTS.get())
    return ",".join(dict.fromkeys(value for value in values if value)) or None


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module's docstring); times in UTC, milliseconds."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, object] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            entry[name] = getattr(record, name, None)
        entry["thread"] = record.threadName
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``TIME LEVEL [request job key] logger: message``, ``-`` for a missing field."""

    def __init__(self) -> None:
        """The text format, with ISO 8601 local times."""
        super().__init__("%(asctime)s %(levelname)s [%(context)s] %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        """The line, its context fields joined by spaces."""
        record.context = " ".join(
            str(getattr(record, name, None) or "-") for name in CONTEXT_FIELDS
        )
        return super().formatMessage(record)


def _utc(created: float) -> str:
    """A record's time as ISO 8601 UTC with milliseconds (``2026-01-02T03:04:05.678Z``)."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def configure_logging(
    level: str, log_format: LogFormat = "text", *, stream: IO[str] | None = None
) -> logging.StreamHandler[IO[str]]:
    """Send every record at ``level`` and above to ``stream`` (standard error) in
    ``log_format``, with its context fields; once per process, from the command line.

    The root logger gets the one handler (unless it has handlers already, as
    :func:`logging.basicConfig` does); uvicorn's and faster-whisper's
    loggers lose their own handlers and levels and propagate to it, so their lines share the
    format.
    Run uvicorn with ``log_config=None`` so it keeps this set-up.

    Returns:
        The handler installed.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(LogContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler])
    for name in _THIRD_PARTY:
        library = logging.getLogger(name)
        library.handlers.clear()
        library.setLevel(logging.NOTSET)  # the root's level (uvicorn sets its own once it runs)
        library.propagate = True
    return handler

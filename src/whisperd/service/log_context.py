"""Who a log line works for, beyond its request id: the durable job and the API key.

Set by whoever starts the work (the API-key middleware, the job runner) and read by the log
filter (:class:`whisperd.api.log_format.LogContextFilter`). Context variables travel into the
service's pool threads with the rest of the caller's context, and a scheduler thread names
every caller of the batch it runs (:data:`~whisperd.scheduler.batcher.BATCH_CONTEXTS`).
"""

from __future__ import annotations

import hashlib
from contextvars import ContextVar
from typing import Final

__all__ = [
    "FINGERPRINT_LENGTH",
    "JOB_ID",
    "KEY_FINGERPRINT",
    "fingerprint_of_key",
    "key_fingerprint",
]

JOB_ID: ContextVar[str | None] = ContextVar("whisperd_job_id", default=None)
"""The id of the durable job this context works for, or ``None``."""

KEY_FINGERPRINT: ContextVar[str | None] = ContextVar("whisperd_key_fingerprint", default=None)
"""The fingerprint of the API key this context works for (:func:`key_fingerprint`), or
``None`` (no keys configured, or no request)."""

FINGERPRINT_LENGTH: Final = 12
"""Hex digits of a key's SHA-256 kept as its fingerprint (48 bits: tells a team's keys apart,
reveals nothing usable of a random key)."""


def key_fingerprint(owner: str) -> str:
    """The fingerprint of a key from its SHA-256 hex digest (a job's ``owner``): its first
    :data:`FINGERPRINT_LENGTH` digits, so log lines and job owners can be matched."""
    return owner[:FINGERPRINT_LENGTH]


def fingerprint_of_key(key: bytes) -> str:
    """The fingerprint of an API key as presented (never logged itself)."""
    return key_fingerprint(hashlib.sha256(key).hexdigest())

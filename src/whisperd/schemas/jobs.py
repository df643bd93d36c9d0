"""Wire models of the jobs API (``/v1/jobs``): the submission's own fields, the job object,
the job list.

A submission carries every field of ``/v1/audio/transcriptions`` (:mod:`whisperd.schemas.openai`)
plus :class:`JobFields`. Answers carry :class:`JobObject`, built from
:func:`whisperd.jobs.job_json` (the same JSON as the webhook events' ``data``), and the list
follows OpenAI's list objects (``data``, ``first_id``, ``last_id``, ``has_more``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from whisperd.schemas.openai import ErrorDetail, ResponseFormat

__all__ = [
    "MAX_METADATA_BYTES",
    "JobFields",
    "JobList",
    "JobObject",
    "JobProgress",
    "JobStatusName",
    "JobWebhook",
    "WebhookAttemptObject",
]

MAX_METADATA_BYTES = 4096
"""Largest ``metadata`` object, as compact JSON in UTF-8."""
_MAX_METADATA_KEYS = 16

JobStatusName = Literal["queued", "running", "succeeded", "failed", "cancelled"]
"""A job's ``status``."""


class JobFields(BaseModel):
    """The fields a job submission adds to those of a transcription request."""

    model_config = ConfigDict(frozen=True, extra="ignore", use_attribute_docstrings=True)

    task: Literal["transcribe", "translate"] = "transcribe"
    """``transcribe`` (in the audio's language) or ``translate`` (into English)."""
    webhook_url: Annotated[str | None, Field(max_length=2048)] = None
    """An https (or http) URL that gets a signed ``job.succeeded``, ``job.failed`` or
    ``job.cancelled`` event (Standard Webhooks) when the job ends; the server needs a
    webhook secret."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """A small JSON object (at most 16 keys, 4 KiB) echoed back on the job; as JSON text or as
    ``metadata[key]`` fields."""

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _blank_url(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return {}
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a valid JSON object: {exc.msg}") from None
        if not isinstance(value, dict):
            raise ValueError("must be a JSON object")
        if len(value) > _MAX_METADATA_KEYS:
            raise ValueError(f"has {len(value)} keys; at most {_MAX_METADATA_KEYS} are allowed")
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"is {size} bytes as JSON; at most {MAX_METADATA_BYTES} are allowed")
        return value


class JobProgress(BaseModel):
    """How far a job is."""

    done_seconds: float
    """Seconds of audio transcribed."""
    total_seconds: float | None
    """Seconds of audio in all (null until the audio is decoded)."""
    fraction: float | None
    """``done_seconds / total_seconds``, 0 to 1 (null while the total is unknown)."""


class WebhookAttemptObject(BaseModel):
    """One delivery attempt of a job's webhook event."""

    at: int
    """When it was made, unix seconds."""
    status_code: int | None
    """The receiver's HTTP status; null if it did not answer."""
    error: str | None
    """Why it failed; null if it succeeded."""


class JobWebhook(BaseModel):
    """Where a job's webhook event goes, and how its delivery went."""

    url: str
    status: Literal["waiting", "pending", "delivered", "failed", "none"]
    """``waiting`` (the job has not ended), ``pending`` (being delivered), ``delivered``,
    or ``failed`` (every attempt failed)."""
    attempts: list[WebhookAttemptObject]


class JobObject(BaseModel):
    """A transcription job."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    id: str
    """``job_`` and 32 hex digits."""
    object: Literal["transcription.job"] = "transcription.job"
    status: JobStatusName
    model: str | None
    """The model asked for; null: the server's default model."""
    task: Literal["transcribe", "translate"]
    language: str | None
    """The language asked for; null: detected."""
    response_format: ResponseFormat
    """The result's format when ``/result`` is asked without one."""
    created_at: int
    """Submission time, unix seconds."""
    started_at: int | None
    """When the first attempt started."""
    finished_at: int | None
    """When it succeeded, failed or was cancelled."""
    duration: float | None
    """Seconds of audio (null until decoded)."""
    progress: JobProgress
    attempts: int
    """Attempts started (a server that died during one, or a failure, makes another)."""
    max_attempts: int
    error: ErrorDetail | None
    """Why it failed (or why the last attempt failed, while it is retried)."""
    metadata: dict[str, Any]
    """The submitted ``metadata``."""
    webhook: JobWebhook | None
    """The webhook's URL and delivery; null without ``webhook_url``."""


class JobList(BaseModel):
    """A page of jobs, newest first."""

    object: Literal["list"] = "list"
    data: list[JobObject]
    first_id: str | None
    """The first job's id (null on an empty page)."""
    last_id: str | None
    """The last job's id: pass it as ``after`` for the next page."""
    has_more: bool
    """Whether older jobs follow."""

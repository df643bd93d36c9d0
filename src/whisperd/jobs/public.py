"""A job as its owner sees it: the JSON of the job object (API answers and webhook events).

The shape (``schemas/jobs.py`` documents it field by field)::

    {"id": "job_...", "object": "transcription.job", "status": "running",
     "model": "whisper-1" | null, "task": "transcribe", "language": "en" | null,
     "response_format": "json", "created_at": 1700000000, "started_at": ... | null,
     "finished_at": ... | null, "duration": 12.5 | null,
     "progress": {"done_seconds": 4.0, "total_seconds": 12.5 | null, "fraction": 0.32 | null},
     "attempts": 1, "max_attempts": 3, "error": {"message", "type", "param", "code"} | null,
     "metadata": {...},
     "webhook": {"url", "status", "attempts": [{"at", "status_code", "error"}]} | null}

Times are integer unix seconds (as OpenAI's objects have them); durations are seconds.
"""

from __future__ import annotations

import math
from typing import Any

from whisperd.jobs.model import Job

__all__ = ["JOB_OBJECT", "job_json"]

JOB_OBJECT = "transcription.job"
"""The ``object`` field of a job."""


def _time(value: float | None) -> int | None:
    return None if value is None else math.floor(value)


def job_json(job: Job) -> dict[str, Any]:
    """The public JSON of ``job`` (nothing of its owner, worker, lease or audio)."""
    total = job.duration_s
    done = min(job.progress_s, total) if total is not None else job.progress_s
    error = job.error
    return {
        "id": job.id,
        "object": JOB_OBJECT,
        "status": job.status.value,
        "model": job.model,
        "task": job.options.get("task", "transcribe"),
        "language": job.options.get("language"),
        "response_format": job.response_format,
        "created_at": _time(job.created_at),
        "started_at": _time(job.started_at),
        "finished_at": _time(job.finished_at),
        "duration": total,
        "progress": {
            "done_seconds": round(done, 3),
            "total_seconds": total,
            "fraction": round(done / total, 4) if total else None,
        },
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "error": None
        if error is None
        else {
            "message": error.message,
            "type": error.type,
            "param": error.param,
            "code": error.code,
        },
        "metadata": dict(job.metadata),
        "webhook": None
        if job.webhook_url is None
        else {
            "url": job.webhook_url,
            "status": job.webhook.value,
            "attempts": [
                {"at": _time(a.at), "status_code": a.status_code, "error": a.error}
                for a in job.webhook_attempts
            ],
        },
    }

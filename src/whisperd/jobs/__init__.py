"""Durable transcription jobs: records in a :class:`JobStore`, audio in a :class:`Spool`, run
by a :class:`JobRunner` through the same service as HTTP requests. Nothing here knows HTTP."""

from whisperd.jobs.model import FINISHED, Job, JobError, JobStatus, NewJob, WebhookState
from whisperd.jobs.opening import check_jobs, open_jobs
from whisperd.jobs.public import job_json
from whisperd.jobs.runner import JobRunner
from whisperd.jobs.service import JobService, Submission
from whisperd.jobs.spool import Spool
from whisperd.jobs.store import JobStore

__all__ = [
    "FINISHED",
    "Job",
    "JobError",
    "JobRunner",
    "JobService",
    "JobStatus",
    "JobStore",
    "NewJob",
    "Spool",
    "Submission",
    "WebhookState",
    "check_jobs",
    "job_json",
    "open_jobs",
]

"""Scheduling of model work: admission of requests and the batching scheduler of model calls."""

from whisperd.scheduler.admission import Admission
from whisperd.scheduler.batcher import Batcher, Priority

__all__ = ["Admission", "Batcher", "Priority"]

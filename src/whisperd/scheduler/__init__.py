"""Scheduling of model work: the bounded executor every model call runs on."""

from whisperd.scheduler.admission import Admission
from whisperd.scheduler.executor import ModelExecutor

__all__ = ["Admission", "ModelExecutor"]

"""The use cases of whisperd, shared by the HTTP APIs, the streams, the CLI and jobs."""

from whisperd.service.core import TranscriptionService
from whisperd.service.loading import whisper_loader
from whisperd.service.requests import Cancellation, TranscriptionRequest
from whisperd.service.transcription import Transcription

__all__ = [
    "Cancellation",
    "Transcription",
    "TranscriptionRequest",
    "TranscriptionService",
    "whisper_loader",
]

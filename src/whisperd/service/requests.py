"""What a caller hands the service: one transcription request, and a way to call it off."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from whisperd.scheduler.batcher import Priority

if TYPE_CHECKING:
    from whisperd.audio.decode import AudioSource
    from whisperd.diarization import DiarizationOptions
    from whisperd.engine.options import TranscribeOptions


@dataclass(frozen=True, slots=True)
class TranscriptionRequest:
    """One transcription, as every front end (HTTP APIs, CLI, jobs) describes it."""

    source: AudioSource
    """Where the audio is: bytes or a file, in any supported format."""
    options: TranscribeOptions
    """Every decoding control (task, language, beams, VAD, timestamps, ...)."""
    model: str | None = None
    """Model name, repository id or directory; None: the server's default model."""
    device: str | None = None
    """A per-request device wish (native API); the nearest this machine runs is used."""
    compute_type: str | None = None
    """A per-request compute-type wish (native API); the nearest the device runs is used."""
    priority: Priority = Priority.INTERACTIVE
    """Scheduling class of the request's model calls (BULK for CLI folders and jobs)."""
    diarization: DiarizationOptions | None = None
    """Label speakers (by voice, or one per channel); None: no speakers."""
    speaker_references: tuple[tuple[str, AudioSource], ...] = ()
    """Known speakers' names and voice clips (2 to 10 s each), decoded by the service into
    :attr:`DiarizationOptions.known_speakers`."""


@dataclass(slots=True)
class Cancellation:
    """Set by the caller's side when the result is no longer wanted (the client went away)."""

    event: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Ask the running work to stop before its next window."""
        self.event.set()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self.event.is_set()

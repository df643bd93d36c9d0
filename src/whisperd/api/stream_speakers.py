"""Baseten's ``enable_diarization``: a ``speaker`` on every final segment, one label per voice
for the whole stream (:class:`~whisperd.diarization.online.OnlineSpeakers`).

The stream's 16 kHz audio is kept for :data:`KEEP_S` seconds so a final's segments can be cut
from it; their embeddings come from the service's speaker model (its scheduler, at the
stream-final priority) on a worker thread. Partials carry no speaker.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from whisperd.diarization.online import OnlineSpeakers
from whisperd.engine.base import SAMPLE_RATE
from whisperd.streaming.session import Result

if TYPE_CHECKING:
    import numpy.typing as npt

    from whisperd.diarization import SpeakerEncoder
    from whisperd.streaming.session import Emit, Event

__all__ = ["KEEP_S", "StreamSpeakers", "with_speakers"]

KEEP_S = 120.0
"""Seconds of a stream's most recent audio kept for its finals' speakers."""


class StreamSpeakers:
    """One stream's audio and speakers."""

    def __init__(self, encoder: SpeakerEncoder) -> None:
        """Label with ``encoder`` (the service's speaker model, at stream priority)."""
        self._encoder = encoder
        self._speakers = OnlineSpeakers()
        self._audio = np.zeros(0, dtype=np.float32)
        self._base = 0
        """Stream sample index of ``self._audio[0]``."""

    def feed(self, samples: npt.NDArray[np.float32]) -> None:
        """Keep new 16 kHz audio (the stream's, in order, as the session is fed)."""
        self._audio = np.concatenate([self._audio, samples.astype(np.float32, copy=False)])
        excess = len(self._audio) - round(KEEP_S * SAMPLE_RATE)
        if excess > 0:
            self._audio = self._audio[excess:]
            self._base += excess

    def wrap(self, emit: Emit) -> Emit:
        """``emit`` with each final's segments labelled first."""

        async def labelled(event: Event) -> None:
            if isinstance(event, Result) and event.is_final and event.transcript.segments:
                event = with_speakers(event, await self.speakers(event))
            await emit(event)

        return labelled

    async def speakers(self, result: Result) -> list[str]:
        """A speaker per segment of a final ``result``."""
        segments = result.transcript.segments
        clips = [self._clip(result.start + s.start, result.start + s.end) for s in segments]
        embeddings = await asyncio.to_thread(self._encoder.embed, clips)
        return [
            self._speakers.label(embedding, len(clip) / SAMPLE_RATE)
            for embedding, clip in zip(embeddings, clips, strict=True)
        ]

    def _clip(self, start: float, end: float) -> npt.NDArray[np.float32]:
        low = max(round(start * SAMPLE_RATE) - self._base, 0)
        high = max(round(end * SAMPLE_RATE) - self._base, low)
        return self._audio[low:high]


def with_speakers(result: Result, speakers: list[str]) -> Result:
    """``result`` with ``speakers[i]`` on its ``i``-th segment."""
    segments = tuple(
        dataclasses.replace(segment, speaker=speaker)
        for segment, speaker in zip(result.transcript.segments, speakers, strict=True)
    )
    transcript = dataclasses.replace(result.transcript, segments=segments)
    return dataclasses.replace(result, transcript=transcript)

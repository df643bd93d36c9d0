"""Where to listen for voices: windows over the speech that word timestamps show.

Whisper's word timings say where there is speech; runs of words with gaps under
:data:`JOIN_GAP_S` form speech regions, and each region is covered by windows of the speaker
encoder's length (:data:`~whisperd.diarization.encoder.CLIP_S`) every :data:`STEP_S` (one
window for a shorter region), so a turn change inside a region shows in the windows around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from whisperd.diarization.encoder import CLIP_S

if TYPE_CHECKING:
    from collections.abc import Sequence

    from whisperd.engine.base import Word

__all__ = ["JOIN_GAP_S", "STEP_S", "Window", "speech_windows"]

JOIN_GAP_S = 0.5
"""Silence between words below which they belong to one speech region, in seconds."""
STEP_S = 0.8
"""Hop between windows in a region, in seconds: half a window. Against 0.4 s it halves the
speaker encoder's work (diarization took up to 43 % of the transcription's time on
back-to-back turns, now at most about 30 %) at the same DER; speaker changes are placed at
word boundaries afterwards (:mod:`~whisperd.diarization.boundaries`)."""


@dataclass(frozen=True, slots=True)
class Window:
    """A stretch of audio to embed, in seconds."""

    start: float
    end: float
    region: int = 0
    """Which speech region (0, 1, ... in time order) it lies in."""

    @property
    def centre(self) -> float:
        """Its middle, in seconds."""
        return (self.start + self.end) / 2


def speech_windows(words: Sequence[Word], duration: float) -> list[Window]:
    """Windows covering the speech regions of ``words`` (empty without words), within
    ``[0, duration]``."""
    windows: list[Window] = []
    for region, (start, end) in enumerate(_regions(words)):
        end = min(end, duration)
        if end - start <= CLIP_S:
            windows.append(Window(start, end, region))
            continue
        position = start
        while position + CLIP_S < end:
            windows.append(Window(position, position + CLIP_S, region))
            position += STEP_S
        windows.append(Window(end - CLIP_S, end, region))
    return [window for window in windows if window.end > window.start]


def _regions(words: Sequence[Word]) -> list[tuple[float, float]]:
    regions: list[tuple[float, float]] = []
    for word in sorted(words, key=lambda item: item.start):
        if regions and word.start - regions[-1][1] < JOIN_GAP_S:
            regions[-1] = (regions[-1][0], max(regions[-1][1], word.end))
        else:
            regions.append((word.start, word.end))
    return regions

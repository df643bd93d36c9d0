"""Speakers of a live stream: each final's voice joins the nearest speaker heard so far, or
starts a new one, so a speaker keeps one label for the whole stream.

A clip whose embedding is within :data:`~whisperd.diarization.clustering.MERGE_DISTANCE`
(cosine) of a speaker's running centroid takes that speaker's label and moves the centroid
toward it; otherwise it is the next speaker (``A``, ``B``, ...). Clips shorter than
:data:`MIN_NEW_SPEAKER_S` never start a speaker (too little voice to tell), they take the
nearest one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from whisperd.diarization.clustering import MERGE_DISTANCE
from whisperd.diarization.naming import letters

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["MIN_NEW_SPEAKER_S", "OnlineSpeakers"]

MIN_NEW_SPEAKER_S = 1.0
"""Shortest clip, in seconds, that may start a new speaker."""


class OnlineSpeakers:
    """The speakers of one stream so far (not thread-safe: one stream, one caller)."""

    def __init__(self) -> None:
        """No speakers yet."""
        self._centroids: list[npt.NDArray[np.float64]] = []
        self._labels: list[str] = []

    def label(self, embedding: npt.NDArray[np.float32], seconds: float) -> str:
        """The speaker of a clip of ``seconds`` with this L2-normalised ``embedding``."""
        if self._centroids:
            similarity = np.array([float(c @ embedding) for c in self._centroids])
            best = int(similarity.argmax())
            near = similarity[best] >= 1 - MERGE_DISTANCE
            if near or seconds < MIN_NEW_SPEAKER_S:
                moved = self._centroids[best] + embedding
                self._centroids[best] = moved / max(float(np.linalg.norm(moved)), 1e-9)
                return self._labels[best]
        self._centroids.append(embedding.astype(np.float64))
        self._labels.append(letters(len(self._labels) + 1)[-1])
        return self._labels[-1]

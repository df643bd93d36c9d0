"""Speaker changes moved to where the voices change: re-segmentation at each change point.

The windows that cluster the voices are :data:`~whisperd.diarization.encoder.CLIP_S` long, so
near a turn change with no pause the windows straddle both voices and the first labelling
places the change up to a window's length off (a change at a pause is left alone: the windows
do not cross pauses). For each change between word ``i - 1``
(speaker ``L``) and word ``i`` (speaker ``R``), the word boundaries within
:data:`SEARCH_WORDS` words either side (not past the neighbouring changes) are candidates: the
clip of up to ``CLIP_S`` before a candidate and the clip after it are embedded, and the change
moves to the candidate where the clip before sounds most like ``L`` and the clip after most
like ``R`` (the sum of the two margins of cosine similarity to the speakers' centroids, plus
:data:`SENTENCE_END_BONUS` after a word that ends a sentence). The search scores the
boundaries one word either side first and steps outwards while the best is at its edge (each
round one encoder call for every change). Each clip stays within the two turns, so it
holds one voice when the candidate is right.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from whisperd.diarization.encoder import CLIP_S
from whisperd.diarization.windows import JOIN_GAP_S
from whisperd.engine.base import SAMPLE_RATE

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

    from whisperd.diarization.encoder import SpeakerEncoder
    from whisperd.engine.base import Word

__all__ = ["SEARCH_WORDS", "refine_changes"]

SEARCH_WORDS = 3
"""Furthest a first-pass speaker change moves, in words. The search starts with the boundaries
one word either side and steps outwards only while the best score is at its edge, so a change
that is right costs three candidates instead of seven: diarization took 25 % of the
transcription's time on back-to-back turns, against 44-61 % with every candidate embedded, at
the same DER (``bench/bench_diarization.py``)."""
SENTENCE_END_BONUS = 0.1
"""Added to the score of a boundary after a word that ends a sentence (``.``, ``?``, ``!``):
turns change at sentence ends far more often than inside them."""
_MIN_CLIP_S = 0.3
"""A candidate whose clip on either side is shorter than this is not looked at."""


@dataclass(frozen=True, slots=True)
class _Change:
    """A speaker change before word ``at``, from speaker ``left`` to ``right``, whose
    candidate boundaries are before words ``low`` to ``high`` (inclusive)."""

    at: int
    left: int
    right: int
    low: int
    high: int


def refine_changes(
    words: Sequence[Word],
    labels: Sequence[int],
    samples: npt.NDArray[np.float32],
    centroids: npt.NDArray[np.float32],
    encoder: SpeakerEncoder,
) -> list[int]:
    """``labels`` (a cluster per word, words in time order) with each speaker change moved to
    the best nearby word boundary (see the module's rules).

    Args:
        words: The transcript's words, in time order.
        labels: Their first-pass clusters, numbered as ``centroids``' rows.
        samples: The 16 kHz mono audio.
        centroids: ``(clusters, dim)`` L2-normalised centroids of the clusters.
        encoder: The speaker model.
    """
    changes = _changes(words, labels)
    scores: list[dict[int, float]] = [{} for _ in changes]
    wanted = {
        number: range(max(change.low, change.at - 1), min(change.high, change.at + 1) + 1)
        for number, change in enumerate(changes)
    }
    while wanted:
        _score(words, changes, wanted, samples, centroids, encoder, scores)
        wanted = _next_steps(changes, scores)
    out = list(labels)
    for change, scored in zip(changes, scores, strict=True):
        if not scored:
            continue
        boundary = max(scored, key=lambda candidate: scored[candidate])
        for index in range(min(boundary, change.at), max(boundary, change.at)):
            out[index] = change.left if index < boundary else change.right
    return out


def _score(
    words: Sequence[Word],
    changes: Sequence[_Change],
    wanted: dict[int, range],
    samples: npt.NDArray[np.float32],
    centroids: npt.NDArray[np.float32],
    encoder: SpeakerEncoder,
    scores: list[dict[int, float]],
) -> None:
    """Score the ``wanted`` boundaries of each change (all in one encoder call) into
    ``scores``; a boundary whose clips are too short scores minus infinity."""
    clips: list[npt.NDArray[np.float32]] = []
    owners: list[tuple[int, int]] = []
    for number, boundaries in wanted.items():
        first = changes[number - 1].at if number else 0
        last = changes[number + 1].at if number + 1 < len(changes) else len(words)
        for boundary in boundaries:
            pair = _clips(words, boundary, first, last, samples)
            if pair is None:
                scores[number][boundary] = -np.inf
                continue
            clips.extend(pair)
            owners.append((number, boundary))
    if not clips:
        return
    embeddings = encoder.embed(clips)
    for index, (number, boundary) in enumerate(owners):
        change = changes[number]
        before, after = embeddings[2 * index], embeddings[2 * index + 1]
        margin_before = before @ (centroids[change.left] - centroids[change.right])
        margin_after = after @ (centroids[change.right] - centroids[change.left])
        ends = words[boundary - 1].word.strip().endswith((".", "?", "!"))
        score = float(margin_before + margin_after) + (SENTENCE_END_BONUS if ends else 0.0)
        scores[number][boundary] = score


def _next_steps(changes: Sequence[_Change], scores: list[dict[int, float]]) -> dict[int, range]:
    """For each change whose best boundary so far is the outermost scored on one side, the next
    boundary on that side (within its candidates): the search climbs while the score rises."""
    steps: dict[int, range] = {}
    for number, (change, scored) in enumerate(zip(changes, scores, strict=True)):
        if not scored or max(scored.values()) == -np.inf:
            continue
        best = max(scored, key=lambda candidate: scored[candidate])
        if best == min(scored) and best - 1 >= change.low:
            steps[number] = range(best - 1, best)
        elif best == max(scored) and best + 1 <= change.high:
            steps[number] = range(best + 1, best + 2)
    return steps


def _changes(words: Sequence[Word], labels: Sequence[int]) -> list[_Change]:
    """Every speaker change inside a speech region (not at a pause of
    :data:`~whisperd.diarization.windows.JOIN_GAP_S` or more, where no window straddled it),
    with its candidates bounded by the changes around it."""
    at = [
        index
        for index in range(1, len(labels))
        if labels[index] != labels[index - 1]
        and words[index].start - words[index - 1].end < JOIN_GAP_S
    ]
    changes = []
    for number, index in enumerate(at):
        previous = at[number - 1] if number else 0
        following = at[number + 1] if number + 1 < len(at) else len(labels)
        low = max(index - SEARCH_WORDS, previous + 1)
        high = min(index + SEARCH_WORDS, following - 1)
        changes.append(_Change(index, labels[index - 1], labels[index], low, high))
    return changes


def _clips(
    words: Sequence[Word],
    boundary: int,
    first: int,
    last: int,
    samples: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None:
    """The audio before and after the boundary before word ``boundary``, each at most
    ``CLIP_S`` and within words ``first`` to ``last - 1``; None if either is too short."""
    time = (words[boundary - 1].end + words[boundary].start) / 2
    start = max(time - CLIP_S, words[first].start)
    end = min(time + CLIP_S, words[last - 1].end)
    if time - start < _MIN_CLIP_S or end - time < _MIN_CLIP_S:
        return None
    cut = round(time * SAMPLE_RATE)
    return samples[round(start * SAMPLE_RATE) : cut], samples[cut : round(end * SAMPLE_RATE)]

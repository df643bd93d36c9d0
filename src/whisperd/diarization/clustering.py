"""Grouping voice embeddings into speakers: agglomerative clustering on cosine distance.

scipy's average-linkage hierarchy joins windows whose mean cosine distance is below
:data:`MERGE_DISTANCE`; the number of speakers is where that cut falls, held within the
request's bounds (an exact ``num_speakers`` cuts the tree at that many clusters). A cluster
whose voice is never heard alone (:func:`heard_alone`: windows straddling a turn change, one
voice's windows that sound unlike the rest of its turns) joins its nearest cluster; a speaker
who says one short sentence between pauses keeps a label. Without the windows' times, a
cluster of fewer than :data:`MIN_CLUSTER_WINDOWS` windows joins its nearest instead.

GE2E embeddings of one voice sit within about 0.2 of each other, though one voice's turns can
split at up to 0.36, and distinct voices 0.27 to 0.5 apart. With clusters kept only when
heard alone, every cut from 0.25 to 0.27 told the 2 and 4 espeak-ng voices of the benchmark
apart; 0.28 merged two of four voices and 0.24 split one (``bench/bench_diarization.py``,
docs/benchmarks.md).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

from whisperd.diarization.encoder import CLIP_S
from whisperd.diarization.windows import STEP_S

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

    from whisperd.diarization.windows import Window

__all__ = ["MERGE_DISTANCE", "cluster", "heard_alone"]

MERGE_DISTANCE = 0.26
"""Cosine distance below which average-linkage joins two groups of windows: the middle of the
range that worked (0.25 to 0.27)."""
MIN_CLUSTER_WINDOWS = 6
"""Without the windows' times, a cluster of fewer windows joins its nearest, window by window,
when the bounds allow it."""
ALONE_RUN_WINDOWS = round(CLIP_S / STEP_S) + 1
"""Consecutive windows of one cluster in one speech region that show a voice heard alone: a
turn change with no pause straddles at most ``CLIP_S / STEP_S`` windows (2)."""


def cluster(
    embeddings: npt.NDArray[np.float32],
    bounds: tuple[int, int],
    merge_distance: float = MERGE_DISTANCE,
    windows: Sequence[Window] = (),
) -> npt.NDArray[np.int64]:
    """A cluster number (0, 1, ...) per embedding, numbered by first appearance.

    Args:
        embeddings: ``(n, dim)`` L2-normalised embeddings.
        bounds: Least and most clusters (equal for an exact count); capped at ``n``.
        merge_distance: Cosine distance below which groups join (the benchmark sweeps it).
        windows: The ``n`` windows embedded, in time order, if known: a small cluster whose
            voice is heard alone in them (:func:`heard_alone`) is kept.
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    count = len(embeddings)
    if count < 2:
        return np.zeros(count, dtype=np.int64)
    tree = linkage(embeddings.astype(np.float64), method="average", metric="cosine")
    labels = fcluster(tree, t=merge_distance, criterion="distance")
    least, most = min(bounds[0], count), min(bounds[1], count)
    if bounds[0] != bounds[1]:
        labels = _absorb_unheard(embeddings, labels, least, _voices(labels, windows))
    found = len(set(labels.tolist()))
    if not least <= found <= most:
        labels = fcluster(tree, t=max(least, min(found, most)), criterion="maxclust")
    return _by_appearance(labels)


def _voices(labels: npt.NDArray[np.int32], windows: Sequence[Window]) -> set[int]:
    """The clusters that are voices: those heard alone when the windows are known, else those
    of at least :data:`MIN_CLUSTER_WINDOWS` windows."""
    if len(windows) == len(labels):
        return heard_alone(labels.tolist(), windows)
    names, counts = np.unique(labels, return_counts=True)
    return {
        int(name) for name, count in zip(names, counts, strict=True) if count >= MIN_CLUSTER_WINDOWS
    }


def heard_alone(labels: Sequence[int], windows: Sequence[Window]) -> set[int]:
    """The clusters heard alone somewhere: a run of consecutive windows with that label in one
    speech region that is either the whole region, at least ``CLIP_S`` long (a sentence said
    between pauses), or :data:`ALONE_RUN_WINDOWS` windows (longer than any straddle)."""
    regions = Counter(window.region for window in windows)
    alone: set[int] = set()
    first = 0
    for index in range(1, len(labels) + 1):
        ended = (
            index == len(labels)
            or labels[index] != labels[first]
            or windows[index].region != windows[first].region
        )
        if not ended:
            continue
        run = index - first
        span = windows[index - 1].end - windows[first].start
        whole = run == regions[windows[first].region]
        if (whole and span >= CLIP_S - 1e-6) or run >= ALONE_RUN_WINDOWS:
            alone.add(labels[first])
        first = index
    return alone


def _absorb_unheard(
    embeddings: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int32],
    least: int,
    voices: set[int],
) -> npt.NDArray[np.int32]:
    """Move the windows of clusters not in ``voices`` to the nearest voice's centroid, unless
    that would leave fewer than ``least`` clusters (or none)."""
    big = sorted(voices)
    if not big or len(big) < least:
        return labels
    centroids = np.stack([embeddings[labels == name].mean(axis=0) for name in big])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    out = labels.copy()
    for index in np.flatnonzero(~np.isin(labels, big)):
        out[index] = big[int((centroids @ embeddings[index]).argmax())]
    return out


def _by_appearance(labels: npt.NDArray[np.int32]) -> npt.NDArray[np.int64]:
    order: dict[int, int] = {}
    for label in labels.tolist():
        order.setdefault(label, len(order))
    return np.array([order[label] for label in labels.tolist()], dtype=np.int64)

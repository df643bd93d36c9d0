"""Grouping voice embeddings into speakers: agglomerative clustering on cosine distance.

scipy's average-linkage hierarchy joins windows whose mean cosine distance is below
:data:`MERGE_DISTANCE`; the number of speakers is where that cut falls, held within the
request's bounds (an exact ``num_speakers`` cuts the tree at that many clusters). A cluster
of fewer than :data:`MIN_CLUSTER_WINDOWS` windows (a few seconds of distinct voice: windows
straddling a turn change, a cough) joins its nearest cluster, unless the voice is heard alone
(:func:`heard_alone`): a speaker who says one short sentence between pauses keeps a label.
GE2E embeddings of one voice sit within about 0.2 of each other and distinct voices 0.23 to
0.5 apart; 0.27 told 2 and 4 espeak-ng voices apart best, where 0.3 merged two male voices
and 0.25 split voices (``bench/bench_diarization.py``, docs/benchmarks.md).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

from whisperd.diarization.encoder import CLIP_S

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

    from whisperd.diarization.windows import Window

__all__ = ["MERGE_DISTANCE", "cluster", "heard_alone"]

MERGE_DISTANCE = 0.27
"""Cosine distance below which average-linkage joins two groups of windows."""
MIN_CLUSTER_WINDOWS = 6
"""A cluster of fewer windows (under about 3.6 s of voice) joins its nearest, window by
window, when the bounds allow it: windows straddling a turn change with no pause mix two
voices and otherwise form clusters of their own."""
ALONE_RUN_WINDOWS = 5
"""Consecutive windows of one cluster in one speech region that show a voice heard alone: a
turn change straddles at most ``CLIP_S / STEP_S`` = 4 windows."""


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
    found = len(set(labels.tolist()))
    if not least <= found <= most:
        labels = fcluster(tree, t=max(least, min(found, most)), criterion="maxclust")
    elif bounds[0] != bounds[1]:
        kept = heard_alone(labels.tolist(), windows) if len(windows) == count else set()
        labels = _absorb_small(embeddings, labels, least, kept)
    return _by_appearance(labels)


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


def _absorb_small(
    embeddings: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int32],
    least: int,
    kept: set[int],
) -> npt.NDArray[np.int32]:
    """Move the windows of clusters under :data:`MIN_CLUSTER_WINDOWS` (except those in
    ``kept``) to the nearest larger cluster's centroid, keeping at least ``least`` clusters."""
    names, counts = np.unique(labels, return_counts=True)
    big = [
        name
        for name, count in zip(names, counts, strict=True)
        if count >= MIN_CLUSTER_WINDOWS or int(name) in kept
    ]
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

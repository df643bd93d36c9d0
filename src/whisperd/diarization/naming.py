"""Speaker labels: known speakers by name, the others ``A``, ``B``, ... (OpenAI's rule).

A cluster takes a known speaker's name when the two are paired by the best one-to-one match
of their cosine similarities (scipy's ``linear_sum_assignment``) and that similarity is at
least :data:`KNOWN_MATCH`; every other cluster gets the next free letter, in order of first
appearance.
"""

from __future__ import annotations

import string
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

__all__ = ["KNOWN_MATCH", "letters", "speaker_labels"]

KNOWN_MATCH = 0.7
"""Least cosine similarity between a cluster's centroid and a known speaker's reference for
the cluster to take that speaker's name."""


def letters(count: int, taken: Sequence[str] = ()) -> list[str]:
    """The first ``count`` labels ``A``, ``B``, ..., ``Z``, ``AA``, ... not in ``taken``."""
    out: list[str] = []
    index = 0
    while len(out) < count:
        label = _letter(index)
        if label not in taken:
            out.append(label)
        index += 1
    return out


def _letter(index: int) -> str:
    letters_ = string.ascii_uppercase
    return letters_[index] if index < 26 else _letter(index // 26 - 1) + letters_[index % 26]


def speaker_labels(
    centroids: npt.NDArray[np.float32],
    references: npt.NDArray[np.float32],
    names: Sequence[str],
) -> list[str]:
    """A label per cluster (``centroids`` in order of first appearance).

    Args:
        centroids: ``(clusters, dim)`` L2-normalised cluster centroids.
        references: ``(known, dim)`` L2-normalised embeddings of the known speakers' clips.
        names: The known speakers' names, paired with ``references`` by index.
    """
    chosen: dict[int, str] = {}
    if len(names) and len(centroids):
        from scipy.optimize import linear_sum_assignment

        similarity = centroids @ references.T
        rows, cols = linear_sum_assignment(-similarity)
        for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
            if similarity[row, col] >= KNOWN_MATCH:
                chosen[row] = names[col]
    free = iter(letters(len(centroids) - len(chosen), taken=list(names)))
    return [chosen.get(index) or next(free) for index in range(len(centroids))]

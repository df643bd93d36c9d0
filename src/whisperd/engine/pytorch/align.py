"""Word alignment from cross-attention: Whisper's median filter and dynamic time warping."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.floating[Any]]


def median_filter(x: FloatArray, width: int) -> FloatArray:
    """Median over a sliding window of odd ``width`` along the last axis, reflect-padded."""
    pad = width // 2
    if width <= 1 or x.shape[-1] <= pad:
        return x
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, width, axis=-1)
    result: FloatArray = np.sort(windows, axis=-1)[..., pad]
    return result


def dtw(cost: FloatArray) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Dynamic time warping through ``cost`` ``[N, M]``: the (row, column) path, in order.

    Ties go diagonal first only when the diagonal is strictly cheapest, then up, then left,
    as in Whisper's reference implementation. The recursion runs one anti-diagonal at a time.
    """
    rows, cols = cost.shape
    total = np.full((rows + 1, cols + 1), np.inf)
    total[0, 0] = 0.0
    trace = np.full((rows + 1, cols + 1), -1, dtype=np.int8)
    for diagonal in range(2, rows + cols + 1):
        i = np.arange(max(1, diagonal - cols), min(rows, diagonal - 1) + 1)
        j = diagonal - i
        c0, c1, c2 = total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]
        step = np.where((c0 < c1) & (c0 < c2), 0, np.where((c1 < c0) & (c1 < c2), 1, 2))
        best = np.choose(step, [c0, c1, c2])
        total[i, j] = cost[i - 1, j - 1] + best
        trace[i, j] = step
    trace[0, :] = 2
    trace[:, 0] = 1
    path_i, path_j = [], []
    i, j = rows, cols
    while i > 0 or j > 0:
        path_i.append(i - 1)
        path_j.append(j - 1)
        move = trace[i, j]
        if move == 0:
            i, j = i - 1, j - 1
        elif move == 1:
            i -= 1
        else:
            j -= 1
    return np.array(path_i[::-1], dtype=np.int64), np.array(path_j[::-1], dtype=np.int64)


def alignment_path(weights: FloatArray, rows: slice, median_width: int) -> list[tuple[int, int]]:
    """Text-token/time-frame pairs from alignment-head attention ``[heads, tokens, frames]``.

    As CTranslate2 does it: each head's weights are standardized over every token of the
    sequence, median-filtered along time and averaged over heads; then the ``rows`` of the
    text (from ``<|notimestamps|>`` to the last text token) are warped against time.
    """
    std = weights.std(axis=-2, keepdims=True)
    mean = weights.mean(axis=-2, keepdims=True)
    normalized = (weights - mean) / std
    matrix = median_filter(normalized, median_width).mean(axis=0)[rows]
    text_index, time_index = dtw(-matrix)
    return list(zip(text_index.tolist(), time_index.tolist(), strict=True))

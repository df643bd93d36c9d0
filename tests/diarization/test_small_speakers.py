"""A speaker heard only briefly keeps a label when the voice is heard alone, while windows that
straddle a turn change still join a neighbour."""

from __future__ import annotations

import numpy as np

from whisperd.diarization.clustering import cluster, heard_alone
from whisperd.diarization.windows import STEP_S, Window


def unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def region_windows(region: int, start: float, count: int, length: float = 1.6) -> list[Window]:
    """``count`` windows of one region, ``STEP_S`` apart."""
    return [Window(start + i * STEP_S, start + i * STEP_S + length, region) for i in range(count)]


def embeddings(voices: list[int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return unit(np.eye(16)[voices] + rng.normal(0, 0.05, (len(voices), 16)))


def test_a_short_sentence_between_pauses_keeps_its_speaker() -> None:
    windows = region_windows(0, 0.0, 10) + region_windows(1, 6.0, 3) + region_windows(2, 9.0, 10)
    voices = [0] * 10 + [1] * 3 + [0] * 10
    labels = cluster(embeddings(voices), (1, 8), windows=windows)
    assert labels.tolist() == [0] * 10 + [1] * 3 + [0] * 10


def test_without_windows_a_small_cluster_still_joins_its_nearest() -> None:
    voices = [0] * 10 + [1] * 3 + [0] * 10
    assert set(cluster(embeddings(voices), (1, 8)).tolist()) == {0}


def test_windows_straddling_a_change_join_a_neighbour() -> None:
    windows = region_windows(0, 0.0, 24)
    voices = [0] * 10 + [2, 2] + [1] * 12  # two mixed windows at a change with no pause
    labels = cluster(embeddings(voices), (1, 8), windows=windows).tolist()
    assert set(labels) == {0, 1}
    assert labels[:10] == [0] * 10
    assert labels[12:] == [1] * 12


def test_a_run_longer_than_any_straddle_is_a_voice() -> None:
    windows = region_windows(0, 0.0, 23)
    voices = [0] * 10 + [1] * 3 + [0] * 10
    assert heard_alone(voices, windows) == {0, 1}
    assert heard_alone([0] * 10 + [1] * 2 + [0] * 10, windows[:22]) == {0}


def test_a_large_cluster_never_heard_alone_joins_its_nearest() -> None:
    windows = region_windows(0, 0.0, 30)
    unlike = ([0] * 4 + [1] * 2) * 5  # one voice whose windows now and then sound unlike it
    voice, aside = np.eye(16)[0], 0.7 * np.eye(16)[0] + 0.71 * np.eye(16)[1]  # 0.3 apart
    rng = np.random.default_rng(3)
    vectors = np.stack([aside if odd else voice for odd in unlike])
    vectors = unit(vectors + rng.normal(0, 0.02, vectors.shape))
    assert len(set(cluster(vectors, (1, 8)).tolist())) == 2  # 12 windows: a voice by size
    assert set(cluster(vectors, (1, 8), windows=windows).tolist()) == {0}


def test_a_whole_region_shorter_than_a_window_is_not_enough() -> None:
    windows = [*region_windows(0, 0.0, 10), Window(6.0, 7.0, 1), *region_windows(2, 9.0, 10)]
    assert heard_alone([0] * 10 + [1] + [0] * 10, windows) == {0}
    voices = [0] * 10 + [1] + [0] * 10
    assert set(cluster(embeddings(voices), (1, 8), windows=windows).tolist()) == {0}

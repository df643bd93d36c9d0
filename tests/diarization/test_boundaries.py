"""Speaker changes re-placed at the word boundary where the voices change, on a made-up
encoder whose embedding says how loud a clip is (quiet: one voice, loud: the other)."""

from __future__ import annotations

import numpy as np

from whisperd.diarization import KnownSpeaker
from whisperd.diarization.boundaries import refine_changes
from whisperd.diarization.diarizer import reference_embeddings
from whisperd.engine.base import SAMPLE_RATE, Word


class Loudness:
    """Embeds a clip as (share of quiet samples, share of loud samples), normalised."""

    dimension = 2

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        rows = [[np.mean(np.abs(c) < 0.3) + 1e-3, np.mean(np.abs(c) >= 0.3) + 1e-3] for c in clips]
        out = np.array(rows, dtype=np.float32)
        normalised: np.ndarray = out / np.linalg.norm(out, axis=1, keepdims=True)
        return normalised


CENTROIDS = np.eye(2, dtype=np.float32)


def words(count: int, length: float = 0.5) -> list[Word]:
    """``count`` back-to-back words of ``length`` seconds, the third ending a sentence."""
    return [
        Word(i * length, (i + 1) * length, " word." if i == 2 else " word", 0.9)
        for i in range(count)
    ]


def test_a_late_change_moves_back_to_where_the_voice_changes() -> None:
    samples = np.full(5 * SAMPLE_RATE, 0.1, dtype=np.float32)
    samples[2 * SAMPLE_RATE :] = 0.5  # the second voice from 2.0 s: before word 4
    labels = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]  # first pass: the change before word 6 (3.0 s)
    refined = refine_changes(words(10), labels, samples, CENTROIDS, Loudness())
    assert refined == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]


def test_a_sentence_end_wins_a_near_tie() -> None:
    samples = np.full(5 * SAMPLE_RATE, 0.1, dtype=np.float32)
    samples[round(1.75 * SAMPLE_RATE) :] = 0.5  # halfway into word 3
    labels = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    refined = refine_changes(words(10), labels, samples, CENTROIDS, Loudness())
    assert refined == [0, 0, 0, 1, 1, 1, 1, 1, 1, 1]  # after "word." (word 2)


def test_without_a_change_nothing_is_embedded() -> None:
    class Refusing(Loudness):
        def embed(self, clips: list[np.ndarray]) -> np.ndarray:
            raise AssertionError("no clip should be embedded")

    samples = np.zeros(5 * SAMPLE_RATE, dtype=np.float32)
    assert refine_changes(words(10), [1] * 10, samples, CENTROIDS, Refusing()) == [1] * 10


def test_known_speakers_given_as_embeddings_are_not_embedded_again() -> None:
    given = np.array([0.0, 1.0], dtype=np.float32)
    known = (
        KnownSpeaker("clip", np.full(SAMPLE_RATE, 0.1, dtype=np.float32)),
        KnownSpeaker("stored", embedding=given),
    )
    references = reference_embeddings(known, Loudness())
    assert references[1].tolist() == [0.0, 1.0]
    assert references[0][0] > 0.99

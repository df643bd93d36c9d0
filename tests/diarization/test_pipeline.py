"""The diarizer's parts on made-up inputs: clustering, windows, word and segment labels,
names, channel merging, options; and the front end against librosa's numbers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from whisperd.diarization import DiarizationOptions, KnownSpeaker, channel_labels, merge_channels
from whisperd.diarization.assignment import label_words, split_segments
from whisperd.diarization.clustering import cluster
from whisperd.diarization.diarizer import diarize
from whisperd.diarization.mel import mel_filters, mel_spectrogram
from whisperd.diarization.naming import letters, speaker_labels
from whisperd.diarization.windows import Window, speech_windows
from whisperd.engine.base import SAMPLE_RATE, Segment, Transcript, Word
from whisperd.errors import InvalidOptionError


def unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def voices(rng: np.random.Generator, centres: list[int], spread: float = 0.05) -> np.ndarray:
    """Embeddings near the given basis directions (one row per entry of ``centres``)."""
    basis = np.eye(16)
    return unit(basis[centres] + rng.normal(0, spread, (len(centres), 16)))


def test_two_voices_make_two_clusters_numbered_by_appearance() -> None:
    rng = np.random.default_rng(0)
    labels = cluster(voices(rng, [3, 3, 5, 5, 3, 5]), (1, 8))
    assert labels.tolist() == [0, 0, 1, 1, 0, 1]


def test_one_voice_is_one_cluster() -> None:
    rng = np.random.default_rng(1)
    assert set(cluster(voices(rng, [2] * 10), (1, 8)).tolist()) == {0}


def test_counts_are_held_within_the_bounds() -> None:
    rng = np.random.default_rng(2)
    embeddings = voices(rng, [0, 1, 2, 3, 0, 1, 2, 3])
    assert len(set(cluster(embeddings, (1, 8)).tolist())) == 4
    assert len(set(cluster(embeddings, (2, 2)).tolist())) == 2
    assert len(set(cluster(voices(rng, [1] * 6), (3, 3)).tolist())) == 3
    assert cluster(embeddings[:1], (2, 4)).tolist() == [0]


def word(start: float, end: float, text: str = " w") -> Word:
    return Word(start, end, text, 0.9)


def segment(index: int, words: list[Word]) -> Segment:
    text = "".join(w.word for w in words)
    return Segment(
        index, 0, words[0].start, words[-1].end, text, (1, 2), 0.0, -0.1, 1.2, 0.01, tuple(words)
    )


def test_windows_cover_speech_regions_only() -> None:
    words = [word(0.0, 0.5), word(0.6, 1.0), word(5.0, 9.0)]
    windows = speech_windows(words, duration=10.0)
    assert windows[0] == Window(0.0, 1.0)
    assert all(w.start >= 5.0 for w in windows[1:])
    assert windows[-1].end == 9.0
    assert all(w.end - w.start <= 1.6 + 1e-9 for w in windows)
    assert speech_windows([], duration=3.0) == []


def test_a_word_takes_its_windows_majority_and_short_flips_are_smoothed() -> None:
    words = [word(t, t + 0.3) for t in (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)]
    windows = [Window(t, t + 0.4) for t in (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)]
    assert label_words(words, windows, [0, 0, 1, 0, 0, 0]) == [0] * 6
    assert label_words(words, windows, [0, 0, 0, 1, 1, 1]) == [0, 0, 0, 1, 1, 1]


def test_segments_are_split_where_the_speaker_changes() -> None:
    first = [word(0.0, 0.4, " Hello"), word(0.5, 0.9, " there."), word(1.0, 1.4, " Hi!")]
    second = [word(2.0, 2.5, " Bye.")]
    segments = split_segments([segment(0, first), segment(1, second)], ["A", "A", "B", "B"])
    assert [(s.id, s.speaker, s.text) for s in segments] == [
        (0, "A", " Hello there."),
        (1, "B", " Hi!"),
        (2, "B", " Bye."),
    ]
    assert segments[1].start == 1.0
    assert segments[1].tokens == ()
    assert segments[2].tokens == (1, 2)  # a whole segment keeps its tokens
    assert all(w.speaker == s.speaker for s in segments for w in s.words or ())


def test_names_go_to_matching_clusters_and_letters_to_the_rest() -> None:
    rng = np.random.default_rng(3)
    centroids = voices(rng, [0, 1, 2])
    references = voices(rng, [2, 7])
    assert speaker_labels(centroids, references, ["agent", "nobody"]) == ["A", "B", "agent"]
    assert speaker_labels(centroids, references[:0], []) == ["A", "B", "C"]
    assert letters(3, taken=["B"]) == ["A", "C", "D"]
    assert letters(28)[-2:] == ["AA", "AB"]


class Basis:
    """A speaker encoder whose embedding is the clip's loudness pattern: a clip of level
    0.1 embeds one way, 0.5 another, so a test controls who speaks where."""

    dimension = 2

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        rows = [[1.0, 0.05] if np.abs(clip).mean() < 0.3 else [0.05, 1.0] for clip in clips]
        return unit(np.array(rows, dtype=np.float64).reshape(-1, 2))


def test_diarize_labels_turns_from_the_encoder_s_embeddings() -> None:
    samples = np.full(6 * SAMPLE_RATE, 0.1, dtype=np.float32)
    samples[3 * SAMPLE_RATE :] = 0.5
    first = [word(0.2, 0.8, " One"), word(0.9, 2.6, " two.")]
    second = [word(3.2, 4.0, " Three"), word(4.1, 5.8, " four.")]
    transcript = Transcript((segment(0, first), segment(1, second)), "en", 1.0, 6.0)
    diarized = diarize(transcript, samples, DiarizationOptions(), Basis())
    assert [s.speaker for s in diarized.segments] == ["A", "B"]
    reference = KnownSpeaker("loud", np.full(3 * SAMPLE_RATE, 0.5, dtype=np.float32))
    named = diarize(transcript, samples, DiarizationOptions(known_speakers=(reference,)), Basis())
    assert [s.speaker for s in named.segments] == ["A", "loud"]


def test_diarize_leaves_a_transcript_without_words_alone() -> None:
    empty = Transcript((), "en", 1.0, 2.0)
    assert (
        diarize(empty, np.zeros(2 * SAMPLE_RATE, np.float32), DiarizationOptions(), Basis())
        is empty
    )


def test_channels_merge_by_time_each_labelled() -> None:
    left = Transcript((segment(0, [word(0.0, 1.0)]), segment(1, [word(4.0, 5.0)])), "en", 1.0, 6.0)
    right = Transcript((segment(0, [word(2.0, 3.0)]),), "en", 1.0, 6.5)
    merged = merge_channels([left, right], channel_labels(2, ["agent"]))
    assert [(s.id, s.speaker, s.start) for s in merged.segments] == [
        (0, "agent", 0.0),
        (1, "A", 2.0),
        (2, "agent", 4.0),
    ]
    assert merged.segments[1].words is not None
    assert merged.segments[1].words[0].speaker == "A"
    assert merged.duration == 6.5


def test_a_channels_segment_is_timed_by_its_words_and_split_where_another_channel_speaks() -> None:
    one_turn = dataclasses.replace(segment(0, [word(1.0, 2.0, " a")]), start=0.0, end=4.0)
    spans_two_turns = Segment(
        1, 0, 4.0, 14.5, " b c d", (1, 2), 0.0, -0.1, 1.2, 0.01,
        (word(5.0, 6.0, " b"), word(6.1, 7.0, " c"), word(10.0, 11.0, " d")),
    )  # fmt: skip
    left = Transcript((one_turn, spans_two_turns), "en", 1.0, 15.0)
    right = Transcript((segment(0, [word(8.0, 9.0, " x")]),), "en", 1.0, 15.0)

    merged = merge_channels([left, right], ["agent", "customer"])

    assert [(s.speaker, s.start, s.end, s.text) for s in merged.segments] == [
        ("agent", 1.0, 2.0, " a"),
        ("agent", 5.0, 7.0, " b c"),
        ("customer", 8.0, 9.0, " x"),
        ("agent", 10.0, 11.0, " d"),
    ]
    assert merged.segments[0].tokens == (1, 2)  # a whole segment keeps its tokens
    assert [s.id for s in merged.segments] == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"num_speakers": 0}, "num_speakers"),
        ({"min_speakers": 3, "max_speakers": 2}, "min_speakers"),
        (
            {"known_speakers": tuple(KnownSpeaker(n, np.zeros(1, np.float32)) for n in "abcde")},
            "known_speaker_names[]",
        ),
        ({"channel_names": ("x", "x")}, "known_speaker_names[]"),
    ],
)
def test_options_refuse_impossible_counts_and_names(kwargs: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidOptionError) as raised:
        DiarizationOptions(**kwargs)  # type: ignore[arg-type]
    assert raised.value.param == param


def test_mel_front_end_matches_librosa_s_numbers() -> None:
    """The filter bank's known values (librosa 0.11 ``filters.mel(sr=16000, n_fft=400,
    n_mels=40)``) and a centred frame count."""
    filters = mel_filters()
    assert filters.shape == (40, 201)
    assert filters[0, :3] == pytest.approx([0.0, 0.00739021, 0.01240452], rel=1e-5)
    assert filters[[10, 39]].max(axis=1) == pytest.approx([0.01187949, 0.00172494], rel=1e-5)
    assert (filters[10].argmax(), filters[39].argmax()) == (20, 185)
    mel = mel_spectrogram(np.zeros(16_000, dtype=np.float32), filters)
    assert mel.shape == (101, 40)


def test_a_stream_s_voices_keep_their_labels() -> None:
    from whisperd.diarization.online import OnlineSpeakers

    rng = np.random.default_rng(4)
    online = OnlineSpeakers()
    clips = voices(rng, [0, 5, 0, 5, 9, 0])
    labels = [online.label(clip, seconds=2.0) for clip in clips]
    assert labels == ["A", "B", "A", "B", "C", "A"]
    assert online.label(voices(rng, [11])[0], seconds=0.5) in {"A", "B", "C"}  # too short

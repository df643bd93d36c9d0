"""faster-whisper's results as whisperd's: every time within the audio, ids from 0."""

from __future__ import annotations

from faster_whisper.transcribe import Segment as RawSegment
from faster_whisper.transcribe import Word as RawWord

from whisperd.engine.results import to_segment


def raw(start: float, end: float, words: list[RawWord] | None = None) -> RawSegment:
    return RawSegment(
        id=1, seek=0, start=start, end=end, text=" Hello.", tokens=[1, 2], avg_logprob=-0.2,
        compression_ratio=1.0, no_speech_prob=0.01, words=words, temperature=0.0,
    )  # fmt: skip


def test_times_past_the_end_are_clamped_to_the_duration() -> None:
    words = [RawWord(0.0, 0.9, " Thank", 0.9), RawWord(1.2, 2.0, " you.", 0.8)]

    segment = to_segment(raw(0.0, 2.0, words), duration=1.58)

    assert (segment.start, segment.end) == (0.0, 1.58)
    assert segment.words is not None
    assert [(w.start, w.end) for w in segment.words] == [(0.0, 0.9), (1.2, 1.58)]
    assert segment.id == 0


def test_times_before_zero_or_backwards_are_clamped() -> None:
    late = to_segment(raw(2.5, 3.0), duration=1.58)
    backwards = to_segment(raw(-0.5, -0.2, [RawWord(0.8, 0.4, " x", 1.0)]), duration=1.58)

    assert (late.start, late.end) == (1.58, 1.58)
    assert (backwards.start, backwards.end) == (0.0, 0.0)
    assert backwards.words is not None
    assert (backwards.words[0].start, backwards.words[0].end) == (0.8, 0.8)


def test_times_within_the_audio_pass_unchanged() -> None:
    segment = to_segment(raw(0.24, 1.5, [RawWord(0.24, 1.5, " Hi", 0.5)]), duration=1.58)
    assert (segment.start, segment.end) == (0.24, 1.5)
    assert segment.words is not None
    assert segment.words[0].word == " Hi"
    assert to_segment(raw(0.0, 1.0), duration=1.58).words is None


def test_times_before_the_segment_before_start_where_it_ended() -> None:
    """Two chunks of batched decoding can meet by a few milliseconds (60.71 s against 60.69 s
    on a real recording): the later segment starts where the earlier ended."""
    words = [RawWord(60.69, 60.8, " to", 0.9), RawWord(60.8, 61.2, " read", 0.9)]

    segment = to_segment(raw(60.69, 61.2, words), duration=90.0, after=60.71)

    assert (segment.start, segment.end) == (60.71, 61.2)
    assert segment.words is not None
    assert [(w.start, w.end) for w in segment.words] == [(60.71, 60.8), (60.8, 61.2)]

"""Subtitle shaping on constructed segments: every rule of whisperd.audio.subtitles."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whisperd.audio.formats import render, to_srt, to_vtt
from whisperd.audio.subtitles import Cue, SubtitleStyle, shape_cues
from whisperd.engine.base import Segment, Transcript, Word

FAST = settings(max_examples=200, deadline=None)


def segment(*words: tuple[str, float, float], id: int = 0) -> Segment:
    timed = tuple(Word(start, end, text, 0.9) for text, start, end in words)
    return Segment(
        id=id,
        seek=0,
        start=timed[0].start,
        end=timed[-1].end,
        text="".join(word.word for word in timed),
        tokens=(),
        temperature=0.0,
        avg_logprob=-0.2,
        compression_ratio=1.1,
        no_speech_prob=0.01,
        words=timed,
    )


FIRST = segment(
    (" Hello", 0.0, 0.5),
    (" world,", 0.5, 1.0),
    (" this", 1.2, 1.4),
    (" is", 1.4, 1.5),
    (" a", 1.5, 1.6),
    (" supercalifragilistic", 1.6, 2.5),
    (" test.", 2.5, 3.0),
)
SECOND = segment((" Second", 3.2, 3.6), (" segment", 3.6, 4.0), (" here.", 4.0, 4.4), id=1)


def cues(style: SubtitleStyle, *segments: Segment, duration: float = 5.0) -> list[Cue]:
    return shape_cues(segments or (FIRST, SECOND), style, duration)


def texts(found: list[Cue]) -> list[str]:
    return [cue.text for cue in found]


def test_width_alone_wraps_lines_and_keeps_one_cue_per_segment() -> None:
    found = cues(SubtitleStyle(max_line_width=12))
    assert texts(found) == [
        "Hello world,\nthis is a\nsupercalifragilistic\ntest.",
        "Second\nsegment\nhere.",
    ]
    assert [(c.start, c.end) for c in found] == [(0.0, 3.0), (3.2, 4.4)]


def test_a_word_longer_than_the_width_gets_its_own_line_unbroken() -> None:
    found = cues(SubtitleStyle(max_line_width=5))
    lines = [line for cue in found for line in cue.text.split("\n")]
    assert "supercalifragilistic" in lines
    assert all(len(line) <= 5 or " " not in line for line in lines)
    spoken = "Hello world, this is a supercalifragilistic test. Second segment here."
    assert " ".join(lines).split() == spoken.split()


def test_width_and_count_flow_across_segments() -> None:
    found = cues(SubtitleStyle(max_line_width=12, max_line_count=2))
    assert texts(found) == [
        "Hello world,\nthis is a",
        "supercalifragilistic\ntest. Second",
        "segment\nhere.",
    ]
    assert [(c.start, c.end) for c in found] == [(0.0, 1.6), (1.6, 3.6), (3.6, 4.4)]


def test_a_long_pause_starts_a_new_cue_when_cues_flow() -> None:
    late = segment((" Later", 9.0, 9.5), (" on.", 9.5, 10.0), id=1)
    found = cues(SubtitleStyle(max_line_width=80, max_line_count=3), FIRST, late, duration=11)
    assert texts(found) == ["Hello world, this is a supercalifragilistic test.", "Later on."]


def test_words_per_line_alone_gives_one_line_cues() -> None:
    found = cues(SubtitleStyle(max_words_per_line=3))
    assert texts(found) == [
        "Hello world, this",
        "is a supercalifragilistic",
        "test.",
        "Second segment here.",
    ]


def test_words_per_line_with_width_breaks_lines_at_either() -> None:
    found = cues(SubtitleStyle(max_line_width=30, max_words_per_line=2))
    assert texts(found) == [
        "Hello world,\nthis is\na supercalifragilistic\ntest.",
        "Second segment\nhere.",
    ]


def test_max_cue_duration_splits_cues() -> None:
    found = cues(SubtitleStyle(max_cue_duration=1.0))
    assert texts(found) == [
        "Hello world,",
        "this is a",
        "supercalifragilistic",
        "test.",
        "Second segment",
        "here.",
    ]
    assert all(c.end - c.start <= 1.0 for c in found)


def test_a_word_longer_than_the_max_duration_is_cut_to_it() -> None:
    slow = segment((" Sooo", 0.0, 3.0), (" slow.", 3.0, 3.5))
    found = cues(SubtitleStyle(max_cue_duration=2.0), slow)
    assert [(c.start, c.end, c.text) for c in found] == [(0.0, 2.0, "Sooo"), (3.0, 3.5, "slow.")]


def test_highlight_words_underlines_each_word_in_turn() -> None:
    found = cues(SubtitleStyle(max_words_per_line=3, highlight_words=True), FIRST)
    assert [(c.start, c.end, c.text) for c in found[:4]] == [
        (0.0, 0.5, "<u>Hello</u> world, this"),
        (0.5, 1.0, "Hello <u>world,</u> this"),
        (1.0, 1.2, "Hello world, this"),  # the gap between two words shows the cue plain
        (1.2, 1.4, "Hello world, <u>this</u>"),
    ]


def test_highlight_alone_keeps_segment_cues() -> None:
    found = cues(SubtitleStyle(highlight_words=True), SECOND)
    assert texts(found) == [
        "<u>Second</u> segment here.",
        "Second <u>segment</u> here.",
        "Second segment <u>here.</u>",
    ]


def test_overlapping_and_late_word_times_are_made_safe() -> None:
    messy = segment((" one", 0.5, 1.5), (" two", 1.0, 2.0), (" three", 2.5, 9.0))
    found = cues(SubtitleStyle(max_words_per_line=1), messy, duration=3.0)
    assert [(c.start, c.end) for c in found] == [(0.5, 1.5), (1.5, 2.0), (2.5, 3.0)]


def test_segments_without_words_are_split_with_estimated_times() -> None:
    plain = Segment(0, 0, 0.0, 4.0, " ab cd efgh", (), 0.0, -0.1, 1.0, 0.0, None)
    found = cues(SubtitleStyle(max_words_per_line=1), plain, duration=4.0)
    assert [(c.text, c.start, c.end) for c in found] == [
        ("ab", 0.0, 1.0),
        ("cd", 1.0, 2.0),
        ("efgh", 2.0, 4.0),
    ]


def test_arrows_in_words_cannot_end_a_timing_line() -> None:
    odd = segment((" a-->b", 0.0, 1.0))
    assert texts(cues(SubtitleStyle(max_line_width=10), odd)) == ["a->b"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_line_width": 0}, "max_line_width must be at least 1"),
        ({"max_line_count": -1, "max_line_width": 3}, "max_line_count must be at least 1"),
        ({"max_words_per_line": 0}, "max_words_per_line must be at least 1"),
        ({"max_cue_duration": 0.0}, "max_cue_duration must be a positive number"),
        ({"max_cue_duration": float("nan")}, "max_cue_duration must be a positive number"),
        ({"max_line_count": 2}, "max_line_count needs max_line_width or max_words_per_line"),
    ],
)
def test_bad_styles_are_refused(values: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SubtitleStyle(**values)  # type: ignore[arg-type]


def test_srt_and_vtt_render_shaped_cues() -> None:
    transcript = Transcript((FIRST, SECOND), "en", 0.99, 5.0)
    style = SubtitleStyle(max_line_width=12, max_line_count=2)
    srt = to_srt(transcript, style)
    assert srt.startswith("1\n00:00:00,000 --> 00:00:01,600\nHello world,\nthis is a\n\n2\n")
    assert srt.count(" --> ") == 3
    vtt = render(transcript, "vtt", style=style)
    assert vtt == to_vtt(transcript, style)
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.600\nHello world,\nthis is a\n\n")
    assert to_srt(transcript, SubtitleStyle()) == to_srt(transcript)  # no option: segments


# --- the rules hold for any words and any style ------------------------------------------

_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz.,", min_size=1, max_size=14)


@st.composite
def transcripts(draw: st.DrawFn) -> tuple[list[Segment], float]:
    duration = draw(st.floats(1.0, 60.0))
    segments = []
    for number in range(draw(st.integers(1, 4))):
        words = []
        for text in draw(st.lists(_WORD, min_size=1, max_size=12)):
            start = draw(st.floats(-1.0, duration + 2))
            words.append((" " + text, start, start + draw(st.floats(0.0, 3.0))))
        segments.append(segment(*words, id=number))
    return segments, duration


@st.composite
def styles(draw: st.DrawFn) -> SubtitleStyle:
    width = draw(st.none() | st.integers(1, 40))
    words = draw(st.none() | st.integers(1, 6))
    count = draw(st.none() | st.integers(1, 3)) if width or words else None
    return SubtitleStyle(
        max_line_width=width,
        max_line_count=count,
        max_words_per_line=words,
        max_cue_duration=draw(st.none() | st.floats(0.1, 10.0)),
        highlight_words=draw(st.booleans()),
    )


@FAST
@given(transcripts(), styles())
def test_shaping_rules_hold_for_any_words(
    drawn: tuple[list[Segment], float], style: SubtitleStyle
) -> None:
    segments, duration = drawn
    found = shape_cues(segments, style, duration)
    previous_end = 0.0
    for cue in found:
        assert 0.0 <= cue.start <= cue.end <= duration
        assert cue.start >= previous_end  # never overlapping, in time order
        previous_end = cue.end
        if style.max_cue_duration is not None:
            assert cue.end - cue.start <= style.max_cue_duration + 1e-9
        lines = re.sub(r"</?u>", "", cue.text).split("\n")
        if style.lines_per_cue is not None:
            assert len(lines) <= style.lines_per_cue
        for line in lines:
            if style.max_line_width is not None and " " in line:
                assert len(line) <= style.max_line_width  # only a lone word may be longer
            if style.max_words_per_line is not None:
                assert len(line.split()) <= style.max_words_per_line
    if not style.highlight_words:  # every word shown once, in order, never broken
        shown = [word for cue in found for word in cue.text.split()]
        spoken = [word.word.strip() for s in segments for word in s.words or ()]
        assert shown == spoken

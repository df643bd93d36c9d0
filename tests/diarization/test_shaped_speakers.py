"""Shaped subtitles of a diarized transcript keep its speakers: every cue is one speaker's and
starts with its label (``[A]`` in SRT, the voice span ``<v A>`` in WebVTT), whatever the
shaping option."""

from __future__ import annotations

import re

import pytest

from whisperd.audio.formats import render
from whisperd.audio.subtitles import SubtitleStyle, shape_cues
from whisperd.engine.base import Segment, Transcript, Word

TURNS = (
    ("A", "what time does the train leave for the city"),
    ("B", "please close the window before you go"),
    ("A", "the weather was cold"),
)


def diarized(*, one_segment: bool = False, words: bool = True) -> Transcript:
    """Three turns of 0.3 s words back to back (no pauses), split into a segment per turn, or
    all in one segment (speakers on the words only) with ``one_segment``."""
    labelled: list[Word] = []
    time = 0.0
    for speaker, text in TURNS:
        for token in text.split():
            labelled.append(Word(time, time + 0.3, " " + token, 0.9, speaker=speaker))
            time += 0.3
    groups = [labelled] if one_segment else _by_speaker(labelled)
    segments = tuple(
        Segment(
            id=index,
            seek=0,
            start=group[0].start,
            end=group[-1].end,
            text="".join(word.word for word in group),
            tokens=(),
            temperature=0.0,
            avg_logprob=-0.2,
            compression_ratio=1.0,
            no_speech_prob=0.0,
            words=tuple(group) if words else None,
            speaker=None if one_segment else group[0].speaker,
        )
        for index, group in enumerate(groups)
    )
    return Transcript(segments, "en", 1.0, duration=time + 0.5)


def _by_speaker(words: list[Word]) -> list[list[Word]]:
    groups: list[list[Word]] = []
    for word in words:
        if groups and groups[-1][-1].speaker == word.speaker:
            groups[-1].append(word)
        else:
            groups.append([word])
    return groups


def cue_texts(document: str) -> list[str]:
    """The text of each cue (its lines joined with ``|``) of an SRT or WebVTT document."""
    out = []
    for block in document.removeprefix("WEBVTT\n\n").strip().split("\n\n"):
        lines = block.split("\n")
        if lines[0].isdigit():
            lines = lines[1:]
        out.append("|".join(lines[1:]))
    return out


def speaker_of(text: str, fmt: str) -> str:
    pattern = r"^<v ([^>]+)>" if fmt == "vtt" else r"^\[([^\]]+)\] "
    match = re.match(pattern, text)
    assert match, text
    return match.group(1)


def words_of(text: str) -> list[str]:
    return re.sub(r"^(<v [^>]+>|\[[^\]]+\] )|</?u>", "", text).replace("|", " ").split()


STYLES = {
    "max_line_width": SubtitleStyle(max_line_width=20),
    "max_line_count": SubtitleStyle(max_line_width=20, max_line_count=2),
    "max_words_per_line": SubtitleStyle(max_words_per_line=3),
    "max_cue_duration": SubtitleStyle(max_cue_duration=1.0),
    "highlight_words": SubtitleStyle(highlight_words=True),
}


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
@pytest.mark.parametrize("option", sorted(STYLES))
@pytest.mark.parametrize("one_segment", [False, True])
def test_every_shaped_cue_is_one_labelled_speaker_s(
    fmt: str, option: str, one_segment: bool
) -> None:
    transcript = diarized(one_segment=one_segment)
    cues = cue_texts(render(transcript, fmt, style=STYLES[option]))  # type: ignore[arg-type]
    # Highlighting shows each cue once per word: count each distinct cue once.
    distinct = [c for i, c in enumerate(cues) if i == 0 or words_of(cues[i - 1]) != words_of(c)]
    shown = [(word, speaker_of(cue, fmt)) for cue in distinct for word in words_of(cue)]
    assert shown == [(word.word.strip(), word.speaker) for word in transcript.words]
    speakers = [speaker_of(cue, fmt) for cue in distinct]
    turns = [s for index, s in enumerate(speakers) if index == 0 or speakers[index - 1] != s]
    assert turns == ["A", "B", "A"]


def test_vtt_voice_spans_and_srt_brackets_match_unshaped_labels() -> None:
    transcript = diarized()
    style = SubtitleStyle(max_words_per_line=4)
    assert cue_texts(render(transcript, "vtt", style=style))[0] == "<v A>what time does the"
    assert cue_texts(render(transcript, "srt", style=style))[0] == "[A] what time does the"
    unshaped = cue_texts(render(transcript, "vtt"))
    assert unshaped[1] == "<v B>please close the window before you go"


def test_highlighted_cues_keep_the_label_before_the_underlined_word() -> None:
    cues = shape_cues(diarized().segments, SubtitleStyle(highlight_words=True), 10.0, vtt=True)
    assert cues[0].text == "<v A><u>what</u> time does the train leave for the city"
    assert all(cue.text.startswith(("<v A>", "<v B>")) for cue in cues)


def test_a_line_count_never_joins_two_speakers_across_segments() -> None:
    style = SubtitleStyle(max_line_width=80, max_line_count=3)  # room for everything
    cues = cue_texts(render(diarized(), "srt", style=style))
    assert [speaker_of(cue, "srt") for cue in cues] == ["A", "B", "A"]


def test_segments_without_word_timings_keep_their_speaker() -> None:
    cues = cue_texts(render(diarized(words=False), "srt", style=SubtitleStyle(max_line_width=20)))
    assert [speaker_of(cue, "srt") for cue in cues] == ["A", "B", "A"]
    assert cues[0] == "[A] what time does the|train leave for the|city"


def test_without_speakers_shaped_cues_have_no_label() -> None:
    plain = Transcript(
        tuple(
            Segment(
                id=0,
                seek=0,
                start=0.0,
                end=1.0,
                text=" hello there",
                tokens=(),
                temperature=0.0,
                avg_logprob=0.0,
                compression_ratio=1.0,
                no_speech_prob=0.0,
                words=(Word(0.0, 0.5, " hello", 1.0), Word(0.5, 1.0, " there", 1.0)),
            )
            for _ in range(1)
        ),
        "en",
        1.0,
        duration=1.0,
    )
    assert cue_texts(render(plain, "vtt", style=SubtitleStyle(max_line_width=8))) == ["hello|there"]

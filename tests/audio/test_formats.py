"""Tests for whisperd.audio.formats: timestamps, subtitles, TSV and OpenAI's JSON shapes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whisperd.audio.formats import (
    FILE_EXTENSIONS,
    OUTPUT_FORMATS,
    Granularity,
    OutputFormat,
    format_timestamp,
    render,
    to_json,
    to_srt,
    to_text,
    to_tsv,
    to_verbose_json,
    to_vtt,
)
from whisperd.engine.base import Segment, Transcript, Word

FAST = settings(max_examples=100, deadline=None)

# --- builders and strategies --------------------------------------------------------------


def make_segment(
    text: str, start: float, end: float, *, id: int = 0, words: tuple[Word, ...] | None = None
) -> Segment:
    """A segment with plausible decoder statistics."""
    return Segment(
        id=id,
        seek=0,
        start=start,
        end=end,
        text=text,
        tokens=(50364, 440, 50530),
        temperature=0.0,
        avg_logprob=-0.25,
        compression_ratio=1.2,
        no_speech_prob=0.01,
        words=words,
    )


def make_transcript(*segments: Segment, language: str = "en", duration: float = 10.0) -> Transcript:
    return Transcript(
        segments=segments, language=language, language_probability=0.99, duration=duration
    )


TRICKY_PIECES = st.sampled_from(
    [
        "-->",
        "--->",
        "->",
        "-",
        ">",
        "--",
        "\n",
        "\n\n",
        "\r\n",
        "\r",
        "\t",
        " ",
        "\u2028",
        "\x0b",
        "é",
        "日本語",
        "🎉",
        "1",
        "WEBVTT",
        "00:00:01,000 --> 00:00:02,000",
    ]
)
TEXTS = st.one_of(
    st.just(""),
    st.lists(st.one_of(TRICKY_PIECES, st.text(max_size=6)), max_size=8).map("".join),
)
TIMES = st.floats(min_value=-1.0, max_value=1e5, allow_nan=False, allow_infinity=False)
PROBS = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def words(draw: st.DrawFn) -> Word:
    return Word(
        start=draw(TIMES),
        end=draw(TIMES),
        word=draw(st.text(max_size=3).map(lambda w: f" {w} ")),
        probability=draw(PROBS),
    )


@st.composite
def segments(draw: st.DrawFn, index: int = 0) -> Segment:
    return Segment(
        id=index,
        seek=draw(st.integers(min_value=0, max_value=10**7)),
        start=draw(TIMES),
        end=draw(TIMES),
        text=draw(TEXTS),
        tokens=tuple(draw(st.lists(st.integers(min_value=0, max_value=51865), max_size=5))),
        temperature=draw(st.sampled_from([0.0, 0.2, 0.4, 1.0])),
        avg_logprob=draw(st.floats(min_value=-5.0, max_value=0.0)),
        compression_ratio=draw(st.floats(min_value=0.0, max_value=5.0)),
        no_speech_prob=draw(PROBS),
        words=draw(st.none() | st.lists(words(), max_size=3).map(tuple)),
    )


@st.composite
def transcripts(draw: st.DrawFn) -> Transcript:
    count = draw(st.integers(min_value=0, max_value=6))
    return Transcript(
        segments=tuple(draw(segments(index)) for index in range(count)),
        language=draw(st.sampled_from(["en", "yue", "zh", "xx"])),
        language_probability=draw(PROBS),
        duration=draw(st.floats(min_value=0.0, max_value=1e5)),
        task=draw(st.sampled_from(["transcribe", "translate"])),
    )


# --- a small subtitle parser and the expected cues ---------------------------------------


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    text: str


def timestamp_pattern(marker: str) -> str:
    """A regex for ``HH:MM:SS<marker>mmm`` (two or more hour digits), one group per part."""
    return r"(\d{2,}):([0-5]\d):([0-5]\d)" + re.escape(marker) + r"(\d{3})"


def parse_ms(hours: str, minutes: str, seconds: str, millis: str) -> int:
    return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(millis)


def parse_cues(body: str, *, marker: str, numbered: bool) -> list[Cue]:
    """Read cues back; asserts the layout (blank-line separators, numbering, timing lines)."""
    if not body:
        return []
    assert body.endswith("\n\n")
    assert not body.endswith("\n\n\n")
    stamp = timestamp_pattern(marker)
    timing = re.compile(rf"{stamp} --> {stamp}")
    cues = []
    for number, block in enumerate(body[:-2].split("\n\n"), start=1):
        lines = block.split("\n")
        if numbered:
            assert lines.pop(0) == str(number)
        match = timing.fullmatch(lines.pop(0))
        assert match is not None
        assert lines
        assert all(line and line == line.strip() for line in lines)
        groups = match.groups()
        cues.append(Cue(parse_ms(*groups[:4]), parse_ms(*groups[4:]), "\n".join(lines)))
    return cues


def defang(line: str) -> str:
    while "-->" in line:
        line = line.replace("-->", "->")
    return line


def expected_cues(t: Transcript) -> list[Cue]:
    """What a subtitle file should hold: non-blank segments, clamped times, cleaned lines."""
    cues = []
    for segment in t.segments:
        if not segment.text.strip():
            continue
        start_ms = round(max(segment.start, 0.0) * 1000)
        end_ms = max(round(max(segment.end, 0.0) * 1000), start_ms)
        lines = [defang(line.strip()) for line in segment.text.splitlines() if line.strip()]
        cues.append(Cue(start_ms, end_ms, "\n".join(lines)))
    return cues


# --- format_timestamp ---------------------------------------------------------------------


@FAST
@given(st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False))
def test_format_timestamp_round_trips_to_the_nearest_millisecond(seconds: float) -> None:
    stamp = format_timestamp(seconds)
    match = re.fullmatch(timestamp_pattern("."), stamp)
    assert match is not None, stamp
    assert parse_ms(*match.groups()) == round(seconds * 1000)


@FAST
@given(st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False))
def test_format_timestamp_optional_hours(seconds: float) -> None:
    full = format_timestamp(seconds, decimal_marker=",")
    short = format_timestamp(seconds, decimal_marker=",", always_include_hours=False)
    if full.startswith("00:"):
        assert short == full.removeprefix("00:")
    else:
        assert short == full


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "00:00:00.000"),
        (-0.0, "00:00:00.000"),
        (0.0004, "00:00:00.000"),
        (1.5, "00:00:01.500"),
        (59.9999, "00:01:00.000"),
        (3599.999, "00:59:59.999"),
        (3599.9995, "01:00:00.000"),
        (3599.9996, "01:00:00.000"),
        (3600, "01:00:00.000"),
        (3661.001, "01:01:01.001"),
        (86399.9999, "24:00:00.000"),
        (360000.0, "100:00:00.000"),
        (3_600_000.0, "1000:00:00.000"),
    ],
)
def test_format_timestamp_examples(seconds: float, expected: str) -> None:
    assert format_timestamp(seconds) == expected


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "00:01:01.500"),
        ({"decimal_marker": ","}, "00:01:01,500"),
        ({"always_include_hours": False}, "01:01.500"),
        ({"decimal_marker": ",", "always_include_hours": False}, "01:01,500"),
    ],
)
def test_format_timestamp_markers(kwargs: dict[str, Any], expected: str) -> None:
    assert format_timestamp(61.5, **kwargs) == expected


def test_format_timestamp_keeps_hours_when_present_even_if_optional() -> None:
    assert format_timestamp(3661.5, always_include_hours=False) == "01:01:01.500"


@pytest.mark.parametrize("seconds", [-0.001, -0.0004, -1.0, -3600.0, float("nan"), float("inf")])
def test_format_timestamp_rejects_negative_and_non_finite(seconds: float) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        format_timestamp(seconds)


# --- srt and vtt --------------------------------------------------------------------------


@FAST
@given(transcripts())
def test_srt_round_trips(t: Transcript) -> None:
    body = to_srt(t)
    assert parse_cues(body, marker=",", numbered=True) == expected_cues(t)
    assert "-->" not in body.replace(" --> ", "")


@FAST
@given(transcripts())
def test_vtt_round_trips(t: Transcript) -> None:
    body = to_vtt(t)
    assert body.startswith("WEBVTT\n\n")
    cues_part = body.removeprefix("WEBVTT\n\n")
    assert parse_cues(cues_part, marker=".", numbered=False) == expected_cues(t)
    assert "-->" not in cues_part.replace(" --> ", "")


SAMPLE = make_transcript(
    make_segment(" The beach was a popular spot on a hot summer day.", 0.0, 3.319999933242798),
    make_segment("   ", 3.3, 3.32, id=1),
    make_segment(" People were swimming --> in the ocean.", 3.319999933242798, 8.47, id=2),
)


def test_srt_example() -> None:
    assert to_srt(SAMPLE) == (
        "1\n"
        "00:00:00,000 --> 00:00:03,320\n"
        "The beach was a popular spot on a hot summer day.\n"
        "\n"
        "2\n"
        "00:00:03,320 --> 00:00:08,470\n"
        "People were swimming -> in the ocean.\n"
        "\n"
    )


def test_vtt_example() -> None:
    assert to_vtt(SAMPLE) == (
        "WEBVTT\n"
        "\n"
        "00:00:00.000 --> 00:00:03.320\n"
        "The beach was a popular spot on a hot summer day.\n"
        "\n"
        "00:00:03.320 --> 00:00:08.470\n"
        "People were swimming -> in the ocean.\n"
        "\n"
    )


def test_subtitles_clamp_backwards_and_negative_times() -> None:
    t = make_transcript(make_segment(" a", 2.0, 1.0), make_segment(" b", -0.5, 0.25, id=1))
    assert to_srt(t) == (
        "1\n00:00:02,000 --> 00:00:02,000\na\n\n2\n00:00:00,000 --> 00:00:00,250\nb\n\n"
    )


def test_subtitles_of_an_empty_transcript() -> None:
    t = make_transcript(make_segment(" ", 0.0, 1.0))
    assert to_srt(t) == ""
    assert to_vtt(t) == "WEBVTT\n\n"


def test_subtitle_text_keeps_single_line_breaks_and_drops_blank_lines() -> None:
    t = make_transcript(make_segment(" one\r\n\n  two \u2028three ", 0.0, 1.0))
    assert to_vtt(t) == "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\none\ntwo\nthree\n\n"


# --- tsv and text -------------------------------------------------------------------------


def test_tsv_example() -> None:
    t = make_transcript(
        make_segment(" Hello\tthere,", 0.0, 1.2344),
        make_segment("", 1.2344, 1.5, id=1),
        make_segment(" two\nlines ", 1.5, 1.0, id=2),
        make_segment(" 日本語", 3599.9996, 3601.0005, id=3),
    )
    assert to_tsv(t) == (
        "start\tend\ttext\n0\t1234\tHello there,\n1500\t1500\ttwo lines\n3600000\t3601000\t日本語\n"
    )


@FAST
@given(transcripts())
def test_tsv_rows_read_back(t: Transcript) -> None:
    lines = to_tsv(t).split("\n")
    assert lines[0] == "start\tend\ttext"
    assert lines[-1] == ""
    rows = [line.split("\t") for line in lines[1:-1]]
    expected = expected_cues(t)
    assert len(rows) == len(expected)
    for (start, end, text), cue in zip(rows, expected, strict=True):
        assert (int(start), int(end)) == (cue.start_ms, cue.end_ms)
        assert text
        assert text == text.strip()
        assert not any(char in text for char in "\t\r\n\u2028")


def test_tsv_of_an_empty_transcript() -> None:
    assert to_tsv(make_transcript()) == "start\tend\ttext\n"


def test_text_is_the_trimmed_transcript_and_one_newline() -> None:
    t = make_transcript(make_segment(" Hello", 0.0, 1.0), make_segment(" world. ", 1.0, 2.0))
    assert to_text(t) == "Hello world.\n"
    assert render(t, "text") == "Hello world.\n"
    assert to_text(make_transcript()) == "\n"


# --- json and verbose_json ----------------------------------------------------------------

# OpenAI's verbose_json examples (docs/openai-compat.md section 1.3), verbatim in structure.
OPENAI_SEGMENT_EXAMPLE = json.loads(
    """
{
  "task": "transcribe",
  "language": "english",
  "duration": 8.470000267028809,
  "text": "The beach was a popular spot on a hot summer day.",
  "segments": [
    { "id": 0, "seek": 0, "start": 0.0, "end": 3.319999933242798,
      "text": " The beach was a popular spot on a hot summer day.",
      "tokens": [50364, 440, 7534, 390, 257, 3743, 4008, 322, 257, 2368, 4266, 786, 13, 50530],
      "temperature": 0.0, "avg_logprob": -0.2860786020755768,
      "compression_ratio": 1.2363636493682861, "no_speech_prob": 0.00985979475080967 }
  ],
  "usage": { "type": "duration", "seconds": 9 }
}
"""
)
OPENAI_WORD_EXAMPLE = json.loads(
    """
{ "task": "transcribe", "language": "english", "duration": 8.470000267028809,
  "text": "The volleyball",
  "words": [ { "word": "The", "start": 0.0, "end": 0.23999999463558197 },
             { "word": "volleyball", "start": 7.400000095367432, "end": 7.900000095367432 } ],
  "usage": { "type": "duration", "seconds": 9 } }
"""
)


def openai_like_transcript() -> Transcript:
    """A transcript holding exactly the values of OpenAI's two examples."""
    segment = OPENAI_SEGMENT_EXAMPLE["segments"][0]
    return Transcript(
        segments=(
            Segment(
                **{**segment, "tokens": tuple(segment["tokens"])},
                words=(
                    Word(0.0, 0.23999999463558197, " The", 0.9),
                    Word(7.400000095367432, 7.900000095367432, " volleyball ", 0.8),
                ),
            ),
        ),
        language="en",
        language_probability=0.98,
        duration=8.470000267028809,
    )


def test_verbose_json_matches_openai_segment_example_exactly() -> None:
    body = to_verbose_json(openai_like_transcript())
    assert body == OPENAI_SEGMENT_EXAMPLE
    assert list(body) == ["task", "language", "duration", "text", "segments", "usage"]


def test_verbose_json_matches_openai_word_example() -> None:
    body = to_verbose_json(openai_like_transcript(), granularities=("word",))
    assert "segments" not in body
    assert list(body) == ["task", "language", "duration", "text", "words", "usage"]
    words: list[dict[str, Any]] = body["words"]  # type: ignore[assignment]
    # OpenAI's word fields exactly, plus Whisper's probability of each word
    assert [{k: v for k, v in w.items() if k != "probability"} for w in words] == (
        OPENAI_WORD_EXAMPLE["words"]
    )
    assert [w["probability"] for w in words] == [0.9, 0.8]
    assert body["usage"] == OPENAI_WORD_EXAMPLE["usage"]


def assert_same_shape(ours: Any, example: Any, where: str = "body") -> None:
    """Same keys and same JSON types, recursively (list items compared with the first)."""
    assert type(ours) is type(example), where
    if isinstance(example, dict):
        assert set(ours) == set(example), where
        for key, value in example.items():
            assert_same_shape(ours[key], value, f"{where}.{key}")
    elif isinstance(example, list) and example:
        for index, item in enumerate(ours):
            assert_same_shape(item, example[0], f"{where}[{index}]")


@FAST
@given(transcripts())
def test_verbose_json_shape_key_by_key(t: Transcript) -> None:
    both = to_verbose_json(t, granularities=("segment", "word"))
    words: list[dict[str, Any]] = both["words"]  # type: ignore[assignment]
    assert all(0.0 <= word.pop("probability") <= 1.0 for word in words)
    assert_same_shape({k: v for k, v in both.items() if k != "segments"}, OPENAI_WORD_EXAMPLE)
    assert_same_shape({k: v for k, v in both.items() if k != "words"}, OPENAI_SEGMENT_EXAMPLE)
    assert both["task"] == t.task
    assert both["text"] == t.text
    assert [s["text"] for s in both["segments"]] == [s.text for s in t.segments]  # type: ignore[attr-defined]
    assert [w["word"] for w in both["words"]] == [w.word.strip() for w in t.words]  # type: ignore[attr-defined]
    for entry in [*both["segments"], *both["words"]]:  # type: ignore[misc]
        assert entry["end"] >= entry["start"]


@FAST
@given(transcripts(), st.lists(st.sampled_from(["segment", "word"]), max_size=2))
def test_render_verbose_json_round_trips(t: Transcript, granularities: list[Granularity]) -> None:
    text = render(t, "verbose_json", granularities=granularities)
    assert json.loads(text) == to_verbose_json(t, granularities=granularities)


@FAST
@given(transcripts())
def test_render_json_round_trips(t: Transcript) -> None:
    assert json.loads(render(t, "json")) == to_json(t)


def test_render_json_keeps_non_ascii() -> None:
    t = make_transcript(make_segment(" 日本語 é", 0.0, 1.0), language="ja")
    assert "日本語 é" in render(t, "json")
    assert '"language": "japanese"' in render(t, "verbose_json")


@pytest.mark.parametrize(
    ("granularities", "keys"),
    [
        (("segment",), {"segments"}),
        (("word",), {"words"}),
        (("segment", "word"), {"segments", "words"}),
        (("word", "segment"), {"segments", "words"}),
        ((), {"segments"}),
    ],
)
def test_verbose_json_granularities(granularities: tuple[Granularity, ...], keys: set[str]) -> None:
    body = to_verbose_json(openai_like_transcript(), granularities=granularities)
    assert set(body) == {"task", "language", "duration", "text", "usage"} | keys


def test_verbose_json_words_without_word_timings_is_empty_list() -> None:
    body = to_verbose_json(SAMPLE, granularities=("word",))
    assert body["words"] == []


def test_verbose_json_rejects_unknown_granularity() -> None:
    with pytest.raises(ValueError, match="granularit"):
        to_verbose_json(SAMPLE, granularities=("sentence",))  # type: ignore[arg-type]


def test_verbose_json_keeps_segment_tokens_regardless_of_include_tokens() -> None:
    body = to_verbose_json(SAMPLE, include_tokens=False)
    assert [s["tokens"] for s in body["segments"]] == [[50364, 440, 50530]] * 3  # type: ignore[attr-defined]


def test_verbose_json_clamps_backwards_end_but_keeps_valid_floats() -> None:
    t = make_transcript(make_segment(" a", 2.5, 1.0), make_segment(" b", 0.1, 0.30000000000000004))
    segments = to_verbose_json(t)["segments"]
    assert [(s["start"], s["end"]) for s in segments] == [(2.5, 2.5), (0.1, 0.30000000000000004)]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("code", "name"), [("en", "english"), ("yue", "cantonese"), ("zh", "chinese"), ("xx", "xx")]
)
def test_verbose_json_language_name(code: str, name: str) -> None:
    assert to_verbose_json(make_transcript(language=code))["language"] == name


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [(8.47, 9), (8.470000267028809, 9), (9.0, 9), (0.001, 1), (0.0, 0), (9.000001, 10)],
)
def test_usage_rounds_duration_up(duration: float, seconds: int) -> None:
    t = make_transcript(make_segment(" hi", 0.0, 1.0), duration=duration)
    usage = {"type": "duration", "seconds": seconds}
    assert to_json(t) == {"text": "hi", "usage": usage}
    assert to_verbose_json(t)["usage"] == usage
    assert type(to_json(t)["usage"]["seconds"]) is int  # type: ignore[index]


# --- constants and dispatch ---------------------------------------------------------------


def test_output_formats_and_extensions() -> None:
    assert get_args(OutputFormat) == OUTPUT_FORMATS
    assert dict(FILE_EXTENSIONS) == {
        "text": "txt",
        "json": "json",
        "verbose_json": "verbose.json",
        "srt": "srt",
        "vtt": "vtt",
        "tsv": "tsv",
    }


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_render_dispatches_every_format(fmt: OutputFormat) -> None:
    direct: dict[str, Callable[[Transcript], str]] = {
        "text": to_text,
        "srt": to_srt,
        "vtt": to_vtt,
        "tsv": to_tsv,
        "json": lambda t: json.dumps(to_json(t), ensure_ascii=False),
        "verbose_json": lambda t: json.dumps(to_verbose_json(t), ensure_ascii=False),
    }
    assert render(SAMPLE, fmt) == direct[fmt](SAMPLE)


def test_render_rejects_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown output format"):
        render(SAMPLE, "docx")  # type: ignore[arg-type]

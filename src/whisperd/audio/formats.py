"""Render a :class:`~whisperd.engine.base.Transcript` in every output format.

Pure functions, no I/O. The shapes follow OpenAI's ``/v1/audio/transcriptions`` responses
(``text``, ``json``, ``verbose_json``, ``srt``, ``vtt``) plus Whisper's own ``tsv`` layout.

Rules shared by the timed formats:

* A start before zero is clamped to zero and an end before its start is clamped to the start,
  so no cue, row or ``verbose_json`` entry ever runs backwards. Valid times pass unchanged.
* Times are rounded to the nearest millisecond with :func:`round` (ties go to the even
  millisecond) before they are split into hours, minutes and seconds.
* ``srt``, ``vtt`` and ``tsv`` skip segments whose stripped text is empty: an empty cue would
  end the previous cue early in a subtitle parser and carries nothing.
* ``srt`` and ``vtt`` are one cue per segment, or, given a
  :class:`~whisperd.audio.subtitles.SubtitleStyle`, cues re-cut from the words by its limits.

Confidence: ``verbose_json`` words carry Whisper's ``probability``, and ``json`` carries OpenAI's
``logprobs`` entries when asked (:func:`to_json`).

Every number rendered is finite, so every ``json`` and ``verbose_json`` body is valid JSON (which
has no NaN or Infinity): a non-finite time becomes 0 (then clamped as above), a NaN score 0 and
an infinite score the largest float of its sign (a ``-inf`` log-probability stays the lowest
number there is). Decoding makes non-finite audio
finite already (:mod:`whisperd.audio.finite`); this is the last line, for any engine's numbers.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Literal

from whisperd.audio.subtitles import Cue, SubtitleStyle, shape_cues
from whisperd.audio.turns import speaker_text
from whisperd.engine.base import Segment, TokenLogprob, Transcript, Word
from whisperd.languages import language_name

__all__ = [
    "FILE_EXTENSIONS",
    "GRANULARITIES",
    "OUTPUT_FORMATS",
    "UNTIMED_FORMATS",
    "Granularity",
    "OutputFormat",
    "format_timestamp",
    "logprobs_json",
    "render",
    "to_json",
    "to_srt",
    "to_text",
    "to_tsv",
    "to_verbose_json",
    "to_vtt",
    "usage_seconds",
]

OutputFormat = Literal["text", "json", "verbose_json", "srt", "vtt", "tsv"]
"""A ``response_format`` value (OpenAI's five plus Whisper's ``tsv``)."""

OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("text", "json", "verbose_json", "srt", "vtt", "tsv")
"""Every output format, in the order of :data:`OutputFormat`."""

UNTIMED_FORMATS: frozenset[OutputFormat] = frozenset({"text", "json"})
"""Formats that show no time: a transcript only they render needs no segment times
(``TranscribeOptions.segment_timestamps``)."""

FILE_EXTENSIONS: Mapping[OutputFormat, str] = MappingProxyType(
    {
        "text": "txt",
        "json": "json",
        "verbose_json": "verbose.json",
        "srt": "srt",
        "vtt": "vtt",
        "tsv": "tsv",
    }
)
"""File-name extension (without the leading dot) for each output format."""

Granularity = Literal["segment", "word"]
"""A ``timestamp_granularities[]`` value."""

GRANULARITIES: tuple[Granularity, ...] = ("segment", "word")
"""Every timestamp granularity."""

_DEFAULT_GRANULARITIES: tuple[Granularity, ...] = ("segment",)
_ARROW_RUN = re.compile(r"-{2,}>")
_MS_PER_HOUR = 3_600_000
_MS_PER_MINUTE = 60_000
_MS_PER_SECOND = 1_000


# --- timestamps ---------------------------------------------------------------------------


def _to_ms(seconds: float) -> int:
    """Round seconds to whole milliseconds.

    Raises:
        ValueError: if ``seconds`` is negative, NaN or infinite.
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"timestamp must be a finite non-negative number, got {seconds!r}")
    return round(seconds * 1000)


def format_timestamp(
    seconds: float, *, decimal_marker: str = ".", always_include_hours: bool = True
) -> str:
    """Format a time as ``HH:MM:SS.mmm``.

    The time is rounded to the nearest millisecond first and only then split, so
    ``3599.9996`` gives ``01:00:00.000`` rather than ``00:59:59.1000``. Hours are at least two
    digits and grow past 99 without wrapping.

    Args:
        seconds: The time in seconds; must be finite and non-negative.
        decimal_marker: What separates seconds from milliseconds (``","`` for SRT).
        always_include_hours: If false, the ``HH:`` part is left out while it is zero.

    Returns:
        The formatted timestamp.

    Raises:
        ValueError: if ``seconds`` is negative, NaN or infinite.
    """
    hours, rest = divmod(_to_ms(seconds), _MS_PER_HOUR)
    minutes, rest = divmod(rest, _MS_PER_MINUTE)
    whole_seconds, millis = divmod(rest, _MS_PER_SECOND)
    hours_part = f"{hours:02d}:" if always_include_hours or hours else ""
    return f"{hours_part}{minutes:02d}:{whole_seconds:02d}{decimal_marker}{millis:03d}"


def _finite(value: float) -> float:
    """``value`` as a finite float: NaN as 0, an infinity as the largest float of its sign."""
    number = float(value)
    if math.isfinite(number):
        return number
    if math.isnan(number):
        return 0.0
    return math.copysign(sys.float_info.max, number)


def _time(seconds: float) -> float:
    """A time as a finite float: a NaN or infinite time (no time at all) as 0."""
    number = float(seconds)
    return number if math.isfinite(number) else 0.0


def _span(start: float, end: float) -> tuple[float, float]:
    """Make both times finite, then clamp a start to zero and an end to its start."""
    start = max(_time(start), 0.0)
    return start, max(_time(end), start)


# --- text cleaning ------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    """Split text at any line break, strip each line and drop the blank ones."""
    return [stripped for line in text.splitlines() if (stripped := line.strip())]


def _cue_text(text: str) -> str:
    """Make segment text safe as a subtitle cue body.

    Lines are stripped and joined with ``\\n`` (no blank line, which would end the cue), and every
    ``-->`` is turned into ``->`` as Whisper's writer does (a run like ``--->`` collapses fully).
    """
    return _ARROW_RUN.sub("->", "\n".join(_lines(text)))


def _tsv_text(text: str) -> str:
    """Make segment text fit on one TSV row: line breaks and tabs become spaces."""
    return " ".join(_lines(text)).replace("\t", " ")


def _spoken(segments: Iterable[Segment]) -> list[Segment]:
    """The segments whose text is not blank."""
    return [segment for segment in segments if segment.text.strip()]


# --- formats ------------------------------------------------------------------------------


def to_text(t: Transcript) -> str:
    """Render the ``text`` format: the trimmed transcript followed by one newline.

    Args:
        t: The transcript.

    Returns:
        ``t.text + "\\n"`` (just ``"\\n"`` for an empty transcript); a diarized transcript
        has one ``speaker: text`` line per turn instead
        (:func:`~whisperd.audio.turns.speaker_text`).
    """
    if _has_speakers(t):
        return speaker_text(t) + "\n"
    return t.text + "\n"


def _has_speakers(t: Transcript) -> bool:
    return any(segment.speaker is not None for segment in t.segments)


def _labelled(segment: Segment, *, vtt: bool = False) -> str:
    """A cue's text with its speaker: ``[A] text``, or WebVTT's voice span ``<v A>text``."""
    if segment.speaker is None:
        return segment.text
    text = segment.text.strip()
    return f"<v {segment.speaker}>{text}" if vtt else f"[{segment.speaker}] {text}"


def usage_seconds(duration: float) -> int:
    """The seconds OpenAI bills for ``duration`` seconds of audio: whole, rounded up.

    Returns:
        ``ceil(duration)``, or 0 for a duration that is not finite or not positive.
    """
    return math.ceil(duration) if math.isfinite(duration) and duration > 0 else 0


def _usage(duration: float) -> dict[str, object]:
    """OpenAI's duration usage (``DurationUsage`` in :mod:`whisperd.schemas.openai`)."""
    return {"type": "duration", "seconds": usage_seconds(duration)}


def logprobs_json(entries: Iterable[TokenLogprob]) -> list[dict[str, object]]:
    """OpenAI's ``logprobs`` entries: ``{"token", "logprob", "bytes"}`` each, numbers finite.

    Args:
        entries: Token log-probabilities (:attr:`Segment.logprobs`).

    Returns:
        One dict per entry, in order; a ``-inf`` log-probability as the lowest float.
    """
    return [
        {"token": e.token, "logprob": _finite(e.logprob), "bytes": list(e.bytes)} for e in entries
    ]


def to_json(t: Transcript, *, logprobs: bool = False) -> dict[str, object]:
    """Build OpenAI's ``json`` response body (``TranscriptionJson`` in the OpenAI schemas).

    Args:
        t: The transcript.
        logprobs: Add ``logprobs``, every text token's entry (``include[]=logprobs``).

    Returns:
        ``{"text": ..., "usage": {"type": "duration", "seconds": ceil(duration)}}``, with
        ``"logprobs": [...]`` between them when asked for.
    """
    body: dict[str, object] = {"text": t.text}
    if logprobs:
        body["logprobs"] = logprobs_json(t.logprobs)
    body["usage"] = _usage(t.duration)
    return body


def _segment_json(segment: Segment) -> dict[str, object]:
    """One OpenAI ``TranscriptionSegment``: exactly its ten fields, text as it is."""
    start, end = _span(segment.start, segment.end)
    return {
        "id": int(segment.id),
        "seek": int(segment.seek),
        "start": float(start),
        "end": float(end),
        "text": segment.text,
        "tokens": [int(token) for token in segment.tokens],
        "temperature": _finite(segment.temperature),
        "avg_logprob": _finite(segment.avg_logprob),
        "compression_ratio": _finite(segment.compression_ratio),
        "no_speech_prob": _finite(segment.no_speech_prob),
    } | ({} if segment.speaker is None else {"speaker": segment.speaker})


def _word_json(word: Word) -> dict[str, object]:
    """One OpenAI ``TranscriptionWord``, its text stripped of surrounding whitespace, plus
    Whisper's ``probability`` (0 to 1: the mean probability of the word's tokens)."""
    start, end = _span(word.start, word.end)
    return {
        "word": word.word.strip(),
        "start": float(start),
        "end": float(end),
        "probability": min(max(_finite(word.probability), 0.0), 1.0),
    } | ({} if word.speaker is None else {"speaker": word.speaker})


def _check_granularities(granularities: Sequence[Granularity]) -> frozenset[Granularity]:
    """Validate granularities; an empty sequence means the default (segments only).

    Raises:
        ValueError: on a value that is not a :data:`Granularity`.
    """
    unknown = [g for g in granularities if g not in GRANULARITIES]
    if unknown:
        raise ValueError(f"unknown timestamp granularities {unknown!r}; use {GRANULARITIES!r}")
    return frozenset(granularities or _DEFAULT_GRANULARITIES)


def to_verbose_json(
    t: Transcript,
    *,
    granularities: Sequence[Granularity] = _DEFAULT_GRANULARITIES,
    include_tokens: bool = True,
) -> dict[str, object]:
    """Build OpenAI's ``verbose_json`` response body (``TranscriptionVerbose`` in the schemas).

    Keys, in order: ``task``, ``language`` (full lower-case English name), ``duration``,
    ``text`` (trimmed), ``segments`` (with ``"segment"``), ``words`` (with ``"word"``; ``[]`` if
    the transcript has no word timings) and ``usage``. Floats are passed through unrounded.

    Args:
        t: The transcript.
        granularities: Which timestamp arrays to include; empty means ``("segment",)``.
        include_tokens: Accepted for API compatibility and currently has no effect: OpenAI's
            schema requires ``tokens`` on every segment, so segment tokens are always emitted.

    Returns:
        The response body, ready for :func:`json.dumps`.

    Raises:
        ValueError: on an unknown granularity.
    """
    del include_tokens  # Segment tokens are required by the schema; see the docstring.
    wanted = _check_granularities(granularities)
    body: dict[str, object] = {
        "task": t.task,
        "language": language_name(t.language),
        "duration": _finite(t.duration),
        "text": t.text,
    }
    if "segment" in wanted:
        body["segments"] = [_segment_json(segment) for segment in t.segments]
    if "word" in wanted:
        body["words"] = [_word_json(word) for word in t.words]
    body["usage"] = _usage(t.duration)
    return body


def _cue_timing(start: float, end: float, decimal_marker: str) -> str:
    """The ``start --> end`` line of a cue."""
    start, end = _span(start, end)
    return (
        f"{format_timestamp(start, decimal_marker=decimal_marker)} --> "
        f"{format_timestamp(end, decimal_marker=decimal_marker)}"
    )


def _cues(t: Transcript, style: SubtitleStyle | None, *, vtt: bool = False) -> list[Cue]:
    """The transcript's cues: one per spoken segment (its speaker's label first, when
    diarized), or shaped by ``style``."""
    if style is not None and style.shapes:
        return shape_cues(t.segments, style, t.duration, vtt=vtt)
    return [
        Cue(segment.start, segment.end, _labelled(segment, vtt=vtt))
        for segment in _spoken(t.segments)
    ]


def to_srt(t: Transcript, style: SubtitleStyle | None = None) -> str:
    """Render SubRip subtitles.

    Cues are numbered from 1, timed ``HH:MM:SS,mmm --> HH:MM:SS,mmm`` and each is followed by
    a blank line. Without ``style`` each spoken segment is a cue (segments with blank text are
    skipped); with it, the words are laid out by :func:`~whisperd.audio.subtitles.shape_cues`.
    An empty transcript gives ``""``.

    Args:
        t: The transcript.
        style: Limits of lines and cues (``None``: one cue per segment).

    Returns:
        The SRT document.
    """
    return "".join(
        f"{number}\n{_cue_timing(cue.start, cue.end, ',')}\n{_cue_text(cue.text)}\n\n"
        for number, cue in enumerate(_cues(t, style), start=1)
    )


def to_vtt(t: Transcript, style: SubtitleStyle | None = None) -> str:
    """Render WebVTT subtitles.

    A ``WEBVTT`` header and a blank line, then unnumbered cues timed
    ``HH:MM:SS.mmm --> HH:MM:SS.mmm``, each followed by a blank line. Cues are as in
    :func:`to_srt`. Cue text is not HTML-escaped, as in Whisper's writer.

    Args:
        t: The transcript.
        style: Limits of lines and cues (``None``: one cue per segment).

    Returns:
        The WebVTT document.
    """
    cues = (
        f"{_cue_timing(cue.start, cue.end, '.')}\n{_cue_text(cue.text)}\n\n"
        for cue in _cues(t, style, vtt=True)
    )
    return "WEBVTT\n\n" + "".join(cues)


def to_tsv(t: Transcript) -> str:
    """Render Whisper's tab-separated layout.

    A ``start\\tend\\ttext`` header, then one row per segment with integer milliseconds and the
    text on one line (tabs and line breaks become spaces). Segments with blank text are skipped.

    Args:
        t: The transcript.

    Returns:
        The TSV document, every row ending in ``\\n``.
    """
    rows = ["start\tend\ttext\n"]
    for segment in _spoken(t.segments):
        start, end = _span(segment.start, segment.end)
        rows.append(f"{_to_ms(start)}\t{_to_ms(end)}\t{_tsv_text(_labelled(segment))}\n")
    return "".join(rows)


_TEXT_RENDERERS: Mapping[OutputFormat, Callable[[Transcript], str]] = MappingProxyType(
    {"text": to_text, "tsv": to_tsv}
)


def render(
    t: Transcript,
    fmt: OutputFormat,
    *,
    granularities: Sequence[Granularity] = _DEFAULT_GRANULARITIES,
    include_tokens: bool = True,
    style: SubtitleStyle | None = None,
    logprobs: bool = False,
) -> str:
    """Render a transcript as the body of a response or output file.

    ``json`` and ``verbose_json`` are serialized with ``json.dumps(..., ensure_ascii=False)``,
    as strict JSON (every number is finite: see the module's rules).

    Args:
        t: The transcript.
        fmt: The output format.
        granularities: Passed to :func:`to_verbose_json`; ignored by the other formats.
        include_tokens: Passed to :func:`to_verbose_json`; ignored by the other formats.
        style: Passed to :func:`to_srt` and :func:`to_vtt`; ignored by the other formats.
        logprobs: Passed to :func:`to_json`; ignored by the other formats.

    Returns:
        The rendered document.

    Raises:
        ValueError: on an unknown format or granularity.
    """
    if fmt == "json":
        return json.dumps(to_json(t, logprobs=logprobs), ensure_ascii=False, allow_nan=False)
    if fmt == "verbose_json":
        body = to_verbose_json(t, granularities=granularities, include_tokens=include_tokens)
        return json.dumps(body, ensure_ascii=False, allow_nan=False)
    if fmt == "srt":
        return to_srt(t, style)
    if fmt == "vtt":
        return to_vtt(t, style)
    renderer = _TEXT_RENDERERS.get(fmt)
    if renderer is None:
        raise ValueError(f"unknown output format {fmt!r}; use one of {OUTPUT_FORMATS!r}")
    return renderer(t)

"""Subtitle shaping: a transcript's words laid out as cues of bounded lines, words and duration.

One cue per Whisper segment is rarely what a player or subtitle editor wants: segments can run
for many seconds and hundreds of characters. :func:`shape_cues` re-cuts the words (with their
timings from word alignment) into cues, following the options of openai-whisper's command line
(``--max_line_width``, ``--max_line_count``, ``--max_words_per_line``, ``--highlight_words``,
whose ``SubtitlesWriter`` in ``whisper/utils.py`` is the reference for their meaning) plus a
maximum cue duration:

* A line breaks before a word that would make it longer than ``max_line_width`` characters or
  give it more than ``max_words_per_line`` words. A word is never broken: one longer than the
  width gets a line of its own.
* A cue holds at most ``max_line_count`` lines. Without ``max_line_count``, every segment
  starts a new cue and its lines all stay in that cue, except that ``max_words_per_line``
  without ``max_line_width`` makes each line its own cue (as openai-whisper does). With
  ``max_line_count``, cues flow across segments and a pause of more than 3 s between words
  starts a new cue (openai-whisper's rule).
* A cue never spans more than ``max_cue_duration`` seconds: the next word starts a new cue. A
  single word longer than that gets a cue of its own, cut to the maximum duration.
* With ``highlight_words``, each cue is shown once per word, that word underlined (``<u>``), for
  the word's own time (karaoke style); a gap between two words shows the cue plain.
* A diarized transcript's cues are one speaker's each: a word of another speaker starts a new
  cue, and the cue's text starts with its speaker's label, as unshaped cues do (``[A] text``,
  or WebVTT's voice span ``<v A>text``). The label does not count toward ``max_line_width``.

Times are made safe first: every word is clamped to ``[0, duration]`` and starts no earlier
than the previous word ends, so cues stay within the audio and never overlap. A segment without
word timings (a transcript made without word alignment) is split at whitespace and its time
shared among its words by their length in characters: an estimate, not a measurement.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from whisperd.engine.base import Segment

__all__ = ["LONG_PAUSE_S", "Cue", "SubtitleStyle", "shape_cues"]

LONG_PAUSE_S = 3.0
"""A pause between words longer than this (seconds) starts a new cue when cues flow across
segments (openai-whisper's rule)."""

_ARROW_RUN = re.compile(r"-{2,}>")


@dataclass(frozen=True, slots=True)
class SubtitleStyle:
    """How to cut subtitles; every limit is optional and ``None`` means no limit.

    Raises:
        ValueError: on a limit that is not positive (or a duration that is not finite), or on
            ``max_line_count`` without ``max_line_width`` or ``max_words_per_line`` (no line
            would ever break, so the count could not apply).
    """

    max_line_width: int | None = None
    """Most characters on a line."""
    max_line_count: int | None = None
    """Most lines in a cue."""
    max_words_per_line: int | None = None
    """Most words on a line."""
    max_cue_duration: float | None = None
    """Longest cue, in seconds."""
    highlight_words: bool = False
    """Underline each word in turn, for its own time (karaoke style)."""

    def __post_init__(self) -> None:
        """Check the limits (see the class's ``Raises``)."""
        for name in ("max_line_width", "max_line_count", "max_words_per_line"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value!r}")
        duration = self.max_cue_duration
        if duration is not None and not (math.isfinite(duration) and duration > 0):
            raise ValueError(f"max_cue_duration must be a positive number, got {duration!r}")
        if self.max_line_count is not None and (
            self.max_line_width is None and self.max_words_per_line is None
        ):
            raise ValueError("max_line_count needs max_line_width or max_words_per_line")

    @property
    def shapes(self) -> bool:
        """Whether any option is set (otherwise cues are Whisper's segments, unchanged)."""
        return self != SubtitleStyle()

    @property
    def lines_per_cue(self) -> int | None:
        """Most lines in a cue (``None``: no limit), as the module's rules derive it."""
        if self.max_line_count is not None:
            return self.max_line_count
        if self.max_words_per_line is not None and self.max_line_width is None:
            return 1
        return None


@dataclass(frozen=True, slots=True)
class Cue:
    """One subtitle: its time in seconds and its text (lines joined with ``\\n``)."""

    start: float
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class _Word:
    """A word ready for layout: text without surrounding space, whether a space precedes it."""

    text: str
    spaced: bool
    start: float
    end: float
    speaker: str | None = None


class _Layout:
    """Lines and cues being filled word by word."""

    def __init__(self, style: SubtitleStyle) -> None:
        self.style = style
        self.cues: list[list[list[_Word]]] = []

    @property
    def _cue(self) -> list[list[_Word]]:
        return self.cues[-1]

    def add(self, word: _Word, *, new_segment: bool, previous_end: float) -> None:
        """Place ``word`` on the current line, a new line or a new cue."""
        style = self.style
        if not self.cues or self._cue_breaks(word, new_segment=new_segment, last=previous_end):
            self.cues.append([[word]])
        elif self._fits(self._cue[-1], word):
            self._cue[-1].append(word)
        elif style.lines_per_cue is None or len(self._cue) < style.lines_per_cue:
            self._cue.append([word])
        else:
            self.cues.append([[word]])

    def _cue_breaks(self, word: _Word, *, new_segment: bool, last: float) -> bool:
        style = self.style
        if style.max_line_count is None and new_segment:
            return True
        if word.speaker != self._cue[0][0].speaker:
            return True
        if style.max_line_count is not None and word.start - last > LONG_PAUSE_S:
            return True
        first = self._cue[0][0]
        return style.max_cue_duration is not None and word.end - first.start > (
            style.max_cue_duration
        )

    def _fits(self, line: list[_Word], word: _Word) -> bool:
        style = self.style
        if style.max_words_per_line is not None and len(line) >= style.max_words_per_line:
            return False
        if style.max_line_width is None:
            return True
        return len(_line_text([*line, word])) <= style.max_line_width


def _line_text(line: Sequence[_Word], highlight: _Word | None = None) -> str:
    parts = []
    for index, word in enumerate(line):
        text = f"<u>{word.text}</u>" if word is highlight else word.text
        parts.append((" " if word.spaced and index else "") + text)
    return "".join(parts)


def _cue_text(
    lines: Sequence[Sequence[_Word]], highlight: _Word | None = None, *, vtt: bool = False
) -> str:
    text = "\n".join(_line_text(line, highlight) for line in lines)
    speaker = lines[0][0].speaker
    if speaker is None:
        return text
    return f"<v {speaker}>{text}" if vtt else f"[{speaker}] {text}"


def _clean(text: str) -> str:
    """A word's text on one line, without ``-->`` (which would end a cue's timing line)."""
    return _ARROW_RUN.sub("->", " ".join(text.split()))


def _estimated(segment: Segment) -> list[tuple[str, float, float]]:
    """Words of a segment without timings, its time shared by their length in characters."""
    words = segment.text.split()
    total = sum(len(word) for word in words)
    span = max(segment.end - segment.start, 0.0)
    timed, start = [], segment.start
    for word in words:
        end = start + span * len(word) / total
        timed.append((" " + word, start, end))
        start = end
    return timed


def _segment_words(segment: Segment) -> list[tuple[str, float, float, str | None]]:
    if segment.words:
        return [
            (word.word, word.start, word.end, word.speaker or segment.speaker)
            for word in segment.words
        ]
    return [(text, start, end, segment.speaker) for text, start, end in _estimated(segment)]


def _safe_words(segments: Iterable[Segment], duration: float) -> Iterator[list[_Word]]:
    """Each segment's words, clamped to the audio and in time order (see the module's rules)."""
    limit = max(duration, 0.0) if math.isfinite(duration) else math.inf
    previous_end = 0.0
    for segment in segments:
        words = []
        for raw, start, end, speaker in _segment_words(segment):
            text = _clean(raw)
            if not text:
                continue
            first = min(max(_finite(start), previous_end), limit)
            last = min(max(_finite(end), first), limit)
            words.append(_Word(text, raw[:1].isspace(), first, last, speaker))
            previous_end = last
        yield words


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def _timed(cue: list[list[_Word]], style: SubtitleStyle, *, vtt: bool) -> Iterator[Cue]:
    """One layout cue as timed cues: itself, or one per word (and gap) when highlighting."""
    start = cue[0][0].start
    end = cue[-1][-1].end
    if style.max_cue_duration is not None:
        end = min(end, start + style.max_cue_duration)
    if not style.highlight_words:
        yield Cue(start, end, _cue_text(cue, vtt=vtt))
        return
    shown = start
    for word in (word for line in cue for word in line):
        word_start, word_end = min(word.start, end), min(word.end, end)
        if word_start > shown:
            yield Cue(shown, word_start, _cue_text(cue, vtt=vtt))
        yield Cue(word_start, word_end, _cue_text(cue, highlight=word, vtt=vtt))
        shown = word_end
    if end > shown:
        yield Cue(shown, end, _cue_text(cue, vtt=vtt))


def shape_cues(
    segments: Sequence[Segment], style: SubtitleStyle, duration: float, *, vtt: bool = False
) -> list[Cue]:
    """Lay the words of ``segments`` out as cues, following ``style``.

    Args:
        segments: The transcript's segments, in order; their words' timings are used, or
            estimated for a segment without them (see the module's rules). Speakers on words
            (or their segments) keep each cue to one speaker and label it.
        style: The limits of lines and cues.
        duration: Length of the audio in seconds; no cue ends later.
        vtt: Label speakers with WebVTT voice spans (``<v A>``) instead of ``[A]``.

    Returns:
        The cues in time order, none overlapping the next, none empty, each within
        ``[0, duration]``.
    """
    layout = _Layout(style)
    previous_end = 0.0
    for words in _safe_words(segments, duration):
        for index, word in enumerate(words):
            layout.add(word, new_segment=index == 0, previous_end=previous_end)
            previous_end = word.end
    return [timed for cue in layout.cues for timed in _timed(cue, style, vtt=vtt)]

"""faster-whisper's segments and words as whisperd's result types, always within the audio.

Whisper predicts a window's end as a timestamp token on a 20 ms grid, from a window padded to
30 s, so the last segment of a clip often ends after the audio does (a 1.58 s clip gets the
token ``<|2.00|>``), and faster-whisper passes segment times on as predicted (word times come
from alignment on the audio's own frames). Every time is clamped here to ``[0, duration]``
(with ``end >= start``), where both engines build their results, so every front end (JSON,
subtitles, streams, CLI) inherits it.
"""

from __future__ import annotations

from typing import Any

from whisperd.engine.base import Segment, Word

__all__ = ["to_segment"]


def to_segment(segment: Any, duration: float, after: float = 0.0) -> Segment:
    """A faster-whisper ``Segment`` as a :class:`Segment` whose times lie within the audio and
    after the segment before it.

    Args:
        segment: faster-whisper's segment (its ``id`` counts from 1).
        duration: Length of the transcribed audio in seconds; no time is later.
        after: The end of the segment before, in seconds; no time is earlier (batched
            decoding's chunks are timed apart, and two chunks' times can meet by a few
            milliseconds).

    Returns:
        The segment with ``id`` counted from 0 and every time (its own and its words') in
        ``[after, duration]``, each end no earlier than its start.
    """
    start, end = _span(segment.start, segment.end, after, duration)
    words = (
        None if segment.words is None else tuple(_word(w, after, duration) for w in segment.words)
    )
    return Segment(
        id=int(segment.id) - 1,
        seek=int(segment.seek),
        start=start,
        end=end,
        text=str(segment.text),
        tokens=tuple(int(t) for t in segment.tokens),
        temperature=float(segment.temperature or 0.0),
        avg_logprob=float(segment.avg_logprob),
        compression_ratio=float(segment.compression_ratio),
        no_speech_prob=float(segment.no_speech_prob),
        words=words,
    )


def _word(word: Any, after: float, duration: float) -> Word:
    start, end = _span(word.start, word.end, after, duration)
    return Word(start=start, end=end, word=str(word.word), probability=float(word.probability))


def _span(start: Any, end: Any, low: float, duration: float) -> tuple[float, float]:
    """``(start, end)`` clamped to ``[low, duration]``, with ``end >= start``."""
    first = min(max(float(start), low), duration)
    return first, min(max(float(end), first), duration)

"""Per-channel speakers: transcripts of a recording's channels merged by time, the speaker
being the channel (call centres record agent and customer apart; no speaker model needed).

Each channel is decoded with word timings. Whisper's segment times on one channel span the
silence while the other channels speak (a segment of 4.0-14.5 s for words from 10.1 s on), so
a segment is timed from its first word to its last, and split where another channel speaks
between two of its words; the pieces then interleave by time as the turns did.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
from typing import TYPE_CHECKING

from whisperd.diarization.naming import letters

if TYPE_CHECKING:
    from collections.abc import Sequence

    from whisperd.engine.base import Segment, Transcript, Word

__all__ = ["channel_labels", "merge_channels"]


def channel_labels(count: int, names: Sequence[str]) -> list[str]:
    """A speaker label per channel: the given names in channel order, then ``A``, ``B``, ...
    (skipping the names given)."""
    given = list(names[:count])
    return given + letters(count - len(given), taken=given)


def merge_channels(transcripts: Sequence[Transcript], labels: Sequence[str]) -> Transcript:
    """One transcript from each channel's (``transcripts[i]`` is channel ``i``, spoken by
    ``labels[i]``, decoded with word timings): every segment and word labelled, each segment
    timed by its words and split where another channel speaks between two of its words,
    segments ordered by start (channel order on ties) and renumbered; the language of the
    channel with the most speech."""
    middles = [[(w.start + w.end) / 2 for w in transcript.words] for transcript in transcripts]
    others = [
        sorted(m for other, times in enumerate(middles) if other != channel for m in times)
        for channel in range(len(transcripts))
    ]
    tagged = [
        piece
        for channel, (transcript, label) in enumerate(zip(transcripts, labels, strict=True))
        for segment in transcript.segments
        for piece in _pieces(segment, label, others[channel])
    ]
    tagged.sort(key=lambda segment: segment.start)
    main = max(transcripts, key=lambda item: sum(s.end - s.start for s in item.segments))
    return dataclasses.replace(
        main,
        segments=tuple(dataclasses.replace(s, id=index) for index, s in enumerate(tagged)),
        duration=max(transcript.duration for transcript in transcripts),
    )


def _pieces(segment: Segment, label: str, others: Sequence[float]) -> list[Segment]:
    """``segment`` spoken by ``label``, timed by its words and cut between two words where a
    word of another channel (``others``: their middles, in s, sorted) falls."""
    words = [dataclasses.replace(word, speaker=label) for word in segment.words or ()]
    if not words:
        return [dataclasses.replace(segment, speaker=label)]
    runs: list[list[Word]] = [[words[0]]]
    for before, word in itertools.pairwise(words):
        if bisect.bisect_left(others, before.end) < bisect.bisect_right(others, word.start):
            runs.append([])
        runs[-1].append(word)
    whole = len(runs) == 1
    return [
        dataclasses.replace(
            segment,
            start=run[0].start,
            end=run[-1].end,
            text=segment.text if whole else "".join(word.word for word in run),
            tokens=segment.tokens if whole else (),
            logprobs=segment.logprobs if whole else None,
            words=tuple(run),
            speaker=label,
        )
        for run in runs
    ]

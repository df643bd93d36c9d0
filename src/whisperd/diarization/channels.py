"""Per-channel speakers: transcripts of a recording's channels merged by time, the speaker
being the channel (call centres record agent and customer apart; no speaker model needed)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from whisperd.diarization.naming import letters

if TYPE_CHECKING:
    from collections.abc import Sequence

    from whisperd.engine.base import Transcript

__all__ = ["channel_labels", "merge_channels"]


def channel_labels(count: int, names: Sequence[str]) -> list[str]:
    """A speaker label per channel: the given names in channel order, then ``A``, ``B``, ...
    (skipping the names given)."""
    given = list(names[:count])
    return given + letters(count - len(given), taken=given)


def merge_channels(transcripts: Sequence[Transcript], labels: Sequence[str]) -> Transcript:
    """One transcript from each channel's (``transcripts[i]`` is channel ``i``, spoken by
    ``labels[i]``): every segment and word labelled, segments ordered by start (channel
    order on ties) and renumbered; the language of the channel with the most speech."""
    tagged = [
        dataclasses.replace(
            segment,
            speaker=label,
            words=None
            if segment.words is None
            else tuple(dataclasses.replace(word, speaker=label) for word in segment.words),
        )
        for transcript, label in zip(transcripts, labels, strict=True)
        for segment in transcript.segments
    ]
    tagged.sort(key=lambda segment: segment.start)
    main = max(transcripts, key=lambda item: sum(s.end - s.start for s in item.segments))
    return dataclasses.replace(
        main,
        segments=tuple(dataclasses.replace(s, id=index) for index, s in enumerate(tagged)),
        duration=max(transcript.duration for transcript in transcripts),
    )

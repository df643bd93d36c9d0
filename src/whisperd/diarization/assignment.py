"""From labelled windows to labelled words, then to one speaker per segment.

Each word takes the majority label of the windows that cover its middle (the nearest window
when none does); runs shorter than :data:`MIN_RUN_WORDS` words and :data:`MIN_RUN_S` between
two runs are given their neighbour's label (a window straddling a turn change blurs it); then
each Whisper segment is split where its words change speaker, so every segment is one
speaker's, as OpenAI's ``diarized_json`` segments are.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from whisperd.diarization.windows import Window
    from whisperd.engine.base import Segment, Word

__all__ = ["MIN_RUN_S", "MIN_RUN_WORDS", "label_words", "split_segments"]

MIN_RUN_WORDS = 2
"""A speaker run of fewer words than this (and shorter than :data:`MIN_RUN_S`) is smoothed."""
MIN_RUN_S = 0.6
"""A speaker run shorter than this (and of fewer than :data:`MIN_RUN_WORDS`) is smoothed."""


def label_words(
    words: Sequence[Word], windows: Sequence[Window], labels: Sequence[int]
) -> list[int]:
    """A window label per word (``words`` in time order; ``windows`` non-empty)."""
    chosen = [_vote((word.start + word.end) / 2, windows, labels) for word in words]
    return _smooth(words, chosen)


def _vote(time: float, windows: Sequence[Window], labels: Sequence[int]) -> int:
    covering = [
        label for window, label in zip(windows, labels, strict=True) if _covers(window, time)
    ]
    if covering:
        counts = Counter(covering).most_common()
        best = counts[0][1]
        tied = {label for label, count in counts if count == best}
        if len(tied) == 1:
            return counts[0][0]
    nearest = min(
        (index for index, label in enumerate(labels) if not covering or label in tied),
        key=lambda index: abs(windows[index].centre - time),
    )
    return labels[nearest]


def _covers(window: Window, time: float) -> bool:
    return window.start <= time <= window.end


def _smooth(words: Sequence[Word], chosen: list[int]) -> list[int]:
    runs: list[list[int]] = []
    for index, label in enumerate(chosen):
        if runs and chosen[runs[-1][0]] == label:
            runs[-1].append(index)
        else:
            runs.append([index])
    out = list(chosen)
    for position, run in enumerate(runs):
        if position == 0 or position == len(runs) - 1:
            continue
        span = words[run[-1]].end - words[run[0]].start
        if len(run) < MIN_RUN_WORDS and span < MIN_RUN_S:
            for index in run:
                out[index] = out[runs[position - 1][0]]
    return out


def split_segments(segments: Sequence[Segment], speakers: Sequence[str]) -> list[Segment]:
    """Each segment with its words labelled (``speakers``: one per word, in order), split
    where the speaker changes; renumbered from 0. A segment without words keeps the speaker
    of the word before it (the first speaker when none)."""
    out: list[Segment] = []
    cursor = 0
    last = speakers[0] if speakers else None
    for segment in segments:
        words = segment.words or ()
        labelled = [
            dataclasses.replace(word, speaker=speakers[cursor + offset])
            for offset, word in enumerate(words)
        ]
        cursor += len(words)
        if not labelled:
            out.append(dataclasses.replace(segment, speaker=last))
            continue
        for part in _runs(labelled):
            whole = len(part) == len(labelled)
            out.append(
                dataclasses.replace(
                    segment,
                    start=segment.start if whole else part[0].start,
                    end=segment.end if whole else part[-1].end,
                    text=segment.text if whole else "".join(word.word for word in part),
                    tokens=segment.tokens if whole else (),
                    logprobs=segment.logprobs if whole else None,
                    words=tuple(part),
                    speaker=part[0].speaker,
                )
            )
        last = labelled[-1].speaker
    return [dataclasses.replace(segment, id=index) for index, segment in enumerate(out)]


def _runs(words: list[Word]) -> list[list[Word]]:
    runs: list[list[Word]] = []
    for word in words:
        if runs and runs[-1][-1].speaker == word.speaker:
            runs[-1].append(word)
        else:
            runs.append([word])
    return runs

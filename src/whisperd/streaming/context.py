"""Audio context for stream finals: the previous finals' audio decoded again before a new
utterance, so a short utterance is heard the way the batch path hears it, inside a longer window.

Whisper transcribes a short clip on its own much worse than the same words inside a 30 s
window (it was trained on such windows). A final is therefore decoded over the audio of the
stream's last finals (up to :data:`CONTEXT_S`) followed by the new utterance, in one of two ways:

- unforced (an utterance with no stable words, the default): the whole stretch is decoded as the
  batch path would decode it, and :func:`drop_before` keeps the words heard after the utterance
  began (by the middle of each word's timing);
- forced (words already stable, ``stable_partials``): the last finals' text and the stable words
  are forced as the decoder prefix, and :func:`drop_leading_text` cuts the context's words off.
  With timestamps, Whisper often ends a forced decode right after the forced context; the
  session then hears the utterance alone.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from whisperd.engine.base import SAMPLE_RATE, Segment, TokenLogprob, Transcript, Word
from whisperd.engine.token_logprobs import tail_logprobs

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

CONTEXT_S = 20.0
"""Most seconds of previous finals' audio decoded again before a new utterance, by default."""
WINDOW_S = 28.0
"""Context and utterance together stay within one 30 s Whisper window (with a margin)."""


@dataclass(frozen=True, slots=True)
class Committed:
    """A final of the stream: its audio span (stream samples) and its text."""

    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Context:
    """The previous finals to decode again before an utterance."""

    start: int
    """Stream sample where the context audio begins."""
    text: str
    """Their words, forced as the decoder prefix."""


def choose_context(
    committed: Sequence[Committed],
    *,
    utterance_start: int,
    utterance_end: int,
    kept_from: int,
    context_s: float = CONTEXT_S,
) -> Context | None:
    """The latest finals whose audio is kept and fits before the utterance, or None.

    Finals are taken newest first while the context stays within ``context_s`` seconds, the
    whole decode within :data:`WINDOW_S`, and the audio is still in the stream's buffer.
    """
    earliest = max(
        kept_from,
        utterance_start - round(context_s * SAMPLE_RATE),
        utterance_end - round(WINDOW_S * SAMPLE_RATE),
    )
    chosen: list[Committed] = []
    for final in reversed(committed):
        if final.start < earliest or final.end > utterance_start or not final.text.strip():
            break
        chosen.append(final)
    if not chosen:
        return None
    chosen.reverse()
    return Context(chosen[0].start, " ".join(final.text.strip() for final in chosen))


def _letters(text: str) -> int:
    return len("".join(text.split()))


def drop_leading_text(transcript: Transcript, text: str, *, keep_words: bool) -> Transcript:
    """``transcript`` without the words that spell ``text`` at its start (the forced context).

    The split is found by counting non-space characters over the word timings, so it does not
    depend on how words were split. Segments wholly inside the context are dropped; a segment
    that straddles it keeps its later words (and loses its token ids, which no longer match).
    Without ``keep_words``, word timings are removed from the result.

    Raises:
        ValueError: if the transcript has no word timings (decode with word timestamps).
    """
    remaining = _letters(text)

    def after_text(word: Word) -> bool:
        nonlocal remaining
        if remaining <= 0:
            return True
        remaining -= _letters(word.word)
        return False

    return _keep_words(transcript, after_text, keep_words=keep_words)


def drop_before(transcript: Transcript, seconds: float, *, keep_words: bool) -> Transcript:
    """``transcript`` without the words whose middle lies before ``seconds`` (decode time).

    For a context decoded again unforced: its words belong to earlier finals, and are cut off
    where the new utterance's audio begins. Segments are kept as in :func:`drop_leading_text`.

    Raises:
        ValueError: if the transcript has no word timings (decode with word timestamps).
    """
    return words_between(transcript, seconds, math.inf, keep_words=keep_words)


def words_between(
    transcript: Transcript, start: float, end: float, *, keep_words: bool
) -> Transcript:
    """The words of ``transcript`` whose middle lies in ``[start, end)`` (decode time, s).

    For several utterances decoded in one window: each keeps the words heard in its own
    stretch. Segments are kept as in :func:`drop_leading_text`; one cut at either end takes
    its kept words' times there.

    Raises:
        ValueError: if the transcript has no word timings (decode with word timestamps).
    """
    return _keep_words(
        transcript,
        lambda word: start <= (word.start + word.end) / 2 < end,
        keep_words=keep_words,
    )


def _kept_logprobs(segment: Segment, kept: list[Word]) -> tuple[TokenLogprob, ...] | None:
    """The token logprobs of a segment's last words ``kept`` (None when it has none, or when
    its last tokens do not spell those words)."""
    if segment.logprobs is None:
        return None
    return tail_logprobs(segment.logprobs, "".join(word.word for word in kept))


def _keep_words(
    transcript: Transcript, keep: Callable[[Word], bool], *, keep_words: bool
) -> Transcript:
    """The words ``keep`` accepts (asked in order), in segments rebuilt around them."""
    segments: list[Segment] = []
    for segment in transcript.segments:
        if segment.words is None:
            raise ValueError("dropping a context needs word timestamps")
        kept = [word for word in segment.words if keep(word)]
        if not kept:
            continue
        whole = len(kept) == len(segment.words)
        segments.append(
            dataclasses.replace(
                segment,
                id=len(segments),
                start=segment.start if kept[0] is segment.words[0] else kept[0].start,
                end=segment.end if kept[-1] is segment.words[-1] else kept[-1].end,
                text=segment.text if whole else "".join(word.word for word in kept),
                tokens=segment.tokens if whole else (),
                words=tuple(kept) if keep_words else None,
                logprobs=segment.logprobs if whole else _kept_logprobs(segment, kept),
            )
        )
    return dataclasses.replace(transcript, segments=tuple(segments))

"""A stream final's context cut keeps the token logprobs of the words it keeps, and only those."""

from __future__ import annotations

from whisperd.engine.base import Segment, TokenLogprob, Transcript, Word
from whisperd.streaming.context import drop_before, drop_leading_text


def _entry(text: str, logprob: float) -> TokenLogprob:
    return TokenLogprob(token=text, logprob=logprob, bytes=tuple(text.encode()))


WORDS = (
    Word(0.0, 0.5, " Earlier", 0.9),
    Word(0.5, 1.0, " words.", 0.8),
    Word(1.2, 1.6, " New", 0.7),
    Word(1.6, 2.0, " ones.", 0.6),
)
ENTRIES = (
    _entry(" Earlier", -0.1),
    _entry(" words", -0.2),
    _entry(".", -0.3),
    _entry(" New", -0.4),
    _entry(" ones", -0.5),
    _entry(".", -0.6),
)


def _transcript(logprobs: tuple[TokenLogprob, ...] | None) -> Transcript:
    segment = Segment(
        0, 0, 0.0, 2.0, " Earlier words. New ones.", (1, 2), 0.0, -0.3, 1.0, 0.0, WORDS, logprobs
    )
    return Transcript((segment,), "en", 1.0, 2.0)


def test_a_cut_segment_keeps_its_kept_words_logprobs() -> None:
    kept = drop_leading_text(_transcript(ENTRIES), "Earlier words.", keep_words=False)
    assert kept.text == "New ones."
    assert kept.segments[0].logprobs == ENTRIES[3:]
    by_time = drop_before(_transcript(ENTRIES), 1.1, keep_words=True)
    assert by_time.logprobs == ENTRIES[3:]


def test_a_whole_segment_keeps_all_and_none_stays_none() -> None:
    assert drop_before(_transcript(ENTRIES), 0.0, keep_words=False).logprobs == ENTRIES
    assert drop_before(_transcript(None), 1.1, keep_words=False).segments[0].logprobs is None

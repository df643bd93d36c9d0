"""Stream finals heard in context: which previous finals, and how their words are cut off."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from whisperd.engine.base import SAMPLE_RATE, Segment, Transcript, Word
from whisperd.streaming.context import Committed, choose_context, drop_before, drop_leading_text
from whisperd.streaming.session import (
    WINDOW,
    DecodeRequest,
    Event,
    Result,
    StreamConfig,
    StreamSession,
)


def timed(words: list[tuple[str, float, float]]) -> Transcript:
    """One segment per sentence (a word ending in '.'), with word timings."""
    segments: list[Segment] = []
    sentence: list[Word] = []
    for text, start, end in words:
        sentence.append(Word(start, end, " " + text, 0.9))
        if text.endswith("."):
            segments.append(_segment(len(segments), sentence))
            sentence = []
    if sentence:
        segments.append(_segment(len(segments), sentence))
    return Transcript(tuple(segments), "en", 1.0, 30.0)


def _segment(number: int, words: list[Word]) -> Segment:
    text = "".join(word.word for word in words)
    return Segment(
        number, 0, words[0].start, words[-1].end, text, (1, 2), 0.0, -0.2, 1.1, 0.0, tuple(words)
    )


SPOKEN = timed(
    [
        ("one", 0.0, 0.4),
        ("two.", 0.4, 0.9),
        ("three", 1.5, 1.9),
        ("four", 1.9, 2.4),
        ("five.", 2.4, 3.0),
    ]
)


def test_drop_before_keeps_the_words_whose_middle_is_after_the_cut() -> None:
    kept = drop_before(SPOKEN, 1.6, keep_words=True)

    assert [s.text for s in kept.segments] == [" three four five."]
    assert kept.segments[0].tokens == (1, 2)  # a whole segment keeps its tokens
    assert [s.id for s in kept.segments] == [0]

    straddled = drop_before(SPOKEN, 1.8, keep_words=False)
    assert straddled.text.split() == ["four", "five."]
    assert straddled.segments[0].start == 1.9
    assert straddled.segments[0].tokens == ()  # no longer the segment's tokens
    assert straddled.segments[0].words is None


def test_drop_before_needs_word_timings() -> None:
    untimed = Transcript(
        (Segment(0, 0, 0.0, 1.0, " one", (), 0.0, -0.1, 1.0, 0.0),), "en", 1.0, 1.0
    )
    with pytest.raises(ValueError, match="word timestamps"):
        drop_before(untimed, 0.5, keep_words=False)


def test_drop_leading_text_cuts_the_forced_words_off_by_letters() -> None:
    kept = drop_leading_text(SPOKEN, "one two.", keep_words=True)

    assert kept.text.split() == ["three", "four", "five."]


def test_the_latest_whole_finals_within_the_context_are_chosen() -> None:
    second = SAMPLE_RATE
    committed = [
        Committed(0, 4 * second, "first."),
        Committed(5 * second, 9 * second, "second."),
        Committed(10 * second, 12 * second, "third."),
    ]

    context = choose_context(
        committed, utterance_start=13 * second, utterance_end=15 * second, kept_from=0, context_s=9
    )
    assert context is not None
    assert (context.start, context.text) == (5 * second, "second. third.")

    assert (
        choose_context(
            committed,
            utterance_start=13 * second,
            utterance_end=15 * second,
            kept_from=0,
            context_s=1,
        )
        is None
    )


class TimedDecoder:
    """Words every 0.5 s of audio, timed, with a sentence end every fourth word."""

    def __init__(self) -> None:
        self.requests: list[tuple[float, DecodeRequest]] = []
        self.heard = 0

    async def __call__(self, audio: np.ndarray, request: DecodeRequest) -> Transcript:
        seconds = len(audio) / SAMPLE_RATE
        self.requests.append((seconds, request))
        words = []
        for index in range(int(seconds / 0.5)):
            text = f"w{index}" + ("." if index % 4 == 3 else "")
            words.append((text, index * 0.5, index * 0.5 + 0.4))
        return timed(words) if words else Transcript((), "en", 1.0, seconds)


def test_a_final_hears_the_previous_finals_unforced_and_keeps_only_its_own_words() -> None:
    decoder = TimedDecoder()
    events: list[Event] = []

    async def emit(event: Event) -> None:
        events.append(event)

    async def vad(audio: np.ndarray) -> np.ndarray:
        return (np.abs(audio.reshape(-1, WINDOW)).mean(axis=1) > 0.1).astype(np.float32)

    async def main(script: list[Any]) -> None:
        session = StreamSession(
            StreamConfig(context_s=20.0, word_timestamps=True), decoder, vad, emit
        )
        session.start()
        for chunk in script:
            await session.feed(chunk)
            await asyncio.sleep(0)
        await session.end_audio()
        await session.close()

    loud, quiet = (
        np.full(int(SAMPLE_RATE * s), v, dtype=np.float32) for s, v in ((3, 0.5), (1, 0.0))
    )
    asyncio.run(main([loud, quiet, loud, quiet]))

    finals = [e for e in events if isinstance(e, Result) and e.is_final]
    assert len(finals) == 2
    first_len, first = decoder.requests[0]
    second_len, second = decoder.requests[1]
    assert first.prefix is None
    assert second.prefix is None
    assert second.word_timestamps  # the context is cut off by word timings
    assert second_len > first_len + 3  # the second decode heard the first utterance again
    # the second final starts at the context's start, and keeps only words after its utterance
    assert finals[1].start == pytest.approx(finals[0].start)
    utterance_start = 4.0 - 0.5  # the second burst, less at most the decode lead
    words = [word for segment in finals[1].transcript.segments for word in segment.words or ()]
    assert words
    assert all(finals[1].start + (word.start + word.end) / 2 >= utterance_start for word in words)
    own = finals[1].transcript.text.split()
    assert 4 <= len(own) <= 8  # about 3 s of words, not the first utterance's again
    # it is counted for its own audio (lead and trail included), not the context heard again
    assert finals[1].duration > 6.5
    assert 3.0 <= finals[1].billed_duration <= 3.0 + 0.7

"""A stream's final context under load: as much as its finals' measured cost affords in time."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from whisperd.engine.base import SAMPLE_RATE, Segment, Transcript, Word
from whisperd.streaming.budget import OVERHEAD_S, RATE_WEIGHT, ContextBudget
from whisperd.streaming.session import (
    WINDOW,
    DecodeRequest,
    Event,
    Result,
    StreamConfig,
    StreamSession,
)


def test_the_first_final_hears_the_whole_context() -> None:
    budget = ContextBudget(20.0, target_s=0.7)
    assert budget.rate is None
    assert budget.affordable(3.0, waited_s=0.0) == 20.0
    assert budget.affordable(3.0, waited_s=0.7) == 0.0


def test_a_final_hears_the_context_its_time_left_affords() -> None:
    budget = ContextBudget(20.0, target_s=0.7)
    budget.observe(9.0, 0.5)  # 0.05 s per second, the overhead's second included
    assert budget.rate == pytest.approx(0.05)
    # 0.7 s affords 14 s decoded: 1 s of overhead, 3 s of its own, 10 s of context.
    assert budget.affordable(3.0, waited_s=0.0) == pytest.approx(10.0)
    assert budget.affordable(6.0, waited_s=0.0) == pytest.approx(7.0)


def test_a_final_that_waited_hears_less_and_then_none() -> None:
    budget = ContextBudget(20.0, target_s=0.7)
    budget.observe(9.0, 0.5)
    assert budget.affordable(3.0, waited_s=0.3) == pytest.approx(4.0)
    assert budget.affordable(3.0, waited_s=0.6) == 0.0
    assert budget.affordable(3.0, waited_s=2.0) == 0.0


def test_the_rate_follows_the_newest_decodes() -> None:
    budget = ContextBudget(20.0, target_s=0.7)
    budget.observe(9.0, 0.5)
    budget.observe(4.0, 1.0)  # a loaded machine: 0.2 s per second
    rate = 0.05 + RATE_WEIGHT * (0.2 - 0.05)
    assert budget.rate == pytest.approx(rate)
    assert budget.affordable(3.0, waited_s=0.0) == pytest.approx(0.7 / rate - 4.0)
    for _ in range(20):
        budget.observe(9.0, 0.5)  # the load went
    assert budget.affordable(3.0, waited_s=0.0) == pytest.approx(10.0, abs=0.01)


def test_a_fast_server_gives_every_final_the_whole_context() -> None:
    budget = ContextBudget(20.0, target_s=0.7)
    budget.observe(25.0, 0.05)
    assert budget.affordable(8.0, waited_s=0.0) == 20.0
    unmeasurable = ContextBudget(20.0, target_s=0.7)
    unmeasurable.observe(25.0, 0.0)
    assert unmeasurable.affordable(8.0, waited_s=0.5) == 20.0
    assert unmeasurable.affordable(8.0, waited_s=0.7) == 0.0  # too late for any


def test_no_context_configured_stays_none() -> None:
    budget = ContextBudget(0.0)
    budget.observe(3.0, 0.1)
    assert budget.affordable(3.0, waited_s=0.0) == 0.0


class SlowTimedDecoder:
    """Words every 0.5 s, timed, one segment per four words; each decode takes ``delay_s``
    plus ``per_second_s`` per second of audio and of overhead (the budget's cost model)."""

    def __init__(self, delay_s: float, per_second_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.per_second_s = per_second_s
        self.requests: list[tuple[float, DecodeRequest]] = []

    async def __call__(self, audio: np.ndarray, request: DecodeRequest) -> Transcript:
        seconds = len(audio) / SAMPLE_RATE
        self.requests.append((seconds, request))
        await asyncio.sleep(self.delay_s + self.per_second_s * (seconds + OVERHEAD_S))
        words = [Word(i * 0.5, i * 0.5 + 0.4, f" w{i}", 0.9) for i in range(int(seconds / 0.5))]
        segments = tuple(
            Segment(
                n,
                0,
                chunk[0].start,
                chunk[-1].end,
                "".join(w.word for w in chunk),
                (),
                0.0,
                -0.2,
                1.1,
                0.0,
                tuple(chunk),
            )
            for n, chunk in enumerate(words[i : i + 4] for i in range(0, len(words), 4))
        )
        return Transcript(segments, "en", 1.0, seconds)


def stream_bursts(config: StreamConfig, decoder: SlowTimedDecoder, bursts: int) -> list[Result]:
    """``bursts`` times 3 s of speech and 1 s of silence; every final, waited for."""
    events: list[Event] = []

    async def emit(event: Event) -> None:
        events.append(event)

    async def vad(audio: np.ndarray) -> np.ndarray:
        return (np.abs(audio.reshape(-1, WINDOW)).mean(axis=1) > 0.1).astype(np.float32)

    async def main() -> None:
        session = StreamSession(config, decoder, vad, emit)
        session.start()
        speech = np.full(3 * SAMPLE_RATE, 0.5, dtype=np.float32)
        silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
        for _ in range(bursts):
            for chunk in (speech, silence):
                await session.feed(chunk)
                await session.wait_idle()
        await session.end_audio()
        await session.close()

    asyncio.run(asyncio.wait_for(main(), 30))
    return [e for e in events if isinstance(e, Result) and e.is_final]


def test_a_stream_hears_the_context_that_fits_its_latency_target() -> None:
    decoder = SlowTimedDecoder(delay_s=0.0, per_second_s=0.1)
    # A final's own audio: 3.6 s (its 3 s of speech, the lead and the trail). At 0.1 s per
    # second, 1.06 s affords 10.6 s decoded: the overhead's second, its own 3.6 s and 6 s of
    # context, which holds the utterance before (4 s back) and not the one before that (8 s).
    config = StreamConfig(context_s=20.0, word_timestamps=True, latency_target_s=1.06)
    finals = stream_bursts(config, decoder, bursts=5)

    assert len(finals) == 5
    lengths = [seconds for seconds, _ in decoder.requests]
    assert lengths[0] < 4.0  # the first final has no context
    # 3.6 s of its own and the 4 s of the utterance before; 11.6 s with the two before.
    assert all(7.0 < length < 8.0 for length in lengths[1:]), lengths


def test_a_stream_whose_finals_cannot_be_in_time_hears_no_context() -> None:
    decoder = SlowTimedDecoder(delay_s=0.05)
    config = StreamConfig(context_s=20.0, word_timestamps=True, latency_target_s=0.01)
    finals = stream_bursts(config, decoder, bursts=4)

    assert len(finals) == 4
    lengths = [seconds for seconds, _ in decoder.requests]
    assert all(length < 4.0 for length in lengths), lengths  # their own 3.6 s at most
    assert all(final.latency >= 0.05 for final in finals)


def test_a_stream_in_time_keeps_the_whole_context() -> None:
    decoder = SlowTimedDecoder(delay_s=0.0)
    config = StreamConfig(context_s=20.0, word_timestamps=True, latency_target_s=60.0)
    stream_bursts(config, decoder, bursts=4)

    lengths = [seconds for seconds, _ in decoder.requests]
    assert lengths[3] > lengths[0] + 9  # three earlier utterances heard again

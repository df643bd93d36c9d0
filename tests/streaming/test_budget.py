"""A stream's final context under load: halved while finals come late, given back in time."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from whisperd.engine.base import SAMPLE_RATE, Segment, Transcript, Word
from whisperd.streaming.budget import CONTEXT_STEP_S, LEAST_CONTEXT_S, ContextBudget
from whisperd.streaming.session import (
    WINDOW,
    DecodeRequest,
    Event,
    Result,
    StreamConfig,
    StreamSession,
)


def test_late_finals_halve_the_context_down_to_none() -> None:
    budget = ContextBudget(20.0, target_s=1.0)
    assert budget.seconds == 20.0
    seen = []
    for _ in range(5):
        budget.observe(1.5)
        seen.append(budget.seconds)
    assert seen == [10.0, 5.0, 2.5, 0.0, 0.0]
    assert LEAST_CONTEXT_S > 2.5 / 2  # hence the drop to none


def test_finals_in_time_give_the_context_back_step_by_step() -> None:
    budget = ContextBudget(20.0, target_s=1.0)
    budget.observe(3.0)
    budget.observe(3.0)
    assert budget.seconds == 5.0
    budget.observe(0.4)
    assert budget.seconds == 5.0 + CONTEXT_STEP_S
    for _ in range(5):
        budget.observe(0.4)
    assert budget.seconds == 20.0


def test_no_context_configured_stays_none() -> None:
    budget = ContextBudget(0.0)
    budget.observe(0.1)
    assert budget.seconds == 0.0


class SlowTimedDecoder:
    """Words every 0.5 s, timed, one segment per four words; each decode takes ``delay_s``."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.requests: list[tuple[float, DecodeRequest]] = []

    async def __call__(self, audio: np.ndarray, request: DecodeRequest) -> Transcript:
        seconds = len(audio) / SAMPLE_RATE
        self.requests.append((seconds, request))
        await asyncio.sleep(self.delay_s)
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


def test_a_stream_whose_finals_are_late_sheds_context() -> None:
    decoder = SlowTimedDecoder(delay_s=0.05)
    config = StreamConfig(context_s=20.0, word_timestamps=True, latency_target_s=0.01)
    finals = stream_bursts(config, decoder, bursts=6)

    assert len(finals) == 6
    lengths = [seconds for seconds, _ in decoder.requests]
    # Contexts 20, 10, 5, 2.5, 0, 0 s: the second final hears the first utterance again, the
    # last ones only their own utterance (3 s and the lead and trail around it).
    assert lengths[1] > lengths[0] + 3
    assert lengths[4] == pytest.approx(lengths[5], abs=0.1)
    assert lengths[5] < 4.5
    assert all(final.latency >= 0.05 for final in finals)


def test_a_stream_in_time_keeps_the_whole_context() -> None:
    decoder = SlowTimedDecoder(delay_s=0.0)
    config = StreamConfig(context_s=20.0, word_timestamps=True, latency_target_s=60.0)
    stream_bursts(config, decoder, bursts=4)

    lengths = [seconds for seconds, _ in decoder.requests]
    assert lengths[3] > lengths[0] + 9  # three earlier utterances heard again

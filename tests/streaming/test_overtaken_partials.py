"""A partial still waiting for the model when its utterance ends is dropped: the final does not
wait for it (under load partials queue behind other streams' finals)."""

from __future__ import annotations

import asyncio

import numpy as np
from test_session import FakeDecoder, fake_vad, feed, loud, quiet

from waiting import DEADLINE_S
from whisperd.streaming.session import DecodeRequest, Event, Result, StreamConfig, StreamSession


class SlowPartials(FakeDecoder):
    """Finals at once; each partial waits until the test releases it."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.partial_waiting = asyncio.Event()
        self.cancelled = 0

    async def __call__(self, audio: np.ndarray, request: DecodeRequest) -> object:
        if not request.final:
            self.partial_waiting.set()
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return await super().__call__(audio, request)


def test_the_final_does_not_wait_for_a_partial_it_made_stale() -> None:
    events: list[Event] = []
    decoder = SlowPartials()

    async def emit(event: Event) -> None:
        events.append(event)

    async def scenario() -> None:
        config = StreamConfig(partials=True, partial_interval_s=0.5, min_silence_ms=300)
        session = StreamSession(config, decoder, fake_vad, emit)
        session.start()
        await feed(session, quiet(0.5))
        await feed(session, loud(2))
        await asyncio.wait_for(decoder.partial_waiting.wait(), DEADLINE_S)
        await feed(session, quiet(1))  # the utterance ends while its partial still waits
        await asyncio.wait_for(session.wait_idle(), DEADLINE_S)
        await session.close()

    asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S))
    results = [e for e in events if isinstance(e, Result)]
    assert [r.is_final for r in results] == [True]
    assert results[0].duration >= 2.0
    assert results[0].transcript.text.split()[:4] == ["w0", "w1", "w2", "w3"]
    assert decoder.cancelled == 1


def test_closing_the_stream_still_cancels_a_waiting_partial() -> None:
    decoder = SlowPartials()

    async def emit(event: Event) -> None:
        pass

    async def scenario() -> None:
        session = StreamSession(
            StreamConfig(partials=True, partial_interval_s=0.5), decoder, fake_vad, emit
        )
        session.start()
        await feed(session, loud(2))
        await asyncio.wait_for(decoder.partial_waiting.wait(), DEADLINE_S)
        await session.close()

    asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S))
    assert decoder.cancelled == 1

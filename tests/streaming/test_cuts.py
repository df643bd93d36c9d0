"""An utterance cut at its longest: one cut per ``max_utterance_s`` however long its final takes,
and the speech events of the cut and its continuation pair up."""

from __future__ import annotations

import asyncio

import numpy as np
from test_session import FakeDecoder, fake_vad, feed, loud, quiet

from waiting import DEADLINE_S
from whisperd.engine.base import Transcript
from whisperd.streaming.session import (
    DecodeRequest,
    Event,
    Result,
    SpeechStarted,
    SpeechStopped,
    StreamConfig,
    StreamSession,
)


class SlowFirstFinal(FakeDecoder):
    """The first final waits until the test releases it."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.waiting = asyncio.Event()

    async def __call__(self, audio: np.ndarray, request: DecodeRequest) -> Transcript:
        if request.final and not self.waiting.is_set():
            self.waiting.set()
            await self.release.wait()
        return await super().__call__(audio, request)


def test_a_slow_cut_final_is_not_cut_again_and_speech_events_pair_up() -> None:
    events: list[Event] = []
    decoder = SlowFirstFinal()

    async def emit(event: Event) -> None:
        events.append(event)

    async def scenario() -> None:
        session = StreamSession(StreamConfig(max_utterance_s=5.0), decoder, fake_vad, emit)
        session.start()
        await feed(session, np.concatenate([quiet(0.5), loud(6)]))
        await asyncio.wait_for(decoder.waiting.wait(), DEADLINE_S)
        await feed(session, loud(4))  # the cut's final is still being decoded
        decoder.release.set()
        await feed(session, np.concatenate([loud(3), quiet(1)]))
        await asyncio.wait_for(session.wait_idle(), DEADLINE_S)
        await session.close()

    asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S))
    finals = [e for e in events if isinstance(e, Result) and e.is_final]
    assert [f.number for f in finals] == [1, 2, 3]  # 13 s of speech: cut at 5 s and at 10 s
    assert all(len(f.transcript.text.split()) >= 6 for f in finals)
    speech = [
        (type(e).__name__, e.number) for e in events if isinstance(e, SpeechStarted | SpeechStopped)
    ]
    expected = []
    for number in (1, 2, 3):
        expected += [("SpeechStarted", number), ("SpeechStopped", number)]
    assert speech == expected


def test_speech_after_a_forced_endpoint_starts_where_the_committed_turn_ends() -> None:
    """A client commit (``finalize``) in mid-speech ends the turn there; the speech that goes on
    is the next turn, and starts after it even while the first final is still decoding."""
    events: list[Event] = []
    decoder = SlowFirstFinal()

    async def emit(event: Event) -> None:
        events.append(event)

    async def scenario() -> None:
        session = StreamSession(StreamConfig(), decoder, fake_vad, emit)
        session.start()
        await feed(session, np.concatenate([quiet(0.5), loud(1.5)]))
        await session.finalize()
        await asyncio.wait_for(decoder.waiting.wait(), DEADLINE_S)
        await feed(session, np.concatenate([loud(1), quiet(1)]))
        decoder.release.set()
        await asyncio.wait_for(session.wait_idle(), DEADLINE_S)
        await session.close()

    asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S))
    stopped = next(e for e in events if isinstance(e, SpeechStopped) and e.number == 1)
    started = next(e for e in events if isinstance(e, SpeechStarted) and e.number == 2)
    assert started.audio_time >= stopped.audio_time
    finals = [e for e in events if isinstance(e, Result) and e.is_final]
    assert [f.number for f in finals] == [1, 2]


def test_without_vad_finalize_commits_once_with_no_speech_events() -> None:
    events: list[Event] = []
    decoder = SlowFirstFinal()

    async def emit(event: Event) -> None:
        events.append(event)

    async def scenario() -> None:
        session = StreamSession(StreamConfig(vad=False), decoder, fake_vad, emit)
        session.start()
        await feed(session, np.concatenate([quiet(0.5), loud(1.5)]))
        await session.finalize()
        await asyncio.wait_for(decoder.waiting.wait(), DEADLINE_S)
        end = asyncio.ensure_future(session.end_audio())  # nothing new since the finalize
        await asyncio.sleep(0)
        decoder.release.set()
        await asyncio.wait_for(end, DEADLINE_S)
        await session.close()

    asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S))
    assert not [e for e in events if isinstance(e, SpeechStarted | SpeechStopped)]
    finals = [e for e in events if isinstance(e, Result) and e.is_final]
    assert [f.number for f in finals] == [1]
    assert finals[0].transcript.text

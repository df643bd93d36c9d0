"""A stream whose finals fall behind its speech decodes the queued ones as one window, and each
utterance still gets its own final with only its own words."""

from __future__ import annotations

import asyncio

import numpy as np
from test_context import timed
from test_session import fake_vad, feed, quiet

from waiting import DEADLINE_S
from whisperd.engine.base import SAMPLE_RATE, Transcript
from whisperd.errors import TranscriptionError
from whisperd.streaming.session import (
    DecodeRequest,
    Event,
    Failed,
    Result,
    StreamConfig,
    StreamSession,
)


def burst(level: float, seconds: float = 2.0) -> np.ndarray:
    return np.full(int(SAMPLE_RATE * seconds), level, dtype=np.float32)


class LevelDecoder:
    """A word per 0.5 s of speech, named after the loudness under it (``a5`` for 0.5), so each
    word tells which utterance it came from; the first final waits until it is released."""

    def __init__(self, *, fail_after_first: bool = False) -> None:
        self.finals: list[float] = []
        self.release = asyncio.Event()
        self.first_waiting = asyncio.Event()
        self.fail_after_first = fail_after_first

    async def __call__(self, audio: np.ndarray, request: DecodeRequest) -> Transcript:
        if request.final:
            self.finals.append(len(audio) / SAMPLE_RATE)
            if len(self.finals) == 1:
                self.first_waiting.set()
                await self.release.wait()
            elif self.fail_after_first:
                raise TranscriptionError("Transcription failed: the model broke")
        step = SAMPLE_RATE // 2
        words = []
        for index in range(len(audio) // step):
            level = float(np.abs(audio[index * step : (index + 1) * step]).max())
            if level > 0.1:
                words.append((f"a{round(level * 10)}", index * 0.5, index * 0.5 + 0.4))
        return timed(words) if words else Transcript((), "en", 1.0, len(audio) / SAMPLE_RATE)


def _stream(config: StreamConfig, decoder: LevelDecoder) -> list[Event]:
    """Three utterances (loudness 0.3, 0.5, 0.7); the last two end while the first's final is
    still being decoded."""
    events: list[Event] = []

    async def emit(event: Event) -> None:
        events.append(event)

    async def scenario() -> None:
        session = StreamSession(config, decoder, fake_vad, emit)
        session.start()
        await feed(session, np.concatenate([quiet(0.5), burst(0.3), quiet(1)]))
        await asyncio.wait_for(decoder.first_waiting.wait(), DEADLINE_S)
        await feed(session, np.concatenate([burst(0.5), quiet(1), burst(0.7), quiet(1)]))
        decoder.release.set()
        await asyncio.wait_for(session.wait_idle(), DEADLINE_S)
        await session.close()

    asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S))
    return events


def _finals(events: list[Event]) -> list[Result]:
    return [e for e in events if isinstance(e, Result) and e.is_final]


def test_finals_queued_behind_one_are_decoded_together_each_with_its_own_words() -> None:
    decoder = LevelDecoder()
    finals = _finals(_stream(StreamConfig(word_timestamps=True), decoder))

    assert len(decoder.finals) == 2  # the first alone, then the two queued in one window
    assert decoder.finals[1] > 5.0  # both later utterances (and the first as context)
    assert [f.number for f in finals] == [1, 2, 3]
    assert [set(f.transcript.text.split()) for f in finals] == [{"a3"}, {"a5"}, {"a7"}]
    assert all(3 <= len(f.transcript.text.split()) <= 5 for f in finals)
    for final in finals[1:]:  # times relative to the decode's start, inside the decoded audio
        for segment in final.transcript.segments:
            assert 0 <= segment.start <= segment.end <= final.duration


def test_finals_are_decoded_one_by_one_when_merging_is_off() -> None:
    decoder = LevelDecoder()
    finals = _finals(_stream(StreamConfig(merge_queued_finals=False), decoder))

    assert len(decoder.finals) == 3
    assert [set(f.transcript.text.split()) for f in finals] == [{"a3"}, {"a5"}, {"a7"}]


def test_a_failed_merged_decode_is_reported_for_every_utterance_in_it() -> None:
    events = _stream(StreamConfig(), LevelDecoder(fail_after_first=True))

    assert [f.number for f in _finals(events)] == [1]
    failed = [e for e in events if isinstance(e, Failed)]
    assert [(f.number, f.code) for f in failed] == [
        (2, "transcription_failed"),
        (3, "transcription_failed"),
    ]

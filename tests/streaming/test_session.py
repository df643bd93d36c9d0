"""The stream state machine with a fake VAD and decoder: endpoints, partials, finals, flushes."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import numpy as np

from waiting import DEADLINE_S
from whisperd.engine.base import SAMPLE_RATE, Segment, Transcript
from whisperd.streaming.session import (
    DECODE_LEAD_S,
    DECODE_TRAIL_S,
    WINDOW,
    DecodeRequest,
    Event,
    Result,
    SpeechStarted,
    SpeechStopped,
    StreamConfig,
    StreamSession,
)
from whisperd.streaming.stabilizer import LocalAgreement, doubtful


def loud(seconds: float) -> np.ndarray:
    return np.full(int(SAMPLE_RATE * seconds), 0.5, dtype=np.float32)


def quiet(seconds: float) -> np.ndarray:
    return np.zeros(int(SAMPLE_RATE * seconds), dtype=np.float32)


async def fake_vad(audio: np.ndarray) -> np.ndarray:
    windows = audio.reshape(-1, WINDOW)
    return (np.abs(windows).mean(axis=1) > 0.1).astype(np.float32)


class FakeDecoder:
    """One word per 0.5 s of audio; two segments for audio over 20 s (to show cuts)."""

    def __init__(self) -> None:
        self.requests: list[tuple[float, DecodeRequest]] = []

    async def __call__(self, audio: np.ndarray, request: DecodeRequest) -> Transcript:
        seconds = len(audio) / SAMPLE_RATE
        self.requests.append((seconds, request))
        words = [f"w{i}" for i in range(int(seconds / 0.5))]
        if seconds > 20:
            half = len(words) // 2
            segments = (
                self._segment(0, 0.0, 10.0, words[:half]),
                self._segment(1, 10.0, seconds, words[half:]),
            )
        else:
            segments = (self._segment(0, 0.0, seconds, words),) if words else ()
        return Transcript(segments, "en", 1.0, seconds)

    @staticmethod
    def _segment(i: int, start: float, end: float, words: list[str]) -> Segment:
        return Segment(i, 0, start, end, "".join(" " + w for w in words), (), 0.0, -0.1, 1.0, 0.0)


async def feed(session: StreamSession, audio: np.ndarray) -> None:
    """Feed ``audio`` in 100 ms frames, letting the session's worker run between them."""
    for i in range(0, len(audio), 1600):
        await session.feed(audio[i : i + 1600])
        await asyncio.sleep(0)


async def _let_the_worker_run() -> None:
    """One turn of the event loop: the session's worker decodes all that is queued.

    The fake VAD and decoder never suspend, so the worker, woken before this yield, runs to its
    next wait for work within the turn; no clock is involved.
    """
    await asyncio.sleep(0)


def run(config: StreamConfig, script: list[Any]) -> tuple[list[Event], FakeDecoder]:
    events: list[Event] = []
    decoder = FakeDecoder()

    async def emit(event: Event) -> None:
        events.append(event)

    async def scenario() -> None:
        session = StreamSession(config, decoder, fake_vad, emit)
        session.start()
        for step in script:
            if isinstance(step, np.ndarray):
                for i in range(0, len(step), 1600):  # 100 ms frames
                    await session.feed(step[i : i + 1600])
                    await _let_the_worker_run()
            else:
                await getattr(session, step)()
                await _let_the_worker_run()
        await session.end_audio()
        await session.close()

    asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S))
    return events, decoder


def finals(events: list[Event]) -> list[Result]:
    return [e for e in events if isinstance(e, Result) and e.is_final]


def test_silence_is_never_decoded() -> None:
    events, decoder = run(StreamConfig(partials=True), [quiet(5)])
    assert events == []
    assert decoder.requests == []


def test_speech_then_silence_gives_one_final_of_the_utterance() -> None:
    events, decoder = run(
        StreamConfig(speech_pad_ms=30, min_silence_ms=300), [quiet(1), loud(2), quiet(1)]
    )
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["SpeechStarted", "SpeechStopped", "Result"]
    started, stopped, final = events
    assert isinstance(started, SpeechStarted)
    assert isinstance(stopped, SpeechStopped)
    assert abs(started.audio_time - 0.97) < 0.05
    assert abs(stopped.audio_time - 3.03) < 0.05
    assert isinstance(final, Result)
    assert final.is_final
    assert final.number == 1
    # decoding starts a little before the VAD onset, so a late-detected word is kept
    assert started.audio_time - DECODE_LEAD_S <= final.start < started.audio_time
    assert [r.final for _, r in decoder.requests] == [True]
    assert 2.06 <= decoder.requests[0][0] <= 2.06 + DECODE_LEAD_S + DECODE_TRAIL_S


def test_partials_come_at_the_cadence_and_stable_text_only_grows() -> None:
    config = StreamConfig(partials=True, partial_interval_s=0.5, stable_partials=True)
    events, decoder = run(config, [loud(4), quiet(1)])
    partials = [e for e in events if isinstance(e, Result) and not e.is_final]
    assert len(partials) >= 4
    stable = [p.stable for p in partials]
    for before, after in itertools.pairwise(stable):
        assert after.startswith(before)
    assert any(r.prefix for _, r in decoder.requests if not r.final)  # committed words forced
    assert len(finals(events)) == 1


def test_by_default_words_become_stable_with_the_final_decoded_unforced() -> None:
    events, decoder = run(StreamConfig(partials=True, partial_interval_s=0.5), [loud(4), quiet(1)])
    partials = [e for e in events if isinstance(e, Result) and not e.is_final]
    assert len(partials) >= 4
    assert all(p.stable == "" and p.unstable == p.transcript.text for p in partials)
    assert all(r.prefix is None for _, r in decoder.requests)
    (final,) = finals(events)
    assert final.stable == final.transcript.text != ""


def test_finalize_forces_an_endpoint() -> None:
    events, _ = run(StreamConfig(), [loud(1.5), "finalize", loud(1), quiet(1)])
    assert [f.number for f in finals(events)] == [1, 2]


def test_end_audio_flushes_open_speech_once() -> None:
    events, _ = run(StreamConfig(), [loud(2)])
    (final,) = finals(events)
    assert final.end_of_audio


def test_long_speech_is_cut_at_a_segment_boundary() -> None:
    events, _decoder = run(StreamConfig(max_utterance_s=25), [loud(60), quiet(1)])
    results = finals(events)
    assert len(results) >= 3
    spans = [(r.start, r.start + r.duration) for r in results]
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert abs(end - start) < 0.05  # contiguous: nothing lost, nothing twice
    assert 60.06 <= spans[-1][1] - spans[0][0] <= 60.06 + DECODE_LEAD_S + DECODE_TRAIL_S


def test_manual_commit_without_vad() -> None:
    events, _decoder = run(StreamConfig(vad=False), [quiet(1), loud(1), "commit", loud(0.5)])
    results = finals(events)
    assert [round(r.duration, 1) for r in results] == [2.0, 0.5]
    assert results[-1].end_of_audio


def test_local_agreement_commits_what_two_decodes_agree_on() -> None:
    agreement = LocalAgreement()
    assert agreement.update(["the", "cat", "sat"]) == ("", "the cat sat")
    # The newest decode's last four words are held back: they may still change.
    assert agreement.update(["the", "cat", "sat", "on", "the", "mat"]) == (
        "the cat",
        "sat on the mat",
    )
    assert agreement.prefix == "the cat"
    assert agreement.update(["the", "cat", "sits", "down", "on", "it"]) == (
        "the cat",
        "sits down on it",
    )
    assert agreement.update(["a", "dog"]) == ("the cat", "")  # ignored prefix: nothing retracted
    agreement.reset()
    assert agreement.prefix == ""


def test_a_doubtful_decode_commits_nothing_and_is_not_agreed_with() -> None:
    agreement = LocalAgreement()
    agreement.update(["thank", "you", "for", "watching"], trusted=False)
    assert agreement.update(["thank", "you", "for", "watching"]) == ("", "thank you for watching")
    words = ["thank", "you", "for", "watching", "and", "bye", "now"]
    assert agreement.update(words) == ("thank you for", "watching and bye now")


def test_no_more_words_are_committed_than_the_audio_can_hold() -> None:
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight"]
    agreement = LocalAgreement()
    agreement.update(words, heard_s=1.0)
    stable, _ = agreement.update(words, heard_s=1.0)
    assert stable == "one two three four"  # 4 words per second; the last 4 held back anyway


def test_doubtful_is_whispers_own_quality_check() -> None:
    def transcript(**values: float) -> Transcript:
        fields = {"avg_logprob": -0.3, "compression_ratio": 1.5, "no_speech_prob": 0.1} | values
        segment = Segment(0, 0, 0.0, 1.0, " hi", (), 0.0, **fields)
        return Transcript((segment,), "en", 1.0, 1.0)

    assert not doubtful(transcript())
    assert doubtful(transcript(avg_logprob=-1.2))
    assert doubtful(transcript(compression_ratio=2.6))
    assert doubtful(transcript(no_speech_prob=0.8))


def test_a_final_knows_its_trailing_silence_only_where_the_vad_heard_the_speech_stop() -> None:
    config = StreamConfig(speech_pad_ms=30, min_silence_ms=300, context_s=0)
    script = [loud(2), quiet(1), loud(1.5), "finalize", loud(1), quiet(1), loud(1)]
    _events, decoder = run(config, script)
    silences = [request.silent_tail_s for _, request in decoder.requests if request.final]
    # heard stop, forced, heard stop, flushed at the end of the audio
    assert len(silences) == 4
    assert abs(silences[0] - DECODE_TRAIL_S) < 0.04
    assert abs(silences[2] - DECODE_TRAIL_S) < 0.04
    assert silences[1] == silences[3] == 0

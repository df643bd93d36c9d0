"""On the real tiny.en: utterances whose finals queue up are decoded in one window, and each
final still carries its own sentence (the split follows Whisper's word timings)."""

from __future__ import annotations

import asyncio

import pytest

from model_calls import encodes
from whisperd.audio.decode import AudioSource
from whisperd.engine.options import TranscribeOptions
from whisperd.service import TranscriptionRequest, TranscriptionService
from whisperd.streaming.session import Event, Result, StreamConfig
from whisperd.testing.speech import SpokenText, conversation, espeak_available, word_error_rate

pytestmark = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")

SENTENCES = (
    "Please close the window before you go to bed.",
    "She bought a red bicycle from the shop on the corner.",
    "We will meet again next week to finish the report.",
)


async def _all_at_once(service: TranscriptionService, spoken: SpokenText) -> list[Result]:
    """The stream's finals when its whole audio arrives before any final is decoded."""
    finals: list[Result] = []

    async def emit(event: Event) -> None:
        if isinstance(event, Result) and event.is_final:
            finals.append(event)

    session = await service.stream_session(StreamConfig(language="en"), emit)
    session.start()
    await session.feed(spoken.samples)  # every utterance ends before the worker runs
    await session.end_audio()
    await session.close()
    return finals


def test_queued_finals_decoded_in_one_window_each_keep_their_own_sentence(
    real_service: TranscriptionService,
) -> None:
    spoken = conversation(SENTENCES, voices=("en-us", "en-gb"), words_per_minute=(160,))
    batch = asyncio.run(
        real_service.transcribe(
            TranscriptionRequest(AudioSource(spoken.wav_bytes()), TranscribeOptions())
        )
    )
    before = encodes(real_service)

    finals = asyncio.run(_all_at_once(real_service, spoken))

    assert encodes(real_service) - before <= 2  # one window (two if Whisper seeks on), not 3
    assert [final.number for final in finals] == [1, 2, 3]
    for sentence, final in zip(SENTENCES, finals, strict=True):
        assert word_error_rate(sentence, final.transcript.text) <= 0.3, final.transcript.text
    joined = " ".join(final.transcript.text for final in finals)
    assert word_error_rate(spoken.text, joined) <= word_error_rate(spoken.text, batch.text) + 0.05

"""A stream partial on real speech: one window that holds the newest words."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from whisperd.audio.decode import AudioSource
from whisperd.engine.base import SAMPLE_RATE
from whisperd.service import TranscriptionRequest, TranscriptionService
from whisperd.service.streams import utterance_options
from whisperd.streaming.session import DecodeRequest, StreamConfig
from whisperd.testing.speech import espeak_available, speak, wav_file

FIRST = "Can you tell me the way to the nearest station?"
SECOND = "The train was crowded with people going to work."


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
@pytest.mark.parametrize("heard_of_second_s", [0.8, 1.3, 1.8])
def test_a_partial_shows_the_words_after_a_sentence_end_in_one_window(
    real_service: TranscriptionService, heard_of_second_s: float
) -> None:
    # Decoded with timestamps, tiny.en ended the window at the first sentence's end and the
    # second sentence's first words came from a window of their own, encoded whole (a second
    # as long again) and often garbled ("That's me and one.").
    pause = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
    second = speak(SECOND).samples[: round(heard_of_second_s * SAMPLE_RATE)]
    audio = np.concatenate([speak(FIRST).samples, pause, second])
    options = utterance_options(
        StreamConfig(),
        DecodeRequest(final=False, prefix=None),
        hotwords=None,
        final_context="audio",
        audio_s=len(audio) / SAMPLE_RATE,
    )
    request = TranscriptionRequest(AudioSource(wav_file(audio)), options)

    transcript = asyncio.run(real_service.transcribe(request))

    [segment] = transcript.segments
    assert 0 <= segment.start < segment.end <= len(audio) / SAMPLE_RATE
    words = segment.text.lower().split()
    assert "station" in " ".join(words), segment.text
    assert "train" in " ".join(words), segment.text

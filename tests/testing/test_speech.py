"""Speech with known text and WER: the tools every accuracy test stands on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from whisperd.audio.decode import AudioSource
from whisperd.config import Settings
from whisperd.engine.base import SAMPLE_RATE
from whisperd.engine.options import TranscribeOptions
from whisperd.service import TranscriptionRequest, TranscriptionService
from whisperd.testing.speech import SENTENCES, conversation, word_error_rate


def test_word_error_rate_counts_substitutions_deletions_and_insertions() -> None:
    assert word_error_rate("the cat sat", "The cat, sat!") == 0.0
    assert word_error_rate("the cat sat", "the dog sat") == pytest.approx(1 / 3)
    assert word_error_rate("the cat sat", "the cat") == pytest.approx(1 / 3)
    assert word_error_rate("the cat sat", "the cat sat down") == pytest.approx(1 / 3)
    assert word_error_rate("the cat sat", "") == 1.0


def test_a_conversation_has_its_pauses_and_spans() -> None:
    spoken = conversation(SENTENCES[:2], pause_s=0.5)
    first, second = spoken.spans
    assert second[0] - first[1] == pytest.approx(0.5, abs=1 / SAMPLE_RATE)
    assert spoken.duration == pytest.approx(second[1] + 0.5, abs=0.01)
    assert spoken.text == f"{SENTENCES[0]} {SENTENCES[1]}"


def test_the_real_model_hears_the_spoken_sentences(real_model: Path) -> None:
    spoken = conversation(SENTENCES[:4], voices=("en-us", "en-gb"))
    settings = Settings(
        _env_file=None, model=str(real_model), device="cpu", compute_type="int8", offline=True
    )
    service = TranscriptionService.create(settings)
    request = TranscriptionRequest(AudioSource(spoken.wav_bytes()), TranscribeOptions())
    try:
        transcript = asyncio.run(service.transcribe(request))
    finally:
        service.close()
    assert transcript.language == "en"
    assert word_error_rate(spoken.text, transcript.text) <= 0.15, transcript.text

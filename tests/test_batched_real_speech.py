"""The default decoding of long audio (batched VAD chunks) on real speech with the real tiny.en:
as accurate as sequential decoding in the same run, with sentence segments timed by alignment."""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING, Any

import pytest

from whisperd.audio.decode import AudioSource
from whisperd.config import Settings
from whisperd.engine.base import Transcript
from whisperd.engine.options import TranscribeOptions
from whisperd.service import TranscriptionRequest, TranscriptionService
from whisperd.testing.speech import (
    SENTENCES,
    SpokenText,
    conversation,
    espeak_available,
    word_error_rate,
)

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")


@pytest.fixture(scope="module")
def service(real_service: TranscriptionService) -> TranscriptionService:
    return real_service


@pytest.fixture(scope="module")
def talk() -> SpokenText:
    """About 75 s: every sentence once, two voices, pauses long enough for VAD to cut at."""
    return conversation(SENTENCES, pause_s=0.8, voices=("en-us", "en-gb"), words_per_minute=(165,))


TURNS = ((14,), (10, 11), (12, 13), (1, 2), (11,), (17, 18), (8,), (1, 2, 3))
"""Sentences (indices into SENTENCES) of each turn of :func:`back_to_back`."""


@pytest.fixture(scope="module")
def back_to_back() -> SpokenText:
    """About 41 s of two voices taking turns 0.4 s apart: VAD cuts it into two chunks, and
    tiny.en decoding the second without timestamp tokens stops after 10 of its 39 words."""
    return conversation(
        [" ".join(SENTENCES[index] for index in turn) for turn in TURNS],
        pause_s=0.4,
        voices=("en-gb-scotland+m5", "en-029+f5"),
        words_per_minute=(160, 170),
    )


def transcribe(service: TranscriptionService, talk: SpokenText, **options: Any) -> Transcript:
    request = TranscriptionRequest(
        AudioSource(talk.wav_bytes()), TranscribeOptions(temperature=0.0, **options)
    )
    return asyncio.run(service.transcribe(request))


def test_the_default_is_batched_and_as_accurate_as_sequential_decoding(
    service: TranscriptionService, talk: SpokenText
) -> None:
    assert TranscribeOptions().chunk_batch_size() > 1
    batched = transcribe(service, talk)
    sequential = transcribe(service, talk, batch_size=1)

    batched_wer = word_error_rate(talk.text, batched.text)
    sequential_wer = word_error_rate(talk.text, sequential.text)
    assert batched_wer <= sequential_wer + 0.03, (batched.text, sequential.text)
    assert batched_wer <= 0.15, batched.text
    assert batched.duration_after_vad is not None
    assert batched.duration_after_vad < talk.duration


@pytest.mark.parametrize("segment_timestamps", [True, False])
def test_a_chunk_whose_decode_stops_early_is_decoded_to_its_end(
    service: TranscriptionService, back_to_back: SpokenText, segment_timestamps: bool
) -> None:
    batched = transcribe(service, back_to_back, segment_timestamps=segment_timestamps)
    sequential = transcribe(service, back_to_back, batch_size=1)

    batched_wer = word_error_rate(back_to_back.text, batched.text)
    sequential_wer = word_error_rate(back_to_back.text, sequential.text)
    assert batched_wer <= sequential_wer + 0.03, (batched.text, sequential.text)
    assert batched.segments[-1].end >= back_to_back.spans[-1][1] - 1.0, batched.segments[-1]


def test_segments_are_sentences_timed_within_their_speech(
    service: TranscriptionService, talk: SpokenText
) -> None:
    transcript = transcribe(service, talk)

    segments = transcript.segments
    assert abs(len(segments) - len(talk.spans)) <= 2, [s.text for s in segments]
    for segment in segments:
        assert segment.text.strip()[-1] in ".?!", segment.text
        # It begins near a sentence's start and ends near a sentence's end (the model may
        # join two sentences with a comma).
        assert min(abs(segment.start - start) for start, _ in talk.spans) <= 0.6, segment
        assert min(abs(segment.end - end) for _, end in talk.spans) <= 0.6, segment
    assert all(a.end <= b.start + 0.01 for a, b in itertools.pairwise(segments))


def test_without_segment_times_each_vad_chunk_is_one_segment_of_the_same_words(
    service: TranscriptionService, talk: SpokenText
) -> None:
    timed = transcribe(service, talk)
    untimed = transcribe(service, talk, segment_timestamps=False)

    assert 1 < len(untimed.segments) <= talk.duration // 20 + 1
    assert untimed.text.split() == timed.text.split()
    assert untimed.segments[0].words is None


def test_word_timestamps_lie_within_their_segments(
    service: TranscriptionService, talk: SpokenText
) -> None:
    transcript = transcribe(service, talk, word_timestamps=True)

    for segment in transcript.segments:
        assert segment.words
        assert segment.start == segment.words[0].start
        assert segment.end == segment.words[-1].end
        assert "".join(w.word for w in segment.words).split() == segment.text.split()


def test_batches_decoded_side_by_side_give_the_same_transcript(
    real_model: Path, talk: SpokenText
) -> None:
    """Two workers decode two batches of chunks at once; the words, segments and their times
    are those of one batch at a time."""
    transcripts = []
    for workers in (1, 2):
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            model=str(real_model),
            device="cpu",
            compute_type="int8",
            offline=True,
            num_workers=workers,
            cpu_threads=1,
        )
        service = TranscriptionService.create(settings)
        try:
            transcripts.append(transcribe(service, talk, word_timestamps=True))
        finally:
            service.close()
    one, two = transcripts
    assert len(one.segments) > 2
    assert two.text == one.text
    assert [(s.start, s.end) for s in two.segments] == [(s.start, s.end) for s in one.segments]
    assert [(w.start, w.end) for w in two.words] == [(w.start, w.end) for w in one.words]

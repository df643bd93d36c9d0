"""A short leftover at the end of the audio is not decoded as a window of its own."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from model_calls import encodes
from whisperd.audio.decode import AudioSource
from whisperd.engine.options import TranscribeOptions
from whisperd.engine.tail_windows import ShortTailSkipped, SkipShortTail, until_short_tail
from whisperd.service import TranscriptionRequest, TranscriptionService
from whisperd.testing.speech import conversation, espeak_available, wav_file, word_error_rate


class _Model:
    """Records the windows it encodes (their frames of audio) and counts its decodes."""

    def __init__(self) -> None:
        self.encoded: list[int] = []
        self.decodes = 0

    def encode(self, features: Any, to_cpu: bool = False) -> str:
        del to_cpu
        self.encoded.append(int(np.count_nonzero(np.any(features != 0, axis=(0, 1)))))
        return "encoded"

    def generate(self, *args: Any, **kwargs: Any) -> str:
        self.decodes += 1
        return "decoded"


def _window(audio_frames: int) -> np.ndarray[Any, Any]:
    """A ``[1, 80, 3000]`` log-mel window: ``audio_frames`` frames of audio, then zeros."""
    mel = np.zeros((1, 80, 3000), dtype=np.float32)
    mel[..., :audio_frames] = -0.5
    return mel


def test_a_short_window_after_a_decode_is_skipped_and_a_long_one_encoded() -> None:
    model = _Model()
    guard = SkipShortTail(model, min_frames=100)

    guard.encode(_window(40))  # before any decode (language detection, the first window)
    guard.generate("encoded", [[1]])
    guard.encode(_window(100))  # a leftover of the minimum is decoded
    with pytest.raises(ShortTailSkipped):
        guard.encode(_window(99))

    assert model.encoded == [40, 100]
    assert model.decodes == 1


def test_segments_end_at_a_skipped_tail() -> None:
    def segments() -> Any:
        yield "first"
        yield "second"
        raise ShortTailSkipped

    assert list(until_short_tail(segments())) == ["first", "second"]


SENTENCES = (
    "Please close the window before you go to bed.",
    "She bought a red bicycle from the shop on the corner.",
    "We will meet again next week to finish the report.",
)


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
@pytest.mark.parametrize(("min_tail_s", "windows"), [(0.0, 2), (0.5, 2), (2.0, 1)])
def test_the_leftover_after_the_last_word_is_decoded_only_when_long_enough(
    real_service: TranscriptionService, min_tail_s: float, windows: int
) -> None:
    spoken = conversation(SENTENCES, voices=("en-us",), words_per_minute=(160,))
    audio = wav_file(np.concatenate([spoken.samples, np.zeros(4800, dtype=np.float32)]))
    # With a prompt, as a stream's finals have, Whisper's last timestamp closes the text,
    # and faster-whisper decodes the second or so after the last word as a window of its own.
    options = TranscribeOptions(
        word_timestamps=True,
        vad_filter=False,
        initial_prompt="The weather was cold that morning.",
        min_tail_window_s=min_tail_s,
    )
    before = encodes(real_service)

    result = asyncio.run(real_service.transcribe(TranscriptionRequest(AudioSource(audio), options)))

    assert encodes(real_service) - before == windows
    assert word_error_rate(spoken.text, result.text) <= 0.1, result.text

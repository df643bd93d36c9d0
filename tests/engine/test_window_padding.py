"""A trimmed window's encoding is completed to a whole window with the padding's own encoding."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pytest

from whisperd.audio.decode import AudioSource
from whisperd.engine.ct2_batch import ModelCalls
from whisperd.engine.options import TranscribeOptions
from whisperd.engine.window_padding import (
    PaddingEncoding,
    completed,
    trim_padding,
    window_to_encode,
)
from whisperd.scheduler.batcher import Call, Ticket
from whisperd.service import TranscriptionRequest, TranscriptionService
from whisperd.testing.speech import espeak_available, speak, wav_file, word_error_rate

D_MODEL = 4


class _Encoder:
    """A CTranslate2 stand-in whose output at each position is its window's mean log-mel
    (so padding alone encodes to zeros) plus the position's number; it records its inputs."""

    n_mels = 80

    def __init__(self) -> None:
        self.frames: list[int] = []

    def encode(self, features: Any, to_cpu: bool = False) -> np.ndarray[Any, Any]:
        del to_cpu
        mel = np.asarray(features)
        self.frames.append(mel.shape[-1])
        positions = np.arange(mel.shape[-1] // 2, dtype=np.float32)
        level = mel.mean(axis=(1, 2))[:, None, None]
        shape = (len(mel), len(positions), D_MODEL)
        return np.broadcast_to(level + positions[None, :, None], shape)


def _window(audio_frames: int, level: float) -> np.ndarray[Any, Any]:
    mel = np.zeros((1, 80, 3000), dtype=np.float32)
    mel[..., :audio_frames] = level
    return mel


def _encode(calls: ModelCalls, *windows: np.ndarray[Any, Any]) -> list[np.ndarray[Any, Any]]:
    batch = [Call("encode", 0, window, items=1, ticket=Ticket()) for window in windows]
    return [np.asarray(result) for result in calls("encode", batch)]


def test_a_trimmed_window_gets_the_padding_encoding_after_its_own_positions() -> None:
    encoder = _Encoder()
    calls = ModelCalls(encoder)  # type: ignore[arg-type]
    first, second = (trim_padding(_window(420, level)) for level in (-0.5, -0.25))

    outputs = _encode(calls, first, second)

    assert [output.shape for output in outputs] == [(1, 1500, D_MODEL)] * 2
    # the audio's own 250 positions (420 frames, to whole seconds), then the padding's
    own = np.arange(250, dtype=np.float32)
    assert np.allclose(outputs[0][0, :250, 0], own - 0.5 * 420 / 500)
    assert np.allclose(outputs[1][0, :250, 0], own - 0.25 * 420 / 500)
    padding = np.arange(250, 1500, dtype=np.float32)
    assert all(np.array_equal(output[0, 250:, 0], padding) for output in outputs)
    assert encoder.frames == [500, 3000]  # the two windows in one call, then the padding


def test_the_padding_is_encoded_once_and_a_whole_window_is_left_as_it_is() -> None:
    encoder = _Encoder()
    calls = ModelCalls(encoder)  # type: ignore[arg-type]

    _encode(calls, trim_padding(_window(100, -0.5)))
    _encode(calls, trim_padding(_window(1901, -0.5)))
    (whole,) = _encode(calls, _window(2999, -0.5))

    assert encoder.frames == [100, 3000, 2000, 3000]
    assert whole.shape == (1, 1500, D_MODEL)
    assert whole[0, -1, 0] == pytest.approx(1499 - 0.5 * 2999 / 3000)


def test_threads_asking_at_once_share_one_padding_encoding() -> None:
    made: list[int] = []
    started = threading.Barrier(4)

    def encode_padding() -> np.ndarray[Any, Any]:
        made.append(1)
        return np.zeros((1, 1500, D_MODEL), dtype=np.float32)

    padding = PaddingEncoding(encode_padding)
    results: list[np.ndarray[Any, Any]] = []

    def ask() -> None:
        started.wait()
        results.append(padding.get())

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert made == [1]
    assert len(results) == 4
    assert all(result is results[0] for result in results)


def test_completion_keeps_the_batch_and_the_model_width() -> None:
    padding = np.arange(1500 * 3, dtype=np.float32).reshape(1, 1500, 3)
    encoded = np.full((2, 100, 3), -1.0, dtype=np.float32)

    out = completed(encoded, padding)

    assert out.shape == (2, 1500, 3)
    assert np.array_equal(out[:, :100], encoded)
    assert np.array_equal(out[1, 100:], padding[0, 100:])
    assert completed(padding, padding) is padding


def test_a_short_leftover_after_a_decode_is_encoded_whole() -> None:
    leftover, longer = _window(199, -0.5), _window(200, -0.5)

    assert window_to_encode(leftover, after_decode=False).shape[-1] == 200
    assert window_to_encode(leftover, after_decode=True).shape[-1] == 3000
    assert window_to_encode(longer, after_decode=True).shape[-1] == 200


SENTENCES = (
    "What time does the next train leave for the city?",
    "We should buy some fresh bread for breakfast.",
)


def _heard(service: TranscriptionService, sentence: str) -> str:
    """``sentence`` spoken with 0.3 s of silence either side, encoded at its own length after
    a prompt with beam 5 and word timings, as a stream's final (no text of its own as the
    prompt of the leftover after its last word, which is decoded too)."""
    silence = np.zeros(4800, dtype=np.float32)
    audio = wav_file(np.concatenate([silence, speak(sentence).samples, silence]))
    options = TranscribeOptions(
        vad_filter=False,
        condition_on_previous_text=False,
        encoder_context="audio",
        initial_prompt="The weather was cold that morning. They walked along the beach.",
        beam_size=5,
        word_timestamps=True,
    )
    result = asyncio.run(service.transcribe(TranscriptionRequest(AudioSource(audio), options)))
    return result.text


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
@pytest.mark.parametrize("sentence", SENTENCES)
def test_real_speech_encoded_at_its_own_length_is_not_heard_twice(
    real_service: TranscriptionService, sentence: str
) -> None:
    # Given only its own positions, tiny.en heard each of these sentences twice or more.
    text = _heard(real_service, sentence)

    assert len(text.split()) <= len(sentence.split()), text
    assert word_error_rate(sentence, text) <= 0.5, text

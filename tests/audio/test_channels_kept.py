"""``AudioSource.keep_channels``: a container's channels decoded apart, beside the mono mix."""

from __future__ import annotations

import io
import wave

import numpy as np

from whisperd.audio.decode import AudioSource, decode_audio
from whisperd.engine.base import SAMPLE_RATE


def wav(frames: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(frames.shape[1])
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(np.round(frames * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def test_stereo_channels_are_kept_apart_and_mixed() -> None:
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    left, right = 0.5 * np.sin(2 * np.pi * 220 * t), np.zeros(SAMPLE_RATE)
    right[SAMPLE_RATE // 2 :] = 0.25
    data = wav(np.stack([left, right], axis=1))
    decoded = decode_audio(AudioSource(data, keep_channels=True))
    assert len(decoded.channels) == 2
    assert np.allclose(decoded.channels[0], left, atol=1e-3)
    assert np.allclose(decoded.channels[1], right, atol=1e-3)
    assert np.allclose(decoded.samples, (left + right) / 2, atol=1e-3)
    assert decode_audio(AudioSource(data)).channels == ()


def test_mono_keeps_no_channels() -> None:
    mono = wav(np.full((SAMPLE_RATE, 1), 0.1))
    assert decode_audio(AudioSource(mono, keep_channels=True)).channels == ()

"""The speaker encoder's front end: a 40-band mel power spectrogram, in numpy.

Resemblyzer computes it with ``librosa.feature.melspectrogram(sr=16000, n_fft=400,
hop_length=160, n_mels=40)``: a periodic Hann window of 25 ms every 10 ms, frames centred
(the signal zero-padded by half a window on each side), the power spectrum, and Slaney-style
mel filters (Slaney's mel scale, each filter normalised to unit area). This module computes
the same numbers without librosa, whose import and numba compilation cost seconds at start-up
(about 40 s on a cold cache), for a function of thirty lines.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from whisperd.engine.base import SAMPLE_RATE

__all__ = ["HOP", "N_FFT", "N_MELS", "mel_filters", "mel_spectrogram"]

N_FFT = 400
"""Window length in samples (25 ms at 16 kHz)."""
HOP = 160
"""Hop between frames in samples (10 ms at 16 kHz)."""
N_MELS = 40
"""Mel bands."""

_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = np.log(6.4) / 27.0


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    linear = hz / _F_SP
    log = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP
    return np.where(hz >= _MIN_LOG_HZ, log, linear)


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    linear = mel * _F_SP
    log = _MIN_LOG_HZ * np.exp(_LOG_STEP * (mel - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, log, linear)


def mel_filters() -> npt.NDArray[np.float64]:
    """The ``(N_MELS, N_FFT // 2 + 1)`` filter bank (librosa's ``filters.mel`` defaults)."""
    fft_hz = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges_mel = np.linspace(0.0, float(_hz_to_mel(np.array(SAMPLE_RATE / 2.0))), N_MELS + 2)
    edges = _mel_to_hz(edges_mel)
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


def mel_spectrogram(
    samples: npt.NDArray[np.float32], filters: npt.NDArray[np.float64]
) -> npt.NDArray[np.float32]:
    """The mel power spectrogram of 16 kHz samples, ``(frames, N_MELS)`` float32.

    ``frames`` is ``1 + len(samples) // HOP`` (centred frames); ``filters`` comes from
    :func:`mel_filters` (built once per encoder).
    """
    padded = np.pad(samples.astype(np.float64), N_FFT // 2)
    count = 1 + (len(padded) - N_FFT) // HOP
    index = np.arange(N_FFT)[None, :] + HOP * np.arange(count)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    power = np.abs(np.fft.rfft(padded[index] * window, axis=1)) ** 2
    return (power @ filters.T).astype(np.float32)

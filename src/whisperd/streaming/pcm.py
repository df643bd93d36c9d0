"""Incoming stream audio: PCM frames of any size and rate to 16 kHz mono float32.

G.711 (ITU-T Recommendation G.711, 1988) bytes are expanded through a 256-entry table per law:
mu-law (North America, Japan) and A-law (elsewhere; OpenAI Realtime ``audio/pcma``).

Float frames (``pcm_f32le``) follow the rule of every other input (:mod:`whisperd.audio.finite`):
a NaN or infinite sample is a dropout and becomes 0 before resampling, which would spread it.
A stream cannot be refused after the fact like a file, so they are counted
(:attr:`PcmDecoder.zeroed`) and logged once per stream instead. Finite samples are clipped to
[-1, 1], as a player would.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import soxr

from whisperd.audio.finite import zero_nonfinite
from whisperd.engine.base import SAMPLE_RATE

logger = logging.getLogger(__name__)

Encoding = Literal["pcm_s16le", "pcm_mulaw", "pcm_f32le"]
"""The encodings a Baseten stream's metadata can name."""
DecoderEncoding = Encoding | Literal["pcm_alaw"]
"""Every encoding :class:`PcmDecoder` decodes (A-law serves OpenAI Realtime ``audio/pcma``)."""
_WIDTH = {"pcm_s16le": 2, "pcm_mulaw": 1, "pcm_alaw": 1, "pcm_f32le": 4}


def _mulaw_table() -> np.ndarray[Any, Any]:
    """G.711 mu-law byte -> linear sample in [-1, 1]."""
    codes = ~np.arange(256, dtype=np.uint8)
    sign = (codes & 0x80) != 0
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = ((mantissa.astype(np.int32) << 3) + 0x84) << exponent
    linear = np.where(sign, 0x84 - magnitude, magnitude - 0x84)
    return (linear / 32768.0).astype(np.float32)


def _alaw_table() -> np.ndarray[Any, Any]:
    """G.711 A-law byte -> linear sample in [-1, 1].

    G.711 inverts every even bit on the line (XOR 0x55); then bit 7 is the sign (set: positive),
    bits 6-4 the segment and bits 3-0 the mantissa. In 16-bit units the magnitude is
    ``(mantissa << 4) + 8`` in segment 0 and ``((mantissa << 4) + 0x108) << (segment - 1)``
    above it (the middle of each quantization step), so the largest is 32256.
    """
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    mantissa = (codes & 0x0F) << 4
    segment = (codes >> 4) & 0x07
    magnitude = np.where(
        segment == 0, mantissa + 8, (mantissa + 0x108) << np.maximum(segment - 1, 0)
    )
    linear = np.where((codes & 0x80) != 0, magnitude, -magnitude)
    return (linear / 32768.0).astype(np.float32)


_G711_TABLES = {"pcm_mulaw": _mulaw_table, "pcm_alaw": _alaw_table}


class PcmDecoder:
    """Turns a stream's binary frames into 16 kHz float32 (split samples and filter state kept)."""

    def __init__(self, encoding: DecoderEncoding, sample_rate: int) -> None:
        """Decode ``encoding`` at ``sample_rate`` Hz (resampled to 16 kHz when different)."""
        self.encoding = encoding
        self.zeroed = 0
        """NaN or infinite float samples replaced with 0 so far."""
        self._width = _WIDTH[encoding]
        self._carry = b""
        table = _G711_TABLES.get(encoding)
        self._g711 = table() if table is not None else None
        self._resampler = (
            None
            if sample_rate == SAMPLE_RATE
            else soxr.ResampleStream(sample_rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        )

    def decode(self, frame: bytes, *, last: bool = False) -> np.ndarray[Any, Any]:
        """Samples of ``frame`` (and of any partial sample left from the previous frame)."""
        data = self._carry + frame
        usable = len(data) // self._width * self._width
        self._carry = data[usable:]
        samples = self._samples(data[:usable])
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples, last=last)
        return np.asarray(samples, dtype=np.float32)

    def _samples(self, data: bytes) -> np.ndarray[Any, Any]:
        if self.encoding == "pcm_s16le":
            return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
        if self.encoding == "pcm_f32le":
            values = np.frombuffer(data, dtype="<f4").astype(np.float32)
            values, zeroed = zero_nonfinite(values, in_place=True)
            if zeroed:
                self._count_zeroed(zeroed)
            return np.clip(values, -1.0, 1.0)
        assert self._g711 is not None
        return self._g711[np.frombuffer(data, dtype=np.uint8)]

    def _count_zeroed(self, zeroed: int) -> None:
        if self.zeroed == 0:
            logger.warning("stream audio holds NaN or infinite samples; they are zeroed")
        self.zeroed += zeroed

"""Decoded audio: what every reader returns, checked on the way out, and how failures read."""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt

from whisperd.audio.finite import zero_nonfinite
from whisperd.engine.base import SAMPLE_RATE
from whisperd.errors import EmptyAudioError

__all__ = ["SILENCE_PEAK", "DecodedAudio", "Samples", "failure_reason", "finish"]

Samples = npt.NDArray[np.float32]

SILENCE_PEAK = 1e-4
"""Peak absolute sample value below which audio counts as digital silence (-80 dBFS)."""


@dataclass(frozen=True, slots=True)
class DecodedAudio:
    """Decoded audio, ready for an engine.

    Attributes:
        samples: 1-D float32 samples, 16 kHz mono.
        container: What the input was: a container name (``"mp3"``, ``"wav"``, ``"webm"``,
            ``"mp4"`` ...), or ``"numpy"``, ``"tensor"`` or ``"pcm"``.
        bad_packets: Packets that failed to decode and were skipped (within the budget).
        channels: Each channel's 16 kHz samples, when the source asked to keep them
            (:attr:`AudioSource.keep_channels`) and a container has more than one; else empty.
    """

    samples: Samples
    container: str
    bad_packets: int = 0
    channels: tuple[Samples, ...] = ()

    @property
    def duration(self) -> float:
        """Duration in seconds."""
        return len(self.samples) / SAMPLE_RATE

    @property
    def is_silent(self) -> bool:
        """Whether the audio is digital silence: no sample reaches :data:`SILENCE_PEAK`.

        Silence is valid audio that transcribes to no text (OpenAI answers it with empty
        text, and its clients treat any error as a failed recording), so it is not an error.
        """
        if self.samples.size == 0:
            return True
        return max(float(self.samples.max()), -float(self.samples.min())) < SILENCE_PEAK


def finish(
    samples: Samples,
    container: str,
    bad_packets: int = 0,
    channels: tuple[Samples, ...] = (),
) -> DecodedAudio:
    """Reject empty audio and wrap the result (C-contiguous, writeable and finite).

    The readers zero non-finite input samples before mixing and resampling; a mix or resampler
    that overflows float32 on huge (but finite) input could still make one, so the output is
    made finite here too: a NaN never reaches a model or a response.
    """
    if samples.size == 0:
        raise EmptyAudioError(
            "No audio samples could be decoded from the input; it holds no audio."
        )
    if not samples.flags.writeable or not samples.flags.c_contiguous:
        samples = np.array(samples, dtype=np.float32, order="C")
    zero_nonfinite(samples, in_place=True)
    for channel in channels:
        zero_nonfinite(channel, in_place=True)
    return DecodedAudio(samples, container, bad_packets, channels)


def failure_reason(exc: BaseException) -> str:
    """A short, single-line reason from a library exception (FFmpeg's text, no errno)."""
    strerror = exc.strerror if isinstance(exc, OSError | av.error.FFmpegError) else None
    text = (strerror or str(exc)).strip().rstrip(".") or type(exc).__name__
    return " ".join(text.split())[:300]

"""Caps on untrusted audio input, and the checks that apply them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from whisperd.engine.base import SAMPLE_RATE
from whisperd.errors import AudioTooLongError, AudioTooShortError, UnsupportedAudioError

if TYPE_CHECKING:
    from whisperd.audio.source import AudioSource

__all__ = [
    "DecodeLimits",
    "check_duration",
    "check_min_duration",
    "check_stream_shape",
    "source_rate",
]

_MIN_SAMPLE_RATE = 1_000
_SHORT_SLACK_S = 0.001
"""Resampling may round a clip of exactly the minimum length down by a few samples."""


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Caps applied while decoding untrusted input.

    Attributes:
        max_duration_s: Longest decoded duration accepted, enforced while decoding (and
            before, on the duration a container declares).
        min_duration_s: Shortest decoded duration accepted: 0.1 s, as OpenAI's API (shorter
            clips give Whisper nothing to hear, and it hallucinates "Thank you.").
        max_bad_packet_ratio: Largest tolerated share of packets that fail to decode.
        max_nonfinite_ratio: Largest tolerated share of NaN or infinite samples, which are
            zeroed as dropouts (:mod:`whisperd.audio.finite`); 1 %, the share of bad packets
            tolerated: zeroed at that rate, speech stays clear, and a file with more is damaged
            rather than a recording with dropouts.
        max_channels: Most channels accepted.
        max_sample_rate: Highest sample rate accepted, in Hz.
    """

    max_duration_s: float = 4 * 3600.0
    min_duration_s: float = 0.1
    max_bad_packet_ratio: float = 0.01
    max_nonfinite_ratio: float = 0.01
    max_channels: int = 64
    max_sample_rate: int = 768_000


def source_rate(source: AudioSource, limits: DecodeLimits) -> int:
    """The caller-given sample rate (16 kHz when unset), validated."""
    rate = SAMPLE_RATE if source.sample_rate is None else source.sample_rate
    if (
        isinstance(rate, bool)
        or not isinstance(rate, int)
        or not _MIN_SAMPLE_RATE <= rate <= limits.max_sample_rate
    ):
        raise UnsupportedAudioError(
            f"Sample rate {rate!r} is not supported; give a whole number of Hz between "
            f"{_MIN_SAMPLE_RATE} and {limits.max_sample_rate}.",
            param="sample_rate",
        )
    return rate


def check_duration(seconds: float, limits: DecodeLimits) -> None:
    """Raise :class:`AudioTooLongError` when ``seconds`` is over the cap."""
    if seconds > limits.max_duration_s:
        raise AudioTooLongError(
            f"The audio is longer than the {_clock(limits.max_duration_s)} limit; "
            "split it into shorter parts and send them one by one."
        )


def check_min_duration(seconds: float, limits: DecodeLimits) -> None:
    """Raise :class:`AudioTooShortError` when ``seconds`` is under the minimum.

    The message is OpenAI's own for the same refusal (code ``audio_too_short``, param
    ``file``).
    """
    if seconds < limits.min_duration_s - _SHORT_SLACK_S:
        raise AudioTooShortError(
            f"Audio file is too short. Minimum audio length is {limits.min_duration_s:g} seconds."
        )


def check_stream_shape(channels: int, rate: int, limits: DecodeLimits) -> None:
    """Refuse a channel count or sample rate over the caps."""
    if channels > limits.max_channels:
        raise UnsupportedAudioError(
            f"The audio has {channels} channels, more than the {limits.max_channels} accepted; "
            "mix it down before sending."
        )
    if rate > limits.max_sample_rate:
        raise UnsupportedAudioError(
            f"The audio's sample rate of {rate} Hz is above the {limits.max_sample_rate} Hz "
            "accepted; resample it before sending."
        )


def _clock(seconds: float) -> str:
    """Format a duration: ``N s`` below a minute, else ``H:MM:SS``."""
    if seconds < 60:
        return f"{seconds:g} s"
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"

"""Non-finite samples (NaN, infinities): zeroed when they are dropouts, refused when many.

A float sample that is NaN or infinite is no sound at all, and one of them spoils much more
than itself: a resampler's filter spreads it over its neighbours, and a NaN that reaches the
model's log-mel features turns whole windows into noise (Whisper then answers with empty text
or a run of one token). Every input path (containers, ``.npy``, tensors, raw PCM, stream
frames) therefore replaces each non-finite sample with 0 (silence) before anything else
touches it; only float samples can hold one.

Isolated dropouts are harmless once zeroed: speech with 1 % of its samples dropped stays clear.
A file with more than :attr:`~whisperd.audio.limits.DecodeLimits.max_nonfinite_ratio` of its
samples non-finite is not a recording with dropouts but a damaged one (or bytes read with the
wrong sample type), and is refused with :class:`~whisperd.errors.CorruptAudioError`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from whisperd.errors import CorruptAudioError

__all__ = ["NonFiniteCount", "zero_nonfinite"]

logger = logging.getLogger(__name__)

_ArrayT = TypeVar("_ArrayT", bound="np.ndarray[Any, Any]")
_BLOCK = 1 << 20
"""Samples checked at once: the check's scratch memory stays small (1 MiB) for any length."""


def zero_nonfinite(values: _ArrayT, *, in_place: bool = False) -> tuple[_ArrayT, int]:
    """Replace the NaN and infinite entries of ``values`` with 0.

    Args:
        values: Samples of any shape; only floating-point arrays can hold non-finite values.
        in_place: Write the zeros into ``values`` itself (it must be writeable, and be
            C-contiguous: any other array is copied); otherwise an array with non-finite
            entries is copied first and ``values`` is left untouched.

    Returns:
        The cleaned array (``values`` itself when it held none or ``in_place`` is set) and how
        many entries were replaced.
    """
    if values.dtype.kind != "f":
        return values, 0
    flat = values.reshape(-1) if values.flags.c_contiguous else None
    if flat is None:
        if np.isfinite(values).all():
            return values, 0
    elif all(np.isfinite(flat[i : i + _BLOCK]).all() for i in range(0, flat.size, _BLOCK)):
        return values, 0
    cleaned = values if in_place and flat is not None else values.copy(order="C")
    count = 0
    for start in range(0, cleaned.size, _BLOCK):
        block = cleaned.reshape(-1)[start : start + _BLOCK]
        bad = ~np.isfinite(block)
        count += int(np.count_nonzero(bad))
        block[bad] = 0
    return cleaned, count


@dataclass(slots=True)
class NonFiniteCount:
    """Counts the samples of one input and the non-finite ones zeroed among them.

    Attributes:
        max_ratio: Largest share of non-finite samples tolerated (zeroed); more is refused.
        samples: Samples seen (every channel's count).
        zeroed: Non-finite samples replaced with 0.
    """

    max_ratio: float
    samples: int = 0
    zeroed: int = 0

    def add(self, samples: int, zeroed: int) -> None:
        """Count ``samples`` samples, ``zeroed`` of which were non-finite."""
        self.samples += samples
        self.zeroed += zeroed

    def check(self) -> None:
        """Refuse the input when too many of its samples were non-finite; log the others.

        Raises:
            CorruptAudioError: More than ``max_ratio`` of the samples were NaN or infinite.
        """
        if self.zeroed == 0:
            return
        share = self.zeroed / max(self.samples, 1)
        if share > self.max_ratio:
            raise CorruptAudioError(
                f"{self.zeroed} of the audio's {self.samples} samples ({share:.1%}) are NaN or "
                f"infinite, more than the {self.max_ratio:.1%} tolerated as dropouts; the audio "
                "is damaged, or its samples were written with the wrong type. Send finite "
                "samples, ideally in [-1, 1]."
            )
        logger.warning(
            "zeroed %d NaN or infinite samples of %d (%.3f%%) as dropouts",
            self.zeroed,
            self.samples,
            100 * share,
        )

"""One growable buffer for decoded samples: memory bounded by the audio actually decoded.

A decode writes its 16 kHz mono float32 samples, in order, into a :class:`SampleBuffer`; the
buffer's memory becomes the :class:`~whisperd.audio.decoded.DecodedAudio` samples without a copy.
It lives in an anonymous memory map: pages the decode never writes take no memory, and growing
it remaps the pages it has (``mremap`` on Linux) instead of copying them, so the peak is the
samples themselves (4 bytes per sample: 230 MB per hour of audio) plus a page, where
gathering chunks and joining them needs twice that. Where the platform cannot remap, growth
falls back to a new map and one copy.

Every time the samples held pass what was reserved, the buffer asks its :data:`Reserve`
callback for more, in steps (:data:`RESERVE_STEP_S`), so a caller can count decoded audio
against a budget and stop a decode that would exceed it.
"""

from __future__ import annotations

import math
import mmap
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from whisperd.engine.base import SAMPLE_RATE

if TYPE_CHECKING:
    from whisperd.audio.decoded import Samples

__all__ = ["RESERVE_STEP_S", "Reserve", "SampleBuffer"]

Reserve: TypeAlias = Callable[[float], None]
"""Told the total seconds of decoded audio a decode is about to hold; raises to refuse them.
Calls only grow: each total is at least the one before."""

RESERVE_STEP_S = 60.0
"""Seconds of audio reserved ahead of the samples written when the buffer asks for more."""

_BYTES = np.dtype(np.float32).itemsize
_FIRST_CAPACITY_S = 30.0
"""Capacity of a buffer whose final length is not known: one Whisper window."""
_GROWTH = 1.25
"""Capacity grows by this factor (or to what is needed, if more)."""


class SampleBuffer:
    """16 kHz mono float32 samples, appended in order, then taken once as one array."""

    __slots__ = ("_capacity", "_map", "_reserve", "_reserved", "_size")

    def __init__(
        self,
        expected_frames: int | None = None,
        *,
        reserve: Reserve | None = None,
    ) -> None:
        """A buffer sized for ``expected_frames`` samples (one window when ``None``).

        Args:
            expected_frames: Samples the decode is expected to produce (a container's declared
                duration): the buffer starts that large, and that much is reserved at once.
            reserve: Called with the total seconds of decoded audio about to be held, each time
                the samples outgrow the last reservation; it raises to stop the decode.
        """
        first = expected_frames if expected_frames else int(_FIRST_CAPACITY_S * SAMPLE_RATE)
        self._capacity = max(first, 1)
        self._map = _anonymous_map(self._capacity * _BYTES)
        self._reserve = reserve
        self._reserved = 0
        self._size = 0
        if expected_frames:
            self._reserve_for(expected_frames)

    def __len__(self) -> int:
        """Samples written so far."""
        return self._size

    def append(self, samples: Samples) -> None:
        """Copy 1-D float32 ``samples`` to the end of the buffer.

        Raises:
            Whatever the ``reserve`` callback raises when more audio may not be held.
        """
        count = len(samples)
        if count == 0:
            return
        end = self._size + count
        if end > self._reserved:
            self._reserve_for(end + int(RESERVE_STEP_S * SAMPLE_RATE))
        if end > self._capacity:
            self._resize(max(end, math.ceil(self._capacity * _GROWTH)))
        view = np.frombuffer(self._map, dtype=np.float32, count=count, offset=self._size * _BYTES)
        view[:] = samples
        del view  # a live view would block the next resize
        self._size = end

    def take(self) -> Samples:
        """The samples written, as one writeable C-contiguous array over the buffer's memory.

        The buffer is shrunk to the samples first; append nothing afterwards.
        """
        if self._size == 0:
            return np.zeros(0, dtype=np.float32)
        if self._size != self._capacity:
            self._resize(self._size)
        return np.frombuffer(self._map, dtype=np.float32, count=self._size)

    def _reserve_for(self, frames: int) -> None:
        if self._reserve is not None:
            self._reserve(frames / SAMPLE_RATE)
        self._reserved = frames

    def _resize(self, frames: int) -> None:
        try:
            self._map.resize(frames * _BYTES)
        except (OSError, SystemError, ValueError):
            # No mremap on this platform: a new map and one copy.
            grown = _anonymous_map(frames * _BYTES)
            old = np.frombuffer(self._map, dtype=np.float32, count=self._size)
            np.frombuffer(grown, dtype=np.float32, count=self._size)[:] = old
            del old
            self._map.close()
            self._map = grown
        self._capacity = frames


def _anonymous_map(size: int) -> mmap.mmap:
    """Private anonymous memory of ``size`` bytes, zero-filled on first touch.

    Private, not Python's default shared mapping: a shared one is backed by a memory file of
    its first size, so growing it by remapping would fault on the new pages (SIGBUS), and it
    counts as shared memory rather than the process's own data.
    """
    if hasattr(mmap, "MAP_PRIVATE"):
        return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)
    return mmap.mmap(-1, size)

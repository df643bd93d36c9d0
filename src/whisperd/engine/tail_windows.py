"""Sequential decoding that leaves a short leftover at the end of the audio undecoded.

faster-whisper's loop (as openai/whisper's) goes on from each window's last timestamp (with
word timestamps, its last word's end) until the audio ends. A clip whose words end a few
hundred milliseconds before its audio does (an utterance cut with trailing silence) thus gets
a second window for that leftover: a whole padded 30 s window to encode and decode, which
doubles the clip's cost and mostly finds nothing (docs/benchmarks.md).
``TranscribeOptions.min_tail_window_s`` skips such a window when it holds less audio than
that; a longer leftover (the text stopped early, words remain) is still decoded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from whisperd.engine.window_padding import audio_frames

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = ["ShortTailSkipped", "SkipShortTail", "until_short_tail"]


class ShortTailSkipped(Exception):  # noqa: N818 (a signal that ends the loop, not an error)
    """Raised inside faster-whisper's loop instead of encoding the audio's short leftover."""


class SkipShortTail:
    """Stands in for a model inside faster-whisper's sequential loop: once the loop has
    decoded a window, a window holding fewer than ``min_frames`` mel frames of audio (10 ms
    each) is the audio's leftover, and is not encoded (:class:`ShortTailSkipped`); every other
    call goes to the model unchanged.

    Only without ``clip_timestamps``: with clips, a short window may end a clip, not the audio.
    """

    def __init__(self, model: Any, min_frames: int) -> None:
        """Skip leftovers of fewer than ``min_frames`` frames after ``model``'s first decode."""
        self._model = model
        self._min_frames = min_frames
        self._decoded = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode(self, features: Any, to_cpu: bool = False) -> Any:
        """The model's encoding of ``features`` (``[1, n_mels, 3000]``, padded with zeros).

        Raises:
            ShortTailSkipped: for a window after a decode holding less audio than the minimum.
        """
        if self._decoded and audio_frames(np.asarray(features)) < self._min_frames:
            raise ShortTailSkipped
        return self._model.encode(features, to_cpu)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        """The model's decode; windows encoded after it may be skipped."""
        self._decoded = True
        return self._model.generate(*args, **kwargs)


def until_short_tail(segments: Iterable[Any]) -> Iterator[Any]:
    """``segments`` up to a skipped leftover (:class:`SkipShortTail`), which ends them."""
    try:
        yield from segments
    except ShortTailSkipped:
        return

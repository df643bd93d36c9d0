"""Channels to mono: every input path mixes to the mean of its channels.

Whisper (``ffmpeg -ac 1`` to 16-bit PCM) and faster-whisper (PyAV's resampler to ``s16``
mono) both get ``(L + R) / 2`` for stereo, because FFmpeg normalises its downmix matrix for
integer output. Its float output is not normalised (``0.707 * (L + R)``: 3 dB too loud, past
[-1, 1] for loud stereo), so whisperd never lets FFmpeg downmix and takes the mean itself, for
any number of channels (for 5.1 the mean differs from FFmpeg's centre-weighted matrix; the
mean treats every channel alike, which is what a recording with speech in any one channel
needs).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["mix_to_mono", "split_channels"]


def mix_to_mono(samples: npt.NDArray[np.float32], channel_axis: int) -> npt.NDArray[np.float32]:
    """The mean of ``samples`` over ``channel_axis``.

    Args:
        samples: 2-D float32 samples, channels on ``channel_axis`` (0 or 1).
        channel_axis: Which axis holds the channels.

    Returns:
        1-D float32 samples: the mean of the channels (the one channel itself when there is
        only one).
    """
    if samples.shape[channel_axis] == 1:
        return np.ascontiguousarray(np.take(samples, 0, axis=channel_axis))
    return np.asarray(samples.mean(axis=channel_axis, dtype=np.float32), dtype=np.float32)


def split_channels(frames: list[npt.NDArray[np.float32]]) -> tuple[npt.NDArray[np.float32], ...]:
    """Each channel of ``frames`` (2-D blocks, channels on axis 1) as its own 1-D array.

    Empty for mono audio, and when the channel count changes mid-stream (there is then no one
    channel per speaker to keep).
    """
    widths = {block.shape[1] for block in frames}
    if len(widths) != 1 or widths == {1}:
        return ()
    whole = np.concatenate(frames)
    return tuple(np.ascontiguousarray(whole[:, index]) for index in range(whole.shape[1]))

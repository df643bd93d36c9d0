"""A window's padding: where a clip's audio ends in a 30 s log-mel window, and what the encoder
makes of the padding after it.

Whisper's encoder was trained on 30 s windows only (3000 log-mel frames, 1500 output
positions); faster-whisper pads a shorter clip's log-mel with zeros up to that length. Encoding
only the clip's own frames costs far less on a CPU (tiny.en int8, one core: 0.12 s for 10 s
against 0.95 s for the padded window), but a decoder given only those positions hallucinates:
it never saw a window end early. ``TranscribeOptions.encoder_context="audio"`` therefore encodes
the clip's frames (:func:`trim_padding`) and completes the output to the window's 1500 positions
with the encoder's output for a window of padding alone at the same positions
(:class:`PaddingEncoding`, :func:`completed`), which stands for what the padding would have
encoded to; the decoder attends to a whole window, as it was trained. The words this keeps
and the time it saves on real speech are in docs/benchmarks.md.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "WINDOW_FRAMES",
    "PaddingEncoding",
    "audio_frames",
    "completed",
    "padding_window",
    "trim_padding",
    "window_to_encode",
]

WINDOW_FRAMES = 3000
"""Log-mel frames of one 30 s window (10 ms each); the encoder halves them into positions."""
_FRAMES_PER_SECOND = 100
LEFTOVER_ENCODED_WHOLE_S = 2.0
"""A window holding less audio than this, after a decode of the same request (the leftover
after a window's last word), is encoded whole: with its padding approximated, such a window
after a prompt was heard as a repeat of the text before it (docs/benchmarks.md)."""

EncodedT = TypeVar("EncodedT")


def audio_frames(mel: np.ndarray[Any, Any]) -> int:
    """Mel frames of a ``[B, n_mels, frames]`` window before its all-zero padding (at least 1):
    faster-whisper pads a window's log-mel with zeros, which no audio, silence included, gives."""
    used = np.flatnonzero(np.any(mel != 0, axis=(0, 1)))
    return int(used[-1]) + 1 if len(used) else 1


def trim_padding(mel: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Cut the all-zero padding columns off a ``[B, n_mels, 3000]`` window, to whole seconds
    (so clips of about the same length share one encoder call)."""
    return _cut_to_seconds(mel, audio_frames(mel))


def window_to_encode(mel: np.ndarray[Any, Any], *, after_decode: bool) -> np.ndarray[Any, Any]:
    """What ``encoder_context="audio"`` encodes of a ``[B, n_mels, 3000]`` window: its audio
    (as :func:`trim_padding`), or the whole window for a short leftover after a decode
    (:data:`LEFTOVER_ENCODED_WHOLE_S`)."""
    frames = audio_frames(mel)
    if after_decode and frames < LEFTOVER_ENCODED_WHOLE_S * _FRAMES_PER_SECOND:
        return mel
    return _cut_to_seconds(mel, frames)


def _cut_to_seconds(mel: np.ndarray[Any, Any], frames: int) -> np.ndarray[Any, Any]:
    whole_seconds = -(-frames // _FRAMES_PER_SECOND) * _FRAMES_PER_SECOND
    return np.ascontiguousarray(mel[..., : min(whole_seconds, WINDOW_FRAMES)])


def padding_window(n_mels: int) -> np.ndarray[Any, Any]:
    """A ``[1, n_mels, 3000]`` window of padding alone (zeros, as faster-whisper pads)."""
    return np.zeros((1, n_mels, WINDOW_FRAMES), dtype=np.float32)


class PaddingEncoding(Generic[EncodedT]):
    """The encoder's output for a window of padding alone (``[1, 1500, d_model]`` in the
    engine's own array type), encoded on first use and kept for the model's life. Safe to
    share between threads: the first caller encodes, the others wait for it."""

    def __init__(self, encode_padding: Callable[[], EncodedT]) -> None:
        """``encode_padding`` encodes :func:`padding_window` with the engine's model."""
        self._encode_padding = encode_padding
        self._lock = threading.Lock()
        self._encoded: EncodedT | None = None

    def get(self) -> EncodedT:
        """The padding's encoder output (blocking: one window's encoding, the first time)."""
        with self._lock:
            if self._encoded is None:
                self._encoded = self._encode_padding()
            return self._encoded


def completed(encoded: np.ndarray[Any, Any], padding: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``encoded`` (``[B, S, D]``, windows trimmed to ``2 * S`` frames) completed to the
    window's positions with the padding's outputs after position ``S`` (``padding``:
    ``[1, 1500, D]``); a whole window is returned as it is."""
    batch, positions = encoded.shape[0], encoded.shape[1]
    if positions >= padding.shape[1]:
        return encoded
    rest = padding[:, positions:]
    tail = np.broadcast_to(rest, (batch, *rest.shape[1:]))
    return np.concatenate([encoded, tail], axis=1)

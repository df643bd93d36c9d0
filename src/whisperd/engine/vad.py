"""Streaming voice activity detection with faster-whisper's bundled Silero VAD (ONNX).

The model scores 512-sample (32 ms) windows at 16 kHz, each with the 64 samples before it as
context and an LSTM state carried from window to window; :class:`StreamingVad` keeps that state
per stream so audio can be scored as it arrives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from faster_whisper.vad import get_vad_model

WINDOW = 512
"""Samples per VAD window (32 ms at 16 kHz)."""
_CONTEXT = 64


class StreamingVad:
    """Speech probabilities for consecutive 512-sample windows of one stream."""

    def __init__(self) -> None:
        """Start with silence as context and a fresh state (loads the shared model once)."""
        self._session: Any = get_vad_model().session
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)

    def __call__(self, audio: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Probabilities for ``len(audio) // 512`` windows (a multiple of 512 samples). Blocking."""
        windows = np.asarray(audio, dtype=np.float32).reshape(-1, WINDOW)
        if not len(windows):
            return np.zeros(0, dtype=np.float32)
        contexts = np.concatenate([self._context[None, :], windows[:-1, -_CONTEXT:]])
        batch = np.concatenate([contexts, windows], axis=1)
        out, self._h, self._c = self._session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        self._context = windows[-1, -_CONTEXT:].copy()
        return np.asarray(out, dtype=np.float32).reshape(-1)

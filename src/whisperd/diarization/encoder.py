"""Speaker encoders: audio in, one L2-normalised voice embedding per clip out.

:class:`SpeakerEncoder` is the interface the diarizer needs, so a stronger model (pyannote's,
NeMo's TitaNet) can plug in later. :class:`ResemblyzerEncoder` is the embedded default: the
GE2E speaker encoder (Wan et al., 2018) that the PyPI package ``Resemblyzer`` (Apache-2.0)
ships inside its wheel as ``resemblyzer/pretrained.pt`` (3 LSTM layers of 256 over 40 mel
bands, a 256-dimensional embedding). Only that weights file is read: importing the package
itself pulls librosa (seconds of numba compilation) and ``webrtcvad`` (which needs
``pkg_resources``, gone from current setuptools), so the network is rebuilt here with PyTorch
and its front end computed in numpy (:mod:`whisperd.diarization.mel`).
"""

from __future__ import annotations

import importlib.util
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from whisperd.diarization.mel import mel_filters, mel_spectrogram
from whisperd.errors import InvalidOptionError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy.typing as npt

__all__ = [
    "CLIP_S",
    "DiarizationUnavailableError",
    "ResemblyzerEncoder",
    "SpeakerEncoder",
    "resemblyzer_weights",
]

CLIP_S = 1.6
"""Length of the clips the GE2E encoder was trained on (160 mel frames), in seconds."""
_CLIP_FRAMES = 160
_TARGET_DBFS = -30.0
"""Resemblyzer's volume normalisation target (quieter clips are raised to it)."""
INSTALL_HINT = "pip install 'whisperd[diarize]'"


class DiarizationUnavailableError(InvalidOptionError):
    """Diarization was asked for but the speaker model is not installed (400)."""

    code = "diarization_unavailable"


class SpeakerEncoder(Protocol):
    """A model that maps speech to voice embeddings (blocking; run it off the event loop)."""

    @property
    def dimension(self) -> int:
        """Length of each embedding."""
        ...

    def embed(self, clips: list[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
        """One L2-normalised embedding per clip of 16 kHz mono samples, ``(len(clips), dim)``;
        clips shorter than the model's window are zero-padded, longer ones averaged over
        windows."""
        ...


def resemblyzer_weights() -> Path:
    """Where the installed ``Resemblyzer`` wheel keeps ``pretrained.pt`` (without importing
    the package).

    Raises:
        DiarizationUnavailableError: the package, or its weights file, is not installed.
    """
    try:
        spec = importlib.util.find_spec("resemblyzer")
    except (ImportError, ValueError):  # a broken or blocked installation: none to use
        spec = None
    folders = list(spec.submodule_search_locations or ()) if spec is not None else []
    for folder in folders:
        path = Path(folder) / "pretrained.pt"
        if path.is_file():
            return path
    raise DiarizationUnavailableError(
        f"Diarization needs the speaker model, which is not installed; install it with "
        f"{INSTALL_HINT} (or pip install Resemblyzer torch scipy) and restart the server.",
        param="diarize",
    )


class ResemblyzerEncoder:
    """The GE2E speaker encoder of Resemblyzer, on PyTorch's CPU (thread-safe)."""

    def __init__(self, weights: Path) -> None:
        """Load ``weights`` (a Resemblyzer checkpoint: ``{"model_state": ...}``).

        Raises:
            DiarizationUnavailableError: PyTorch is not installed.
        """
        try:
            import torch
        except ImportError as exc:
            raise DiarizationUnavailableError(
                f"Diarization needs PyTorch; install it with {INSTALL_HINT}.", param="diarize"
            ) from exc
        self._torch: Any = torch
        checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
        state = checkpoint["model_state"]
        self._lstm = torch.nn.LSTM(40, 256, 3, batch_first=True)
        self._linear = torch.nn.Linear(256, 256)
        self._lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
        self._linear.load_state_dict(
            {k[7:]: v for k, v in state.items() if k.startswith("linear.")}
        )
        self._lstm.eval()
        self._linear.eval()
        self._filters = mel_filters()
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        """256."""
        return 256

    def embed(self, clips: list[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
        """Embed each clip: its 1.6 s windows (half-overlapping; one zero-padded window when
        shorter) in one batch, averaged and L2-normalised, as Resemblyzer's
        ``embed_utterance`` does."""
        if not clips:
            return np.zeros((0, self.dimension), dtype=np.float32)
        windows: list[npt.NDArray[np.float32]] = []
        owners: list[int] = []
        for index, clip in enumerate(clips):
            mel = mel_spectrogram(_normalise_volume(clip), self._filters)
            for part in _windows(mel):
                windows.append(part)
                owners.append(index)
        raw = self._forward(np.stack(windows))
        out = np.zeros((len(clips), self.dimension), dtype=np.float32)
        np.add.at(out, np.array(owners), raw)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
        return out

    def _forward(self, mels: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        torch = self._torch
        with self._lock, torch.inference_mode(), _one_thread(torch):
            _, (hidden, _) = self._lstm(torch.from_numpy(mels))
            raw = torch.relu(self._linear(hidden[-1]))
            raw = raw / torch.clamp(torch.linalg.norm(raw, dim=1, keepdim=True), min=1e-9)
        return np.asarray(raw.numpy(), dtype=np.float32)


@contextmanager
def _one_thread(torch: Any) -> Iterator[None]:
    """Run the block's PyTorch operators on the calling thread alone, then restore its thread
    count.

    The LSTM's steps (160 frames x 3 layers of 256 units) are too small to share out: on a
    2-core machine, 56 clips took 0.66-0.95 CPU s on one thread against 1.6-3.8 s on two
    (the threads wait for each other at every step). The scheduler already runs calls side by
    side where there is room.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _normalise_volume(clip: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Raise a quiet clip to -30 dBFS RMS (Resemblyzer's ``normalize_volume``, increase
    only); digital silence stays silent."""
    rms = float(np.sqrt(np.mean(np.square(clip, dtype=np.float64)))) if clip.size else 0.0
    if rms <= 1e-6:
        return clip
    gain = 10 ** (_TARGET_DBFS / 20) / rms
    return (clip * gain).astype(np.float32) if gain > 1 else clip


def _windows(mel: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
    """160-frame windows of ``mel``, half-overlapping; the last (or only) one zero-padded."""
    if len(mel) <= _CLIP_FRAMES:
        return [np.pad(mel, ((0, _CLIP_FRAMES - len(mel)), (0, 0)))]
    step = _CLIP_FRAMES // 2
    starts = list(range(0, len(mel) - _CLIP_FRAMES + 1, step))
    if starts[-1] + _CLIP_FRAMES < len(mel) - step // 2:
        starts.append(len(mel) - _CLIP_FRAMES)
    return [mel[start : start + _CLIP_FRAMES] for start in starts]

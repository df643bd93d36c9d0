"""Whisper's log-mel features computed with PyTorch on the engine's device.

faster-whisper's :class:`FeatureExtractor` runs its STFT in NumPy on the CPU; on a fast GPU
that becomes the bottleneck. :class:`TorchFeatureExtractor` is the same class (every attribute
faster-whisper reads is the library's own) with only ``__call__`` computed by PyTorch: the
same padding, window, mel filters, log floor and scaling, in float32. On CUDA the work runs on
a private stream, so copying the features back waits for the featurizer's own kernels only,
never for encoder or decoder work other threads queued on the default stream.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name

from whisperd.engine.whisper import FeatureExtractor

if TYPE_CHECKING:
    import numpy.typing as npt


class TorchFeatureExtractor(FeatureExtractor):  # type: ignore[misc]  # untyped upstream
    """faster-whisper's feature extractor, computing its log-mel spectrogram with PyTorch.

    Safe to call from many threads at once: each call allocates its own tensors; the window
    and the mel filters are read-only and live on the device from construction on.
    """

    def __init__(self, device: torch.device | str = "cpu", **kwargs: Any) -> None:
        """Build faster-whisper's extractor from ``kwargs`` (its ``feat_kwargs``) and put its
        window and mel filters on ``device``."""
        super().__init__(**kwargs)
        place = torch.device(device)
        if place.type == "cuda" and place.index is None:
            place = torch.device("cuda", torch.cuda.current_device())
        self.device = place
        window = np.hanning(self.n_fft + 1)[:-1].astype(np.float32)
        self._window = torch.from_numpy(window).to(place)
        self._filters = torch.from_numpy(self.mel_filters).to(place)
        self._stream: torch.cuda.Stream | None = None
        if place.type == "cuda":
            self._stream = torch.cuda.Stream(place)  # type: ignore[no-untyped-call]
            self._stream.wait_stream(torch.cuda.current_stream(place))

    def __call__(
        self,
        waveform: npt.NDArray[Any],
        padding: int = 160,
        chunk_length: int | None = None,
    ) -> npt.NDArray[np.float32]:
        """The log-mel spectrogram ``[n_mels, frames]`` of 1-D ``waveform``, as the parent's.

        ``waveform`` is cast to float32 and right-padded with ``padding`` zeros; there is one
        frame per ``hop_length`` samples of the padded signal. ``chunk_length`` (seconds) resets
        ``n_samples`` and ``nb_max_frames`` first, as faster-whisper expects.

        Raises:
            ValueError: if ``waveform`` is not 1-D, ``padding`` is negative, or the padded
                signal is shorter than one hop (the parent raises a ``ValueError`` there too).
        """
        if chunk_length is not None:
            self.n_samples = chunk_length * self.sampling_rate
            self.nb_max_frames = self.n_samples // self.hop_length
        signal = self._checked(waveform, padding or 0)
        with torch.inference_mode(), self._on_stream():
            samples, center = self._upload(signal, padding or 0)
            features = self._log_mel(samples, center=center)
            result: npt.NDArray[np.float32] = features.cpu().numpy()
        return result

    def _checked(self, waveform: npt.NDArray[Any], padding: int) -> npt.NDArray[np.float32]:
        """``waveform`` as contiguous float32, refused where the parent would fail or differ."""
        signal = np.ascontiguousarray(waveform, dtype=np.float32)
        if signal.ndim != 1:
            raise ValueError(f"expected 1-D audio samples, got an array of shape {signal.shape}")
        if padding < 0:
            raise ValueError(f"padding must be 0 or more samples, got {padding}")
        if self._frames(signal.shape[0] + padding) < 1:
            raise ValueError(
                f"{signal.shape[0]} samples padded by {padding} make no feature frame: "
                f"at least {self.hop_length} are needed"
            )
        return signal

    def _frames(self, length: int) -> int:
        """Frames of a padded signal of ``length`` samples, the STFT's last one dropped."""
        return int(length + 2 * (self.n_fft // 2) - self.n_fft) // int(self.hop_length)

    def _on_stream(self) -> contextlib.AbstractContextManager[Any]:
        if self._stream is None:
            return contextlib.nullcontext()
        return torch.cuda.stream(self._stream)

    def _upload(self, signal: npt.NDArray[np.float32], padding: int) -> tuple[torch.Tensor, bool]:
        """The right-padded signal on the device, and whether the STFT still has to center it.

        PyTorch's reflect padding needs more samples than it adds; NumPy's (the parent's)
        reflects again and again, so a signal that short is padded on the host the NumPy way.
        """
        half = self.n_fft // 2
        if signal.shape[0] + padding > half:
            samples = torch.from_numpy(signal).to(self.device)
            return (F.pad(samples, (0, padding)) if padding else samples), True
        short = np.pad(np.pad(signal, (0, padding)), half, mode="reflect")
        return torch.from_numpy(short).to(self.device), False

    def _log_mel(self, samples: torch.Tensor, *, center: bool) -> torch.Tensor:
        """Power spectrum through the mel filters, log10 floored 8 below this call's peak."""
        spectrum = torch.stft(
            samples,
            self.n_fft,
            self.hop_length,
            window=self._window,
            center=center,
            pad_mode="reflect",
            return_complex=True,
        )
        power = spectrum[..., :-1].abs() ** 2
        log_spec = torch.clamp(self._filters @ power, min=1e-10).log10()
        log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
        return (log_spec + 4.0) / 4.0

"""Array inputs: ``.npy`` files, PyTorch tensor files and raw PCM, to 16 kHz mono samples.

The array is in memory already (it was uploaded, or is read whole); its decoded duration is
reserved (:data:`~whisperd.audio.buffer.Reserve`) before it is converted. NaN and infinite
samples are zeroed before mixing and resampling, and refused when too many
(:mod:`whisperd.audio.finite`).
"""

from __future__ import annotations

import importlib
import math
import pickle
import re
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import numpy.typing as npt
import soxr

from whisperd.audio.decoded import DecodedAudio, Samples, finish
from whisperd.audio.finite import NonFiniteCount, zero_nonfinite
from whisperd.audio.limits import DecodeLimits, check_duration, source_rate
from whisperd.audio.mixing import mix_to_mono
from whisperd.audio.source import AudioSource, input_size, open_binary
from whisperd.engine.base import SAMPLE_RATE
from whisperd.errors import (
    CorruptAudioError,
    EmptyAudioError,
    TorchUnavailableError,
    UnsupportedAudioError,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import ModuleType

    from whisperd.audio.buffer import Reserve

__all__ = ["decode_npy", "decode_pcm", "decode_tensor"]

_PCM_DTYPES: Mapping[str, str] = MappingProxyType(
    {"int16": "<i2", "int32": "<i4", "float32": "<f4", "float64": "<f8"}
)
_UNSAFE_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
"""How PyTorch's weights-only unpickler names the Python object it refused."""


def decode_pcm(
    source: AudioSource, limits: DecodeLimits, reserve: Reserve | None = None
) -> DecodedAudio:
    """Read headerless little-endian PCM of ``source.dtype`` at ``source.sample_rate``."""
    name = source.dtype or "float32"
    if name not in _PCM_DTYPES:
        raise UnsupportedAudioError(
            f"Unknown PCM sample type {name!r}; use int16, int32, float32 or float64.",
            param="dtype",
        )
    dtype = np.dtype(_PCM_DTYPES[name])
    rate = source_rate(source, limits)
    size = input_size(source.data)
    if size % dtype.itemsize:
        raise CorruptAudioError(
            f"Raw PCM of {size} bytes is not a whole number of {name} samples "
            f"({dtype.itemsize} bytes each); the stream was cut or the dtype is wrong."
        )
    check_duration(size // dtype.itemsize / rate, limits)
    if isinstance(source.data, Path):
        array: npt.NDArray[Any] = np.fromfile(source.data, dtype=dtype)
    else:
        array = np.frombuffer(source.data, dtype=dtype)
    return _array_to_audio(array, rate, limits, "pcm", reserve)


def decode_npy(
    source: AudioSource, limits: DecodeLimits, reserve: Reserve | None = None
) -> DecodedAudio:
    """Load a ``.npy`` array (no pickle) after checking its header against the caps."""
    rate = source_rate(source, limits)
    with open_binary(source.data) as file:
        shape, dtype = _read_npy_header(file)
        available = input_size(source.data) - file.tell()
        if math.prod(shape) * dtype.itemsize > available:
            raise CorruptAudioError(
                "The .npy file is shorter than the array its header declares; "
                "it was cut off or damaged."
            )
        frames, _ = _frames_and_channel_axis(_squeezed_shape(shape))
        check_duration(frames / rate, limits)
        file.seek(0)
        array: npt.NDArray[Any] = np.load(file, allow_pickle=False)
    return _array_to_audio(array, rate, limits, "numpy", reserve)


def _read_npy_header(file: BinaryIO) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """Read the shape and dtype from a ``.npy`` header, refusing object (pickle) arrays."""
    version = np.lib.format.read_magic(file)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(file)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(file)
    if dtype.hasobject:
        raise UnsupportedAudioError(
            "The .npy file holds Python objects (pickled data), which are not accepted; "
            "save a plain numeric array instead."
        )
    return shape, dtype


def decode_tensor(
    source: AudioSource, limits: DecodeLimits, reserve: Reserve | None = None
) -> DecodedAudio:
    """Load a ``torch.save`` file with ``weights_only=True`` and decode its tensor."""
    torch = _import_torch()
    rate = source_rate(source, limits)
    with open_binary(source.data) as file:
        try:
            loaded = torch.load(file, weights_only=True, map_location="cpu")
        except Exception as exc:
            raise _tensor_load_failure(exc) from exc
    if not isinstance(loaded, torch.Tensor):
        raise UnsupportedAudioError(
            f"The PyTorch file holds a {type(loaded).__name__}, not a tensor; "
            "save the audio tensor itself with torch.save(tensor)."
        )
    tensor = loaded.detach().cpu()
    if tensor.is_complex():
        raise UnsupportedAudioError("Complex-valued tensors are not audio; send real samples.")
    if tensor.is_floating_point():
        tensor = tensor.to(torch.float32)
    array: npt.NDArray[Any] = np.asarray(tensor.numpy())
    return _array_to_audio(array, rate, limits, "tensor", reserve)


def _tensor_load_failure(exc: Exception) -> UnsupportedAudioError | CorruptAudioError:
    """Our own words for a failed ``torch.load``.

    PyTorch's text is not passed on: it advises loading with ``weights_only=False``, which
    would run any code the file holds, and is never done here.
    """
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) or "Weights only load failed" in text:
        found = _UNSAFE_GLOBAL.search(text)
        named = f" ({found.group(1)})" if found else ""
        return UnsupportedAudioError(
            f"The PyTorch file holds Python objects other than tensors{named}, which are never "
            "loaded: they could run code. Save the audio tensor alone with torch.save(tensor)."
        )
    return CorruptAudioError(
        "The PyTorch file could not be read: it is damaged or incomplete. Send a whole file "
        "made by torch.save(tensor)."
    )


def _import_torch() -> ModuleType:
    """Import PyTorch lazily, or raise :class:`TorchUnavailableError`."""
    try:
        return importlib.import_module("torch")
    except (ImportError, OSError) as exc:
        raise TorchUnavailableError(
            "This input is a PyTorch tensor file, but PyTorch is not installed on this server. "
            "Install torch on the server, or send the audio as a .npy array or raw PCM instead."
        ) from exc


def _squeezed_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape without length-1 axes beyond two dimensions; refuse what is not audio."""
    if len(shape) > 2:
        shape = tuple(n for n in shape if n != 1) or (1,)
    if len(shape) == 0 or len(shape) > 2:
        raise UnsupportedAudioError(
            f"An audio array must be 1-D (mono) or 2-D (channels x samples), not shape "
            f"{shape}; reshape it before sending."
        )
    return shape


def _frames_and_channel_axis(shape: tuple[int, ...]) -> tuple[int, int | None]:
    """Number of frames and the channel axis (the smaller one) of a 1-D or 2-D shape."""
    if len(shape) == 1:
        return shape[0], None
    channel_axis = 0 if shape[0] <= shape[1] else 1
    return shape[1 - channel_axis], channel_axis


def _array_to_audio(
    array: npt.NDArray[Any],
    rate: int,
    limits: DecodeLimits,
    container: str,
    reserve: Reserve | None,
) -> DecodedAudio:
    """Validate an array, zero its non-finite samples, mix it to mono and resample to 16 kHz."""
    array = array.reshape(_squeezed_shape(array.shape))
    if array.size == 0:
        raise EmptyAudioError("The audio array is empty; send at least one sample.")
    frames, channel_axis = _frames_and_channel_axis(array.shape)
    if channel_axis is not None and array.shape[channel_axis] > limits.max_channels:
        raise UnsupportedAudioError(
            f"The array has {array.shape[channel_axis]} channels, more than the "
            f"{limits.max_channels} accepted; mix it down before sending."
        )
    check_duration(frames / rate, limits)
    if reserve is not None:
        reserve(frames / rate)
    samples, zeroed = zero_nonfinite(_to_float32(array))
    nonfinite = NonFiniteCount(limits.max_nonfinite_ratio)
    nonfinite.add(samples.size, zeroed)
    nonfinite.check()
    mono = samples if channel_axis is None else mix_to_mono(samples, channel_axis)
    return finish(_resample(mono, rate), container)


def _to_float32(array: npt.NDArray[Any]) -> Samples:
    """Convert samples to float32, scaling integer types to [-1, 1]."""
    kind = array.dtype.kind
    if kind not in "fiu":
        raise UnsupportedAudioError(
            f"Arrays of dtype {array.dtype} are not audio; send float32, float64, or integer "
            "PCM samples."
        )
    with np.errstate(over="ignore", invalid="ignore"):
        samples = array.astype(np.float32, copy=False)
    if kind == "f":
        return samples
    half = float(2 ** (array.dtype.itemsize * 8 - 1))
    if kind == "u":
        return (samples - np.float32(half)) / np.float32(half)
    return samples / np.float32(half)


def _resample(samples: Samples, rate: int) -> Samples:
    """Resample mono float32 ``samples`` from ``rate`` to 16 kHz with soxr (HQ)."""
    if rate == SAMPLE_RATE:
        return samples
    resampled = soxr.resample(np.ascontiguousarray(samples), rate, SAMPLE_RATE, quality="HQ")
    return np.asarray(resampled, dtype=np.float32)

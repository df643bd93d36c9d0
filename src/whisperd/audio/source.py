"""An audio input to decode, and the plain reads of its bytes."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

__all__ = [
    "AUDIO_FORMATS",
    "HEAD_BYTES",
    "AudioFormat",
    "AudioSource",
    "PcmDtype",
    "input_size",
    "open_binary",
    "read_head",
]

AudioFormat = Literal["auto", "file", "numpy", "tensor", "pcm"]
"""How to read an :class:`AudioSource`; ``auto`` detects it from the bytes."""

PcmDtype = Literal["int16", "int32", "float32", "float64"]
"""Sample type of raw PCM input (always little-endian)."""

AUDIO_FORMATS: frozenset[str] = frozenset({"auto", "file", "numpy", "tensor", "pcm"})
"""Every :data:`AudioFormat` value, for checking untyped input."""

HEAD_BYTES = 65_536
"""How many leading bytes :func:`read_head` returns."""


@dataclass(frozen=True, slots=True)
class AudioSource:
    """One audio input.

    Attributes:
        data: The raw bytes of an upload, or a path on disk (streamed, never read whole).
        format: How to read ``data``; ``"auto"`` detects it from the bytes, never from a name.
        sample_rate: Sample rate of ``numpy``/``tensor``/``pcm`` input; 16000 when ``None``.
        dtype: Sample type of ``pcm`` input; ``"float32"`` when ``None``.
        keep_channels: Also keep each channel of a container apart (per-channel speakers);
            the mono mix is made either way.
    """

    data: bytes | Path
    format: AudioFormat = "auto"
    sample_rate: int | None = None
    dtype: PcmDtype | None = None
    keep_channels: bool = False


def input_size(data: bytes | Path) -> int:
    """Size of the input in bytes (``stat`` for a path)."""
    return data.stat().st_size if isinstance(data, Path) else len(data)


def open_binary(data: bytes | Path) -> BinaryIO:
    """A binary file object over the input; use it as a context manager."""
    return data.open("rb") if isinstance(data, Path) else io.BytesIO(data)


def read_head(data: bytes | Path) -> bytes:
    """The first bytes of the input, for magic-byte detection and header parsing."""
    if not isinstance(data, Path):
        return data[:HEAD_BYTES]
    with data.open("rb") as file:
        return file.read(HEAD_BYTES)

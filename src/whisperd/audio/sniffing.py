"""Recognising what an input is from its magic bytes, never from its name."""

from __future__ import annotations

import zipfile
from types import MappingProxyType
from typing import TYPE_CHECKING

from whisperd.audio.source import open_binary

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ["NOT_CONTAINERS", "is_torch_zip", "sniff"]

_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x93NUMPY", "npy"),
    (0, b"PK\x03\x04", "zip"),
    (0, b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", "torch"),
    (0, b"fLaC", "flac"),
    (0, b"OggS", "ogg"),
    (0, b"ID3", "mp3"),
    (0, b"\x1a\x45\xdf\xa3", "matroska"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "asf"),
    (0, b"#!AMR", "amr"),
    (0, b"caff", "caf"),
    (0, b".snd", "au"),
    (0, b"wvpk", "wv"),
    (0, b"MAC ", "ape"),
    (0, b"TTA1", "tta"),
    (0, b"RF64", "wav"),
    (0, b"FLV\x01", "flv"),
    (0, b"\x0b\x77", "ac3"),
    (0, b"\x00\x00\x01\xba", "mpeg"),
    (4, b"ftyp", "mp4"),
    (4, b"moov", "mp4"),
    (4, b"mdat", "mp4"),
    (4, b"wide", "mp4"),
    (4, b"free", "mp4"),
)
_RIFF_KINDS: Mapping[bytes, str] = MappingProxyType({b"WAVE": "wav", b"AVI ": "avi"})

NOT_CONTAINERS: frozenset[str] = frozenset({"npy", "zip", "torch"})
"""Kinds :func:`sniff` reports that are not audio or video containers."""


def sniff(head: bytes) -> str | None:
    """Guess what the input is from its magic bytes; ``None`` when nothing matches."""
    for offset, magic, kind in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return kind
    if head[:4] == b"RIFF":
        return _RIFF_KINDS.get(head[8:12])
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "aac" if head[1] & 0xF6 == 0xF0 else "mp3"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "mpegts"
    return None


def is_torch_zip(data: bytes | Path) -> bool:
    """Whether a zip archive looks like a ``torch.save`` file (it holds a ``data.pkl``)."""
    try:
        with open_binary(data) as file, zipfile.ZipFile(file) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return any(name == "data.pkl" or name.endswith("/data.pkl") for name in names)

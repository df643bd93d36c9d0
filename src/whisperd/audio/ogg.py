"""Whether an Ogg file is complete: its last page must close its stream.

An Ogg file declares no total duration up front: each page carries only the granule position
(the sample count) it reaches, so a file cut short declares exactly the audio it still has and
a duration check cannot see the cut. What marks a complete Ogg stream is its last page, which
carries the end-of-stream flag (RFC 3533, section 6: ``header_type`` bit 0x04 on the last page
of a logical bitstream). Writers set it when they finish, whether they write to a file or a
pipe; a file cut during upload or recording ends on a page without it, or in the middle of a
page.

So the check reads the last 128 KiB of the file (a page is at most 65,307 bytes), finds its last
complete page whose CRC is right (the CRC tells real pages from ``OggS`` bytes inside packet
data), and asks whether that page ends a stream. Bytes after it (a partial page, or a tag some
tool appended) do not matter by themselves. A file is found out at its first or second
candidate page; one whose tail makes more than :data:`_MAX_CRC_CHECKS` well-formed candidates
fail their CRC counts as incomplete (each check reads up to 64 KiB in Python).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from whisperd.audio.source import input_size, open_binary

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["ogg_is_complete"]

_CAPTURE = b"OggS"
_HEADER = 27
_END_OF_STREAM = 0x04
_TAIL_BYTES = 2 * (_HEADER + 255 + 255 * 255)
"""Enough of the file's end to hold its last complete page whole, wherever the cut fell."""
_MAX_CRC_CHECKS = 8


def _crc_table() -> tuple[int, ...]:
    """Ogg's CRC-32 table: polynomial 0x04C11DB7, not reflected, initial value 0."""
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def _crc(page: bytes) -> int:
    """The Ogg CRC of ``page`` (with its CRC field zeroed)."""
    crc = 0
    for byte in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[(crc >> 24) ^ byte]
    return crc


def _whole_page_at(tail: bytes, pos: int) -> bytes | None:
    """The bytes of the page starting at ``pos`` if all of them are in ``tail``, else ``None``."""
    if pos + _HEADER > len(tail) or tail[pos + 4] != 0:
        return None
    segments = tail[pos + 26]
    body_at = pos + _HEADER + segments
    if body_at > len(tail):
        return None
    end = body_at + sum(tail[pos + _HEADER : body_at])
    return tail[pos:end] if end <= len(tail) else None


def _crc_matches(page: bytes) -> bool:
    stored = int.from_bytes(page[22:26], "little")
    return _crc(page[:22] + b"\0\0\0\0" + page[26:]) == stored


def ogg_is_complete(data: bytes | Path) -> bool:
    """Whether the Ogg file ``data`` ends its stream: its last valid page is end-of-stream.

    Args:
        data: The whole file, as bytes or a path.

    Returns:
        False when the file was cut short (or holds no valid page in its last 128 KiB).
    """
    size = input_size(data)
    with open_binary(data) as file:
        file.seek(max(0, size - _TAIL_BYTES), io.SEEK_SET)
        tail = file.read()
    checks = 0
    pos = tail.rfind(_CAPTURE)
    while pos >= 0 and checks < _MAX_CRC_CHECKS:
        page = _whole_page_at(tail, pos)
        if page is not None:
            checks += 1
            if _crc_matches(page):
                return bool(page[5] & _END_OF_STREAM)
        pos = tail.rfind(_CAPTURE, 0, pos)
    return False

"""The duration a container declares in its header, to tell cut-off audio from complete audio.

WAV, FLAC and MP3 headers are parsed here from the input's first bytes; for MP4/MOV, AIFF and
Matroska the duration FFmpeg read from the header is used. A header written to a pipe cannot
know its length and holds a placeholder size instead (see :func:`_unknown_size`); such a header
declares nothing, and the audio is taken as it is.

:func:`expected_seconds` adds what is known before decoding but is no check of completeness:
an Ogg file's last granule position (FFmpeg reads the last page of a seekable input), exact for
the pages the file holds, even when the file was cut.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from av.audio.stream import AudioStream
    from av.container import InputContainer

__all__ = ["declared_seconds", "expected_seconds"]

_AV_TIME_BASE = 1_000_000
_DECLARED_BY_FFMPEG: frozenset[str] = frozenset({"mov", "aiff", "matroska"})
"""Demuxers whose duration FFmpeg reads from a header (not estimated from the file size)."""
_PLACEHOLDER_FLOOR = 0x7FFF0000
"""RIFF sizes from here up (2 GiB less 64 KiB) are "length unknown" placeholders."""


def declared_seconds(
    demuxer: str, container: InputContainer, stream: AudioStream, head: bytes
) -> float | None:
    """The duration the container declares in a header, or ``None`` when it has none."""
    if demuxer == "wav":
        return _wav_declared_seconds(head)
    if demuxer == "flac":
        return _flac_declared_seconds(head)
    if demuxer == "mp3":
        return _mp3_declared_seconds(head)
    if demuxer not in _DECLARED_BY_FFMPEG:
        return None
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0 and not container.streams.video:
        return container.duration / _AV_TIME_BASE
    return None


def expected_seconds(demuxer: str, stream: AudioStream, declared: float | None) -> float | None:
    """Seconds of audio the decode will produce, as far as known before decoding.

    Args:
        demuxer: FFmpeg's name of the input's demuxer.
        stream: The audio stream to decode.
        declared: What :func:`declared_seconds` found.

    Returns:
        ``declared``, or for Ogg the duration of its last page's granule position; ``None``
        when neither is known.
    """
    if declared is not None:
        return declared
    if demuxer == "ogg" and stream.duration and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
        return seconds if seconds > 0 else None
    return None


def _riff_chunks(head: bytes) -> list[tuple[bytes, int, int]]:
    """``(id, payload offset, size)`` of the RIFF chunks whose headers lie within ``head``."""
    chunks: list[tuple[bytes, int, int]] = []
    pos = 12
    while pos + 8 <= len(head):
        size = int.from_bytes(head[pos + 4 : pos + 8], "little")
        chunks.append((head[pos : pos + 4], pos + 8, size))
        pos += 8 + size + (size & 1)
    return chunks


def _unknown_size(size: int) -> bool:
    """Whether a RIFF chunk size is a writer's "length unknown" placeholder.

    A WAV written to a pipe cannot have its sizes filled in afterwards, so its writer leaves a
    placeholder: 0, 0xFFFFFFFF (FFmpeg's ``-f wav -``), 0x7FFFF000 (``espeak-ng --stdout``),
    0x7FFFFFFF (writers that count in signed 32 bits). Every size from
    :data:`_PLACEHOLDER_FLOOR` up counts as one: a real chunk that large (over three hours of
    48 kHz stereo) only loses the truncation check, while a pipe's WAV would be refused.
    """
    return size == 0 or size >= _PLACEHOLDER_FLOOR


def _wav_declared_seconds(head: bytes) -> float | None:
    """Duration from a PCM WAV header's data size and byte rate (``None`` for placeholders)."""
    riff_size = int.from_bytes(head[4:8], "little")
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE" or _unknown_size(riff_size):
        return None
    byte_rate = 0
    for chunk_id, offset, size in _riff_chunks(head):
        if chunk_id == b"fmt " and size >= 16 and offset + 16 <= len(head):
            codec = int.from_bytes(head[offset : offset + 2], "little")
            pcm = codec in (1, 3, 0xFFFE)
            byte_rate = int.from_bytes(head[offset + 8 : offset + 12], "little") if pcm else 0
        elif chunk_id == b"data":
            if byte_rate <= 0 or _unknown_size(size) or size > riff_size:
                return None
            return size / byte_rate
    return None


def _flac_declared_seconds(head: bytes) -> float | None:
    """Duration from a FLAC STREAMINFO block (``None`` when the total is not recorded)."""
    if head[:4] != b"fLaC" or len(head) < 26 or head[4] & 0x7F != 0:
        return None
    info = head[8:26]
    rate = (info[10] << 12) | (info[11] << 4) | (info[12] >> 4)
    total = ((info[13] & 0x0F) << 32) | int.from_bytes(info[14:18], "big")
    if rate == 0 or total == 0:
        return None
    return total / rate


def _id3_end(head: bytes) -> int:
    """Offset just past a leading ID3v2 tag (0 when there is none)."""
    if head[:3] != b"ID3" or len(head) < 10:
        return 0
    size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | head[9] & 0x7F
    return 10 + size + (10 if head[5] & 0x10 else 0)


def _mp3_declared_seconds(head: bytes) -> float | None:
    """Duration from the Xing/Info frame count of an MP3 (``None`` when it has no such tag)."""
    start = _id3_end(head)
    frame = head[start : start + 4]
    if len(frame) < 4 or frame[0] != 0xFF or frame[1] & 0xE0 != 0xE0 or frame[1] & 0x06 != 0x02:
        return None
    version, rate_index = (frame[1] >> 3) & 3, (frame[2] >> 2) & 3
    if version == 1 or rate_index == 3:
        return None
    rate = (44_100, 48_000, 32_000)[rate_index] >> {3: 0, 2: 1, 0: 2}[version]
    mono = frame[3] >> 6 == 3
    side_info = (17 if mono else 32) if version == 3 else (9 if mono else 17)
    tag = start + 4 + side_info
    if (
        len(head) < tag + 12
        or head[tag : tag + 4] not in (b"Xing", b"Info")
        or not head[tag + 7] & 1
    ):
        return None
    frames = int.from_bytes(head[tag + 8 : tag + 12], "big")
    return frames * (1152 if version == 3 else 576) / rate if frames else None

"""A cut Ogg file (Opus, Vorbis, FLAC in Ogg) is refused as truncated, like a cut WAV or MP3."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest

from whisperd.audio.decode import AudioSource, decode_audio
from whisperd.audio.ogg import ogg_is_complete
from whisperd.errors import TruncatedAudioError

DATA = Path(__file__).resolve().parents[1] / "data"


def tone(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)


def ogg(codec: str, rate: int, seconds: float = 6.0) -> bytes:
    """An Ogg file of a tone, written by FFmpeg's Ogg muxer."""
    # FFmpeg's own Vorbis encoder is experimental and encodes stereo only.
    options = {"strict": "experimental"} if codec == "vorbis" else {}
    layout = "stereo" if codec == "vorbis" else "mono"
    channels = av.AudioLayout(layout).nb_channels
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="ogg") as out:
        stream = out.add_stream(codec, rate=rate, layout=layout, options=options)
        samples = np.repeat(tone(seconds, rate), channels)
        for start in range(0, len(samples), 4096 * channels):
            block = samples[start : start + 4096 * channels].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(block, format="flt", layout=layout)
            frame.sample_rate = rate
            frame.pts = start // channels
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def page_starts(data: bytes) -> list[int]:
    """Offsets of the file's Ogg pages (each ``OggS`` that begins a page)."""
    starts, pos = [], 0
    while pos < len(data):
        assert data[pos : pos + 4] == b"OggS"
        starts.append(pos)
        segments = data[pos + 26]
        pos += 27 + segments + sum(data[pos + 27 : pos + 27 + segments])
    return starts


CODECS = [("libopus", 48_000), ("vorbis", 44_100), ("flac", 16_000)]


@pytest.mark.parametrize(("codec", "rate"), CODECS, ids=[c for c, _ in CODECS])
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_an_ogg_cut_anywhere_is_truncated(codec: str, rate: int, keep: float) -> None:
    whole = ogg(codec, rate)
    assert decode_audio(AudioSource(whole)).duration == pytest.approx(6.0, abs=0.05)
    cut = whole[: int(len(whole) * keep)]
    with pytest.raises(TruncatedAudioError, match=r"Ogg file stops after \d+\.\d s"):
        decode_audio(AudioSource(cut))


@pytest.mark.parametrize(("codec", "rate"), CODECS, ids=[c for c, _ in CODECS])
def test_an_ogg_cut_exactly_between_pages_is_truncated(codec: str, rate: int) -> None:
    whole = ogg(codec, rate)
    starts = page_starts(whole)
    assert ogg_is_complete(whole)
    for start in starts[2:]:  # after the header pages: every cut at a page boundary
        assert not ogg_is_complete(whole[:start])
    with pytest.raises(TruncatedAudioError):
        decode_audio(AudioSource(whole[: starts[len(starts) // 2]]))


def test_bytes_after_the_last_page_do_not_make_a_complete_file_incomplete() -> None:
    whole = ogg("libopus", 48_000)
    assert ogg_is_complete(whole + b"ID3\x04\x00 trailing tag bytes")
    assert decode_audio(AudioSource(whole + b"\x00" * 100)).duration == pytest.approx(6.0, abs=0.05)


def test_a_forged_end_of_stream_header_is_not_a_page() -> None:
    whole = ogg("libopus", 48_000)
    last = page_starts(whole)[-1]
    cut = whole[: last - 100]
    forged = cut + whole[last:]  # the last page's header and body, but after a partial page
    assert ogg_is_complete(forged)  # a whole page with a right CRC closes the stream
    broken = bytearray(whole[last:])
    broken[-1] ^= 0xFF  # its body no longer matches its CRC
    assert not ogg_is_complete(cut + bytes(broken))


def test_the_committed_ogg_clip_is_complete_from_a_path() -> None:
    assert ogg_is_complete(DATA / "tone.ogg")
    assert decode_audio(AudioSource(DATA / "tone.ogg")).container == "ogg"


def test_a_tail_of_forged_pages_is_checked_a_bounded_number_of_times() -> None:
    whole = ogg("libopus", 48_000)
    forged = bytearray(whole[page_starts(whole)[-1] :])
    forged[22] ^= 0xFF  # a well-formed end-of-stream page whose CRC is wrong
    assert ogg_is_complete(whole + bytes(forged) * 7)  # the real last page is the eighth check
    assert not ogg_is_complete(whole + bytes(forged) * 8)

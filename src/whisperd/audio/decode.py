"""Turn any audio input into 16 kHz mono float32 samples, safely.

:func:`decode_audio` accepts an upload's bytes or a path on disk and returns the samples every
engine takes. It is synchronous and CPU-bound; callers run it on a worker thread or process.

Inputs, chosen by :attr:`AudioSource.format`:

* ``"file"``: any audio or video container FFmpeg (through PyAV) can read and that is on the
  allowlist below (wav, mp3, flac, ogg/opus, m4a/mp4/mov, webm/mkv, aac, wma/asf, avi, amr,
  aiff, caf, ...).
* ``"numpy"``: a ``.npy`` file, loaded without pickle.
* ``"tensor"``: a ``torch.save`` file, loaded with ``weights_only=True`` when PyTorch is
  installed.
* ``"pcm"``: headerless little-endian samples of a given dtype and sample rate (never detected).
* ``"auto"`` (the default): ``.npy`` and PyTorch files are recognised by their magic bytes and
  everything else goes to the container decoder. File names are never consulted: browsers
  upload WebM named ``.wav``.

Hardening of the container path, for untrusted input:

* PyAV gets a file object with no ``name`` (only ``read``/``seek``/``tell``), so FFmpeg never
  guesses a demuxer from an extension; demuxers that want one (HLS) are not even probed.
* A ``format_whitelist`` limits the demuxers FFmpeg may use before any header is parsed, the
  same allowlist is checked again on ``container.format.name``, ``protocol_whitelist`` is set to
  a protocol that does not exist, and a deny-all ``io_open`` callable refuses every nested open:
  playlists (HLS, DASH, concat) cannot reach a URL or a local file.
* At least one audio stream is required, and channel count and sample rate are capped.
* Decoding is packet by packet: a packet that fails to decode is counted and skipped (the
  generator-style ``container.decode()`` silently stops at the first error), and too many bad
  packets is an error.
* The decoded duration is counted while decoding and the work stops as soon as
  :attr:`DecodeLimits.max_duration_s` is passed, so a tiny file of compressed silence cannot
  expand into gigabytes.
* Where the container declares its duration in a header (WAV data size, FLAC STREAMINFO, an
  MP3 Xing/Info frame count, the MP4 ``moov``, AIFF, Matroska), decoded audio that falls well
  short of it is reported as truncated (or damaged, when the end was reached but the middle is
  missing).

Every failure is one of the :class:`~whisperd.errors.AudioError` subclasses, with a message meant
for the user; unexpected decoder exceptions become :class:`~whisperd.errors.CorruptAudioError`.
"""

from __future__ import annotations

import importlib
import io
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, NoReturn

import av
import numpy as np
import numpy.typing as npt
import soxr

from whisperd.engine.base import SAMPLE_RATE
from whisperd.errors import (
    AudioTooLongError,
    CorruptAudioError,
    EmptyAudioError,
    SilentAudioError,
    TorchUnavailableError,
    TruncatedAudioError,
    UnsupportedAudioError,
    WhisperdError,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from av.audio.frame import AudioFrame
    from av.audio.stream import AudioStream
    from av.container import InputContainer
    from av.packet import Packet

__all__ = [
    "AudioFormat",
    "AudioSource",
    "DecodeLimits",
    "DecodedAudio",
    "PcmDtype",
    "decode_audio",
]

AudioFormat = Literal["auto", "file", "numpy", "tensor", "pcm"]
"""How to read an :class:`AudioSource`; ``auto`` detects it from the bytes."""

PcmDtype = Literal["int16", "int32", "float32", "float64"]
"""Sample type of raw PCM input (always little-endian)."""

Samples = npt.NDArray[np.float32]

SILENCE_PEAK = 1e-4
"""Peak absolute sample value below which audio counts as digital silence (-80 dBFS)."""

_FORMATS: frozenset[str] = frozenset({"auto", "file", "numpy", "tensor", "pcm"})
_PCM_DTYPES: Mapping[str, str] = MappingProxyType(
    {"int16": "<i2", "int32": "<i4", "float32": "<f4", "float64": "<f8"}
)
_MIN_SAMPLE_RATE = 1_000
_HEAD_BYTES = 65_536
_AV_TIME_BASE = 1_000_000
_TRUNCATION_RATIO = 0.02
_TRUNCATION_SECONDS = 0.5

_ALLOWED_DEMUXERS: frozenset[str] = frozenset(
    {
        # Audio containers and raw audio streams.
        "wav", "w64", "mp3", "flac", "ogg", "aac", "asf", "amr", "amrnb", "amrwb", "aiff",
        "caf", "au", "wv", "ape", "tta", "ac3", "eac3",
        # Audio/video containers ("mov,mp4,m4a,3gp,3g2,mj2" and "matroska,webm" are one each).
        "mov", "mp4", "m4a", "3gp", "3g2", "matroska", "webm", "avi", "flv", "mpeg", "mpegts",
    }
)  # fmt: skip
"""FFmpeg demuxer names that may be used. Everything else (hls, dash, concat, image2, tty,
lavfi, subtitle formats ...) is refused."""

_FORMAT_WHITELIST = ",".join(sorted(_ALLOWED_DEMUXERS))
_DECLARED_BY_FFMPEG: frozenset[str] = frozenset({"mov", "aiff", "matroska"})
"""Demuxers whose duration FFmpeg reads from a header (not estimated from the file size)."""

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
_NOT_CONTAINERS: frozenset[str] = frozenset({"npy", "zip", "torch"})


@dataclass(frozen=True, slots=True)
class AudioSource:
    """One audio input.

    Attributes:
        data: The raw bytes of an upload, or a path on disk (streamed, never read whole).
        format: How to read ``data``; ``"auto"`` detects it from the bytes, never from a name.
        sample_rate: Sample rate of ``numpy``/``tensor``/``pcm`` input; 16000 when ``None``.
        dtype: Sample type of ``pcm`` input; ``"float32"`` when ``None``.
    """

    data: bytes | Path
    format: AudioFormat = "auto"
    sample_rate: int | None = None
    dtype: PcmDtype | None = None


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Caps applied while decoding untrusted input.

    Attributes:
        max_duration_s: Longest decoded duration accepted, enforced while decoding.
        max_bad_packet_ratio: Largest tolerated share of packets that fail to decode.
        max_channels: Most channels accepted.
        max_sample_rate: Highest sample rate accepted, in Hz.
    """

    max_duration_s: float = 4 * 3600.0
    max_bad_packet_ratio: float = 0.01
    max_channels: int = 64
    max_sample_rate: int = 768_000


@dataclass(frozen=True, slots=True)
class DecodedAudio:
    """Decoded audio, ready for an engine.

    Attributes:
        samples: 1-D float32 samples, 16 kHz mono.
        container: What the input was: a container name (``"mp3"``, ``"wav"``, ``"webm"``,
            ``"mp4"`` ...), or ``"numpy"``, ``"tensor"`` or ``"pcm"``.
        bad_packets: Packets that failed to decode and were skipped (within the budget).
    """

    samples: Samples
    container: str
    bad_packets: int = 0

    @property
    def duration(self) -> float:
        """Duration in seconds."""
        return len(self.samples) / SAMPLE_RATE


def decode_audio(source: AudioSource, limits: DecodeLimits | None = None) -> DecodedAudio:
    """Decode ``source`` to 16 kHz mono float32 samples.

    Args:
        source: The input and how to read it.
        limits: Caps for untrusted input; the :class:`DecodeLimits` defaults when ``None``.

    Returns:
        The decoded samples and what the input was.

    Raises:
        EmptyAudioError: The input has no bytes, or no samples could be decoded.
        SilentAudioError: The audio is digital silence (peak below -80 dBFS).
        UnsupportedAudioError: Not an accepted format, no audio stream, a playlist, an unknown
            ``format`` or ``dtype`` value, or a channel count or sample rate over the caps.
        CorruptAudioError: A recognised format that cannot be read, or with too many bad
            packets.
        TruncatedAudioError: The audio ends well before the duration its header declares.
        AudioTooLongError: The decoded audio is longer than ``limits.max_duration_s``.
        TorchUnavailableError: A PyTorch file was sent but PyTorch is not installed.
        OSError: ``source.data`` is a path that cannot be read.
    """
    limits = limits or DecodeLimits()
    if source.format not in _FORMATS:
        raise UnsupportedAudioError(
            f"Unknown audio format {source.format!r}; use one of: auto, file, numpy, tensor, pcm."
        )
    if _input_size(source.data) == 0:
        raise EmptyAudioError("The audio file is empty (0 bytes); send a file with audio in it.")
    try:
        return _dispatch(source, limits)
    except (WhisperdError, MemoryError):
        raise
    except Exception as exc:
        raise CorruptAudioError(f"The audio could not be decoded: {_reason(exc)}.") from exc


def _dispatch(source: AudioSource, limits: DecodeLimits) -> DecodedAudio:
    """Route ``source`` to the decoder for its format."""
    if source.format == "pcm":
        return _decode_pcm(source, limits)
    head = _read_head(source.data)
    kind = _resolve_kind(source, head)
    if kind == "numpy":
        return _decode_npy(source, limits)
    if kind == "tensor":
        return _decode_tensor(source, limits)
    return _decode_container(source, head, limits)


# --------------------------------------------------------------------------------------------
# Input plumbing and detection


def _input_size(data: bytes | Path) -> int:
    """Size of the input in bytes (``stat`` for a path)."""
    return data.stat().st_size if isinstance(data, Path) else len(data)


def _open_binary(data: bytes | Path) -> BinaryIO:
    """A binary file object over the input; use it as a context manager."""
    return data.open("rb") if isinstance(data, Path) else io.BytesIO(data)


def _read_head(data: bytes | Path) -> bytes:
    """The first bytes of the input, for magic-byte detection and header parsing."""
    if not isinstance(data, Path):
        return data[:_HEAD_BYTES]
    with data.open("rb") as file:
        return file.read(_HEAD_BYTES)


def _sniff(head: bytes) -> str | None:
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


def _resolve_kind(source: AudioSource, head: bytes) -> Literal["file", "numpy", "tensor"]:
    """Which decoder reads ``source``: the given format, or the one its bytes show."""
    if source.format == "numpy":
        if _sniff(head) != "npy":
            raise UnsupportedAudioError(
                "The input is not a NumPy .npy file (its magic bytes are missing); "
                "send an array saved with numpy.save, or use format 'auto'."
            )
        return "numpy"
    if source.format == "file":
        return "file"
    if source.format == "tensor":
        return "tensor"
    kind = _sniff(head)
    if kind == "npy":
        return "numpy"
    if kind == "torch" or (kind == "zip" and _is_torch_zip(source.data)):
        return "tensor"
    return "file"


def _is_torch_zip(data: bytes | Path) -> bool:
    """Whether a zip archive looks like a ``torch.save`` file (it holds a ``data.pkl``)."""
    try:
        with _open_binary(data) as file, zipfile.ZipFile(file) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return any(name == "data.pkl" or name.endswith("/data.pkl") for name in names)


def _reason(exc: BaseException) -> str:
    """A short, single-line reason from a library exception (FFmpeg's text, no errno)."""
    strerror = exc.strerror if isinstance(exc, OSError | av.error.FFmpegError) else None
    text = (strerror or str(exc)).strip().rstrip(".") or type(exc).__name__
    return " ".join(text.split())[:300]


def _source_rate(source: AudioSource, limits: DecodeLimits) -> int:
    """The caller-given sample rate (16 kHz when unset), validated."""
    rate = SAMPLE_RATE if source.sample_rate is None else source.sample_rate
    if (
        isinstance(rate, bool)
        or not isinstance(rate, int)
        or not _MIN_SAMPLE_RATE <= rate <= limits.max_sample_rate
    ):
        raise UnsupportedAudioError(
            f"Sample rate {rate!r} is not supported; give a whole number of Hz between "
            f"{_MIN_SAMPLE_RATE} and {limits.max_sample_rate}.",
            param="sample_rate",
        )
    return rate


def _check_duration(seconds: float, limits: DecodeLimits) -> None:
    """Raise :class:`AudioTooLongError` when ``seconds`` is over the cap."""
    if seconds > limits.max_duration_s:
        raise AudioTooLongError(
            f"The audio is longer than the {_clock(limits.max_duration_s)} limit; "
            "split it into shorter parts and send them one by one."
        )


def _clock(seconds: float) -> str:
    """Format a duration: ``N s`` below a minute, else ``H:MM:SS``."""
    if seconds < 60:
        return f"{seconds:g} s"
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _finish(samples: Samples, container: str, bad_packets: int = 0) -> DecodedAudio:
    """Reject empty and digitally silent audio and wrap the result."""
    if samples.size == 0:
        raise EmptyAudioError(
            "No audio samples could be decoded from the input; it holds no audio."
        )
    peak = max(float(samples.max()), -float(samples.min()))
    if peak < SILENCE_PEAK:
        raise SilentAudioError(
            "The audio is digital silence (peak below -80 dBFS), so there is nothing to "
            "transcribe; check the microphone or the recording."
        )
    if not samples.flags.writeable or not samples.flags.c_contiguous:
        samples = np.array(samples, dtype=np.float32, order="C")
    return DecodedAudio(samples=samples, container=container, bad_packets=bad_packets)


# --------------------------------------------------------------------------------------------
# Arrays: .npy, PyTorch tensors and raw PCM


def _decode_pcm(source: AudioSource, limits: DecodeLimits) -> DecodedAudio:
    """Read headerless little-endian PCM of ``source.dtype`` at ``source.sample_rate``."""
    name = source.dtype or "float32"
    if name not in _PCM_DTYPES:
        raise UnsupportedAudioError(
            f"Unknown PCM sample type {name!r}; use int16, int32, float32 or float64.",
            param="dtype",
        )
    dtype = np.dtype(_PCM_DTYPES[name])
    rate = _source_rate(source, limits)
    size = _input_size(source.data)
    if size % dtype.itemsize:
        raise CorruptAudioError(
            f"Raw PCM of {size} bytes is not a whole number of {name} samples "
            f"({dtype.itemsize} bytes each); the stream was cut or the dtype is wrong."
        )
    _check_duration(size // dtype.itemsize / rate, limits)
    if isinstance(source.data, Path):
        array: npt.NDArray[Any] = np.fromfile(source.data, dtype=dtype)
    else:
        array = np.frombuffer(source.data, dtype=dtype)
    return _array_to_audio(array, rate, limits, "pcm")


def _decode_npy(source: AudioSource, limits: DecodeLimits) -> DecodedAudio:
    """Load a ``.npy`` array (no pickle) after checking its header against the caps."""
    rate = _source_rate(source, limits)
    with _open_binary(source.data) as file:
        shape, dtype = _read_npy_header(file)
        available = _input_size(source.data) - file.tell()
        if math.prod(shape) * dtype.itemsize > available:
            raise CorruptAudioError(
                "The .npy file is shorter than the array its header declares; "
                "it was cut off or damaged."
            )
        frames, _ = _frames_and_channel_axis(_squeezed_shape(shape))
        _check_duration(frames / rate, limits)
        file.seek(0)
        array: npt.NDArray[Any] = np.load(file, allow_pickle=False)
    return _array_to_audio(array, rate, limits, "numpy")


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


def _decode_tensor(source: AudioSource, limits: DecodeLimits) -> DecodedAudio:
    """Load a ``torch.save`` file with ``weights_only=True`` and decode its tensor."""
    torch = _import_torch()
    rate = _source_rate(source, limits)
    with _open_binary(source.data) as file:
        try:
            loaded = torch.load(file, weights_only=True, map_location="cpu")
        except Exception as exc:
            raise CorruptAudioError(
                f"The PyTorch file could not be loaded safely: {_reason(exc)}. "
                "Send a file made by torch.save(tensor) that holds only a tensor."
            ) from exc
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
    return _array_to_audio(array, rate, limits, "tensor")


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
    array: npt.NDArray[Any], rate: int, limits: DecodeLimits, container: str
) -> DecodedAudio:
    """Validate an array, mix it to mono float32 and resample it to 16 kHz."""
    array = array.reshape(_squeezed_shape(array.shape))
    if array.size == 0:
        raise EmptyAudioError("The audio array is empty; send at least one sample.")
    frames, channel_axis = _frames_and_channel_axis(array.shape)
    if channel_axis is not None and array.shape[channel_axis] > limits.max_channels:
        raise UnsupportedAudioError(
            f"The array has {array.shape[channel_axis]} channels, more than the "
            f"{limits.max_channels} accepted; mix it down before sending."
        )
    _check_duration(frames / rate, limits)
    mono = _to_float32(array)
    if channel_axis is not None:
        mono = mono.mean(axis=channel_axis, dtype=np.float32)
    if not np.isfinite(mono).all():
        raise CorruptAudioError(
            "The audio array contains NaN or infinite (or out of float32 range) values; "
            "send finite samples, ideally in [-1, 1]."
        )
    return _finish(_resample(mono, rate), container)


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


# --------------------------------------------------------------------------------------------
# Containers through PyAV


class _NamelessReader:
    """A read-only file object with no ``name``, so FFmpeg cannot guess from an extension."""

    __slots__ = ("_raw",)

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw

    def read(self, size: int = -1) -> bytes:
        return self._raw.read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()


class _NestedOpenGuard:
    """An ``io_open`` callable that refuses every nested open and remembers the attempt."""

    __slots__ = ("attempts",)

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def __call__(self, url: str, flags: int, options: object) -> NoReturn:
        self.attempts.append(url)
        raise PermissionError(f"nested open blocked: {url}")


_RESAMPLE_GROUP = 1 << 18
"""Decoded samples gathered before one resampler call."""


@dataclass(slots=True)
class _DecodeState:
    """Running counts for one container decode."""

    limits: DecodeLimits
    time_base: float = 0.0
    chunks: list[Samples] = field(default_factory=list)
    resampler: av.AudioResampler | None = None
    fifo: av.AudioFifo | None = None
    frame_key: tuple[int, str, str] | None = None
    decoded_s: float = 0.0
    packets: int = 0
    bad: int = 0
    last_bad: bool = False
    end_pts: int | None = None

    @property
    def end_seconds(self) -> float | None:
        """Where the last timestamped packet ends, in seconds (``None`` without timestamps)."""
        return None if self.end_pts is None else self.end_pts * self.time_base

    def note_packet(self, packet: Packet[AudioStream]) -> None:
        """Count a data packet and note where it ends."""
        self.packets += 1
        if packet.pts is not None:
            end = packet.pts + (packet.duration or 0)
            self.end_pts = end if self.end_pts is None else max(self.end_pts, end)

    def add_frame(self, frame: AudioFrame) -> None:
        """Check and count a decoded frame, then resample it to 16 kHz mono float."""
        _check_frame(frame, self.limits)
        self.decoded_s += frame.samples / frame.sample_rate
        _check_duration(self.decoded_s, self.limits)
        key = (frame.sample_rate, frame.layout.name, frame.format.name)
        if self.resampler is None or self.fifo is None or key != self.frame_key:
            self.flush()
            self.resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            self.fifo = av.AudioFifo()
            self.frame_key = key
        frame.pts = None
        self.fifo.write(frame)
        # Resampling in large groups instead of per frame halves the decode time.
        if self.fifo.samples >= _RESAMPLE_GROUP:
            self._collect(self.resampler.resample(self.fifo.read()))

    def flush(self) -> None:
        """Drain the current FIFO and resampler, if any."""
        if self.resampler is not None:
            if self.fifo is not None and self.fifo.samples:
                self._collect(self.resampler.resample(self.fifo.read()))
            self._collect(self.resampler.resample(None))
            self.resampler = None
            self.fifo = None

    def samples(self) -> Samples:
        """Every resampled sample so far, as one array."""
        self.flush()
        if not self.chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self.chunks)

    def _collect(self, frames: list[AudioFrame]) -> None:
        for out in frames:
            if out is not None and out.samples:
                self.chunks.append(np.asarray(out.to_ndarray(), dtype=np.float32).reshape(-1))


def _check_frame(frame: AudioFrame, limits: DecodeLimits) -> None:
    """Apply the channel and sample-rate caps to one decoded frame."""
    _check_stream_shape(frame.layout.nb_channels, frame.sample_rate, limits)


def _check_stream_shape(channels: int, rate: int, limits: DecodeLimits) -> None:
    """Refuse a channel count or sample rate over the caps."""
    if channels > limits.max_channels:
        raise UnsupportedAudioError(
            f"The audio has {channels} channels, more than the {limits.max_channels} accepted; "
            "mix it down before sending."
        )
    if rate > limits.max_sample_rate:
        raise UnsupportedAudioError(
            f"The audio's sample rate of {rate} Hz is above the {limits.max_sample_rate} Hz "
            "accepted; resample it before sending."
        )


def _decode_container(source: AudioSource, head: bytes, limits: DecodeLimits) -> DecodedAudio:
    """Decode an audio/video container with PyAV, hardened for untrusted input."""
    guard = _NestedOpenGuard()
    with _open_binary(source.data) as raw:
        container = _open_container(_NamelessReader(raw), guard, head)
        with container:
            demuxer = _check_demuxer(container)
            stream = _audio_stream(container, limits)
            state = _DecodeState(limits, float(stream.time_base or 0))
            _decode_packets(container, stream, state)
            samples = state.samples()
            declared = _declared_seconds(demuxer, container, stream, head)
            _check_integrity(state, declared)
            label = _container_label(demuxer, container, head)
    return _finish(samples, label, state.bad)


def _open_container(
    reader: _NamelessReader, guard: _NestedOpenGuard, head: bytes
) -> InputContainer:
    """Open ``reader`` with PyAV under the demuxer and protocol allowlists."""
    try:
        return av.open(
            reader,
            mode="r",
            container_options={
                "format_whitelist": _FORMAT_WHITELIST,
                "protocol_whitelist": "none",
            },
            metadata_errors="ignore",
            io_open=guard,
        )
    except Exception as exc:
        _raise_open_failure(exc, guard, head)


def _raise_open_failure(exc: Exception, guard: _NestedOpenGuard, head: bytes) -> NoReturn:
    """Explain why FFmpeg could not open the input."""
    if guard.attempts:
        raise UnsupportedAudioError(
            "The file refers to other files or URLs (a playlist or similar), which is not "
            "accepted; send the audio itself."
        ) from exc
    kind = _sniff(head)
    if kind is not None and kind not in _NOT_CONTAINERS:
        raise CorruptAudioError(
            f"The file looks like {kind} but could not be opened ({_reason(exc)}); it is "
            "damaged or incomplete."
        ) from exc
    raise UnsupportedAudioError(
        "The file is not in a recognised audio or video format; send e.g. mp3, wav, flac, "
        "ogg, m4a, mp4 or webm."
    ) from exc


def _check_demuxer(container: InputContainer) -> str:
    """Refuse demuxers not on the allowlist; return the primary demuxer name."""
    names = container.format.name.split(",")
    if not _ALLOWED_DEMUXERS.intersection(names):
        raise UnsupportedAudioError(
            f"Files in the {container.format.name!r} format are not accepted; send e.g. mp3, "
            "wav, flac, ogg, m4a, mp4 or webm."
        )
    return names[0]


def _audio_stream(container: InputContainer, limits: DecodeLimits) -> AudioStream:
    """The first audio stream, within the channel and sample-rate caps."""
    if not container.streams.audio:
        raise UnsupportedAudioError("The file has no audio track; send a file that contains sound.")
    stream = container.streams.audio[0]
    context = stream.codec_context
    _check_stream_shape(context.channels, context.sample_rate, limits)
    return stream


def _decode_packets(container: InputContainer, stream: AudioStream, state: _DecodeState) -> None:
    """Demux and decode ``stream`` packet by packet, counting the packets that fail."""
    try:
        for packet in container.demux(stream):
            _decode_packet(packet, state)
    except av.error.FFmpegError:
        # A demuxer error ends the input, as it does for the ffmpeg tool; like a cut-off
        # last packet it does not count against the budget, but truncation checks still run.
        state.bad += 1
        state.packets += 1
        state.last_bad = True


def _decode_packet(packet: Packet[AudioStream], state: _DecodeState) -> None:
    """Decode one packet into ``state``; a decoder error marks the packet bad."""
    is_data = packet.size > 0
    if is_data:
        state.note_packet(packet)
    try:
        frames = packet.decode()
    except av.error.FFmpegError:
        if is_data:
            state.bad += 1
            state.last_bad = True
        return
    if is_data:
        state.last_bad = False
    for frame in frames:
        try:
            state.add_frame(frame)
        except av.error.FFmpegError as exc:
            raise CorruptAudioError(
                f"The audio could not be converted to 16 kHz mono: {_reason(exc)}."
            ) from exc


def _check_integrity(state: _DecodeState, declared: float | None) -> None:
    """Raise when packets failed beyond the budget, or the audio ends early."""
    if state.packets == 0:
        raise EmptyAudioError("The file has an audio track, but it holds no audio data.")
    if state.bad >= state.packets:
        raise CorruptAudioError(
            f"None of the file's {state.packets} audio packets could be decoded; "
            "the file is damaged or not what its header says."
        )
    counted = state.bad - (1 if state.last_bad else 0)
    budget = state.limits.max_bad_packet_ratio
    if counted > budget * state.packets:
        raise CorruptAudioError(
            f"{counted} of the file's {state.packets} audio packets could not be decoded, "
            f"more than the {budget:.1%} tolerated; the file is damaged."
        )
    if declared is not None:
        _check_complete(state, declared)


def _check_complete(state: _DecodeState, declared: float) -> None:
    """Compare the decoded duration with the duration the header declares."""
    tolerance = max(_TRUNCATION_SECONDS, _TRUNCATION_RATIO * declared)
    missing = declared - state.decoded_s
    if missing <= tolerance:
        return
    if state.end_seconds is not None and declared - state.end_seconds <= tolerance:
        raise CorruptAudioError(
            f"{missing:.1f} s of the {declared:.1f} s of audio the file declares could not be "
            "decoded although the file runs to its end; it is damaged in the middle."
        )
    raise TruncatedAudioError(
        f"The file declares {declared:.1f} s of audio but only {state.decoded_s:.1f} s could be "
        "decoded; it was probably cut off during upload or recording. Send the complete file."
    )


def _declared_seconds(
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


def _riff_chunks(head: bytes) -> list[tuple[bytes, int, int]]:
    """``(id, payload offset, size)`` of the RIFF chunks whose headers lie within ``head``."""
    chunks: list[tuple[bytes, int, int]] = []
    pos = 12
    while pos + 8 <= len(head):
        size = int.from_bytes(head[pos + 4 : pos + 8], "little")
        chunks.append((head[pos : pos + 4], pos + 8, size))
        pos += 8 + size + (size & 1)
    return chunks


def _wav_declared_seconds(head: bytes) -> float | None:
    """Duration from a PCM WAV header's data size and byte rate (``None`` for placeholders)."""
    riff_size = int.from_bytes(head[4:8], "little")
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE" or riff_size in (0, 0xFFFFFFFF):
        return None
    byte_rate = 0
    for chunk_id, offset, size in _riff_chunks(head):
        if chunk_id == b"fmt " and size >= 16 and offset + 16 <= len(head):
            codec = int.from_bytes(head[offset : offset + 2], "little")
            pcm = codec in (1, 3, 0xFFFE)
            byte_rate = int.from_bytes(head[offset + 8 : offset + 12], "little") if pcm else 0
        elif chunk_id == b"data":
            if byte_rate <= 0 or size in (0, 0xFFFFFFFF) or size > riff_size:
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


def _container_label(demuxer: str, container: InputContainer, head: bytes) -> str:
    """A friendly container name: ``webm`` rather than ``matroska``, ``m4a`` rather than ``mov``."""
    if demuxer == "matroska":
        return "webm" if b"webm" in head[:128] else "matroska"
    if demuxer == "mov":
        brand = container.metadata.get("major_brand", "").strip().lower()
        if brand == "qt":
            return "mov"
        if brand.startswith(("m4a", "m4b")):
            return "m4a"
        return "3gp" if brand.startswith("3g") else "mp4"
    return demuxer

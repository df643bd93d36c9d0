"""Audio and video containers through PyAV (FFmpeg), hardened for untrusted input.

* PyAV gets a file object with no ``name`` (only ``read``/``seek``/``tell``), so FFmpeg never
  guesses a demuxer from an extension; demuxers that want one (HLS) are not even probed.
* A ``format_whitelist`` limits the demuxers FFmpeg may use before any header is parsed, the
  same allowlist is checked again on ``container.format.name``, ``protocol_whitelist`` is set to
  a protocol that does not exist, and a deny-all ``io_open`` callable refuses every nested open:
  playlists (HLS, DASH, concat) cannot reach a URL or a local file.
* At least one audio stream is required, and channel count and sample rate are capped.
* FFmpeg resamples every channel to 16 kHz float and the channels are then averaged
  (:mod:`whisperd.audio.mixing`); FFmpeg's own float downmix is 3 dB too loud.
* Decoding is packet by packet: a packet that fails to decode is counted and skipped (the
  generator-style ``container.decode()`` silently stops at the first error), and too many bad
  packets is an error.
* Where the container declares its duration (see :mod:`whisperd.audio.durations`), a duration
  over :attr:`~whisperd.audio.limits.DecodeLimits.max_duration_s` is refused before decoding,
  and the declared duration is reserved at once and sizes the output buffer.
* The decoded duration is counted while decoding and the work stops as soon as
  :attr:`~whisperd.audio.limits.DecodeLimits.max_duration_s` is passed, so a tiny file of
  compressed silence cannot expand into gigabytes; the samples go straight into one
  :class:`~whisperd.audio.buffer.SampleBuffer`, which asks the caller's
  :data:`~whisperd.audio.buffer.Reserve` for every minute more it holds.
* NaN and infinite samples of float codecs are zeroed before resampling (one would spread over
  its neighbours), and too many of them is an error (:mod:`whisperd.audio.finite`).
* Where the container declares its duration in a header, decoded audio that falls well short of
  it is reported as truncated (or damaged, when the end was reached but the middle is missing);
  an Ogg file must end its stream with an end-of-stream page (:mod:`whisperd.audio.ogg`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, BinaryIO, NoReturn

import av
import numpy as np

from whisperd.audio.buffer import Reserve, SampleBuffer
from whisperd.audio.decoded import DecodedAudio, Samples, failure_reason, finish
from whisperd.audio.durations import declared_seconds, expected_seconds
from whisperd.audio.finite import NonFiniteCount, zero_nonfinite
from whisperd.audio.limits import DecodeLimits, check_duration, check_stream_shape
from whisperd.audio.mixing import mix_to_mono, split_channels
from whisperd.audio.ogg import ogg_is_complete
from whisperd.audio.sniffing import NOT_CONTAINERS, sniff
from whisperd.audio.source import AudioSource, open_binary
from whisperd.engine.base import SAMPLE_RATE
from whisperd.errors import (
    CorruptAudioError,
    EmptyAudioError,
    TruncatedAudioError,
    UnsupportedAudioError,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from av.audio.frame import AudioFrame
    from av.audio.stream import AudioStream
    from av.container import InputContainer
    from av.packet import Packet

__all__ = ["decode_container"]

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

_FLOAT_FORMATS: Mapping[str, type[np.floating]] = MappingProxyType(
    {"flt": np.float32, "fltp": np.float32, "dbl": np.float64, "dblp": np.float64}
)
"""FFmpeg sample formats that can hold NaN or infinite samples, and their numpy types."""
_MAX_PLANES = 8
"""Planes PyAV can reach in one frame (FFmpeg's ``AV_NUM_DATA_POINTERS``)."""


@dataclass(slots=True)
class _DecodeState:
    """Running counts for one container decode."""

    limits: DecodeLimits
    buffer: SampleBuffer
    time_base: float = 0.0
    nonfinite: NonFiniteCount = field(init=False)
    resampler: av.AudioResampler | None = None
    fifo: av.AudioFifo | None = None
    frame_key: tuple[int, str, str] | None = None
    decoded_s: float = 0.0
    packets: int = 0
    bad: int = 0
    last_bad: bool = False
    end_pts: int | None = None
    kept: list[Samples] | None = None
    """Resampled frames with their channels apart, when the source keeps channels."""

    def __post_init__(self) -> None:
        self.nonfinite = NonFiniteCount(self.limits.max_nonfinite_ratio)

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
        check_duration(self.decoded_s, self.limits)
        _zero_nonfinite_frame(frame, self.nonfinite)
        key = (frame.sample_rate, frame.layout.name, frame.format.name)
        if self.resampler is None or self.fifo is None or key != self.frame_key:
            self.flush()
            # Every channel is resampled and the mean taken in _collect: FFmpeg's own downmix
            # to float mono is 0.707 * (L + R) (no normalisation), not the mean.
            self.resampler = av.AudioResampler(format="flt", layout=frame.layout, rate=SAMPLE_RATE)
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
        """Every resampled sample so far, as one array over the buffer's memory."""
        self.flush()
        return self.buffer.take()

    def _collect(self, frames: list[AudioFrame]) -> None:
        """Keep the mono mix (the mean of the channels) of resampled frames.

        The frames are packed (interleaved) because PyAV handles at most eight planes
        (FFmpeg's ``AV_NUM_DATA_POINTERS``): reading a planar frame of more channels crashes.
        """
        for out in frames:
            if out is not None and out.samples:
                packed = np.asarray(out.to_ndarray(), dtype=np.float32)
                channels = packed.reshape(out.samples, -1)
                self.buffer.append(mix_to_mono(channels, channel_axis=1))
                if self.kept is not None:
                    self.kept.append(channels.copy())


def _check_frame(frame: AudioFrame, limits: DecodeLimits) -> None:
    """Apply the channel and sample-rate caps to one decoded frame."""
    check_stream_shape(frame.layout.nb_channels, frame.sample_rate, limits)


def _zero_nonfinite_frame(frame: AudioFrame, count: NonFiniteCount) -> None:
    """Zero the NaN and infinite samples of a float frame in place, and count them.

    A planar frame of more than eight channels is left alone: PyAV cannot reach its planes
    past the eighth (see :meth:`_DecodeState._collect`), and no codec on the allowlist makes
    one in practice; :func:`~whisperd.audio.decoded.finish` still zeroes what the resampler
    made of any NaN in it.
    """
    channels = frame.layout.nb_channels
    dtype = _FLOAT_FORMATS.get(frame.format.name)
    planar = frame.format.is_planar
    zeroed = 0
    if dtype is not None and not (planar and channels > _MAX_PLANES):
        per_plane = frame.samples if planar else frame.samples * channels
        for index in range(channels if planar else 1):
            plane = memoryview(frame.planes[index])
            values = np.frombuffer(plane, dtype=dtype, count=per_plane)
            zeroed += zero_nonfinite(values, in_place=True)[1]
    count.add(frame.samples * channels, zeroed)


def decode_container(
    source: AudioSource, head: bytes, limits: DecodeLimits, reserve: Reserve | None = None
) -> DecodedAudio:
    """Decode an audio/video container with PyAV, hardened for untrusted input.

    ``reserve`` is told the seconds of decoded audio about to be held (the declared duration
    at once, where there is one), and may raise to stop the decode.
    """
    guard = _NestedOpenGuard()
    with open_binary(source.data) as raw:
        container = _open_container(_NamelessReader(raw), guard, head)
        with container:
            demuxer = _check_demuxer(container)
            stream = _audio_stream(container, limits)
            declared = declared_seconds(demuxer, container, stream, head)
            expected = expected_seconds(demuxer, stream, declared)
            if expected is not None:
                check_duration(expected, limits)
            frames = None if expected is None else round(expected * SAMPLE_RATE)
            buffer = SampleBuffer(frames, reserve=reserve)
            state = _DecodeState(limits, buffer, float(stream.time_base or 0))
            state.kept = [] if source.keep_channels else None
            _decode_packets(container, stream, state)
            samples = state.samples()
            _check_integrity(state, declared)
            if demuxer == "ogg" and not ogg_is_complete(source.data):
                _raise_cut_ogg(state)
            state.nonfinite.check()
            label = _container_label(demuxer, container, head)
    return finish(samples, label, state.bad, split_channels(state.kept or []))


def _raise_cut_ogg(state: _DecodeState) -> NoReturn:
    """Refuse an Ogg file that does not end its stream (see :mod:`whisperd.audio.ogg`)."""
    raise TruncatedAudioError(
        f"The Ogg file stops after {state.decoded_s:.1f} s of audio without the end-of-stream "
        "page that closes a complete file; it was probably cut off during upload or recording. "
        "Send the complete file."
    )


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
    kind = sniff(head)
    if kind is not None and kind not in NOT_CONTAINERS:
        raise CorruptAudioError(
            f"The file looks like {kind} but could not be opened ({failure_reason(exc)}); it is "
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
    check_stream_shape(context.channels, context.sample_rate, limits)
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
                f"The audio could not be converted to 16 kHz mono: {failure_reason(exc)}."
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

"""Turn any audio input into 16 kHz mono float32 samples, safely.

:func:`decode_audio` accepts an upload's bytes or a path on disk and returns the samples every
engine takes. It is synchronous and CPU-bound; callers run it on a worker thread or process.

Inputs, chosen by :attr:`AudioSource.format`:

* ``"file"``: any audio or video container FFmpeg (through PyAV) can read and that is on the
  allowlist (wav, mp3, flac, ogg/opus, m4a/mp4/mov, webm/mkv, aac, wma/asf, avi, amr, aiff, caf,
  ...); :mod:`whisperd.audio.containers` describes how that path is hardened.
* ``"numpy"``: a ``.npy`` file, loaded without pickle.
* ``"tensor"``: a ``torch.save`` file, loaded with ``weights_only=True`` when PyTorch is
  installed.
* ``"pcm"``: headerless little-endian samples of a given dtype and sample rate (never detected).
* ``"auto"`` (the default): ``.npy`` and PyTorch files are recognised by their magic bytes and
  everything else goes to the container decoder. File names are never consulted: browsers
  upload WebM named ``.wav``.

Array inputs are read by :mod:`whisperd.audio.arrays`, containers by
:mod:`whisperd.audio.containers`; this module detects which one applies and gives every failure
one shape. Every path zeroes NaN and infinite samples as dropouts and refuses an input with too
many of them (:mod:`whisperd.audio.finite`), and tells the caller's ``reserve`` how much decoded
audio it is about to hold before it holds it (:mod:`whisperd.audio.buffer`).

Every failure is one of the :class:`~whisperd.errors.AudioError` subclasses, with a
message meant for the user; unexpected decoder exceptions become
:class:`~whisperd.errors.CorruptAudioError`.
"""

from __future__ import annotations

from typing import Literal

from whisperd.audio.arrays import decode_npy, decode_pcm, decode_tensor
from whisperd.audio.buffer import Reserve
from whisperd.audio.containers import decode_container
from whisperd.audio.decoded import DecodedAudio, failure_reason
from whisperd.audio.limits import DecodeLimits, check_min_duration
from whisperd.audio.sniffing import is_torch_zip, sniff
from whisperd.audio.source import (
    AUDIO_FORMATS,
    AudioFormat,
    AudioSource,
    PcmDtype,
    input_size,
    read_head,
)
from whisperd.errors import (
    CorruptAudioError,
    EmptyAudioError,
    UnsupportedAudioError,
    WhisperdError,
)

__all__ = [
    "AudioFormat",
    "AudioSource",
    "DecodeLimits",
    "DecodedAudio",
    "PcmDtype",
    "Reserve",
    "decode_audio",
]


def decode_audio(
    source: AudioSource, limits: DecodeLimits | None = None, reserve: Reserve | None = None
) -> DecodedAudio:
    """Decode ``source`` to 16 kHz mono float32 samples.

    Memory: the decoded samples (4 bytes per sample, 230 MB per hour) plus a small constant for
    containers; array inputs also hold the input array and its conversions.

    Args:
        source: The input and how to read it.
        limits: Caps for untrusted input; the :class:`DecodeLimits` defaults when ``None``.
        reserve: Told the seconds of decoded audio about to be held (a container's declared
            duration before decoding, then more per minute decoded); what it raises ends the
            decode and is passed on unchanged.

    Returns:
        The decoded samples and what the input was. Digital silence is decoded like any
        audio (:attr:`DecodedAudio.is_silent` tells it); multi-channel audio is mixed to the
        mean of its channels (:mod:`whisperd.audio.mixing`).

    Raises:
        EmptyAudioError: The input has no bytes, or no samples could be decoded.
        AudioTooShortError: The decoded audio is shorter than ``limits.min_duration_s``.
        UnsupportedAudioError: Not an accepted format, no audio stream, a playlist, an unknown
            ``format`` or ``dtype`` value, or a channel count or sample rate over the caps.
        CorruptAudioError: A recognised format that cannot be read, with too many bad
            packets, or with more than ``limits.max_nonfinite_ratio`` NaN or infinite samples.
        TruncatedAudioError: The audio ends well before the duration its header declares, or
            an Ogg file ends without its end-of-stream page.
        AudioTooLongError: The declared or decoded audio is longer than
            ``limits.max_duration_s``.
        TorchUnavailableError: A PyTorch file was sent but PyTorch is not installed.
        OSError: ``source.data`` is a path that cannot be read.
    """
    limits = limits or DecodeLimits()
    if source.format not in AUDIO_FORMATS:
        raise UnsupportedAudioError(
            f"Unknown audio format {source.format!r}; use one of: auto, file, numpy, tensor, pcm."
        )
    if input_size(source.data) == 0:
        raise EmptyAudioError("The audio file is empty (0 bytes); send a file with audio in it.")
    try:
        decoded = _dispatch(source, limits, reserve)
    except (WhisperdError, MemoryError):
        raise
    except Exception as exc:
        raise CorruptAudioError(f"The audio could not be decoded: {failure_reason(exc)}.") from exc
    check_min_duration(decoded.duration, limits)
    return decoded


def _dispatch(source: AudioSource, limits: DecodeLimits, reserve: Reserve | None) -> DecodedAudio:
    """Route ``source`` to the decoder for its format."""
    if source.format == "pcm":
        return decode_pcm(source, limits, reserve)
    head = read_head(source.data)
    kind = _resolve_kind(source, head)
    if kind == "numpy":
        return decode_npy(source, limits, reserve)
    if kind == "tensor":
        return decode_tensor(source, limits, reserve)
    return decode_container(source, head, limits, reserve)


def _resolve_kind(source: AudioSource, head: bytes) -> Literal["file", "numpy", "tensor"]:
    """Which decoder reads ``source``: the given format, or the one its bytes show."""
    if source.format == "numpy":
        if sniff(head) != "npy":
            raise UnsupportedAudioError(
                "The input is not a NumPy .npy file (its magic bytes are missing); "
                "send an array saved with numpy.save, or use format 'auto'."
            )
        return "numpy"
    if source.format == "file":
        return "file"
    if source.format == "tensor":
        return "tensor"
    kind = sniff(head)
    if kind == "npy":
        return "numpy"
    if kind == "torch" or (kind == "zip" and is_torch_zip(source.data)):
        return "tensor"
    return "file"

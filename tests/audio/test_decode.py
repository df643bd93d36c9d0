"""Tests for :mod:`whisperd.audio.decode`: every input kind, every error, and the hardening."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import subprocess
import sys
import threading
import time
import wave
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import av
import numpy as np
import pytest

from whisperd.audio.decode import (
    AudioFormat,
    AudioSource,
    DecodedAudio,
    DecodeLimits,
    PcmDtype,
    decode_audio,
)
from whisperd.errors import (
    AudioError,
    AudioTooLongError,
    AudioTooShortError,
    CorruptAudioError,
    EmptyAudioError,
    TorchUnavailableError,
    TruncatedAudioError,
    UnsupportedAudioError,
)
from whisperd.testing.speech import espeak_available

DATA = Path(__file__).resolve().parents[1] / "data"
RATE = 16_000


def _load_make_clips() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_clips", DATA / "make_clips.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mc = _load_make_clips()


def dominant_frequency(samples: np.ndarray, rate: int = RATE) -> float:
    """Frequency (Hz) of the strongest FFT bin, Hann-windowed, DC excluded."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    spectrum[0] = 0.0
    return float(np.argmax(spectrum) * rate / len(samples))


def rms_dbfs(samples: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))))


def decode_bytes(data: bytes, **kwargs: Any) -> DecodedAudio:
    limits = kwargs.pop("limits", None)
    return decode_audio(AudioSource(data, **kwargs), limits)


def has_encoder(codec: str) -> bool:
    try:
        av.codec.Codec(codec, "w")
    except Exception:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Containers: round trips through PyAV encoders

# id, muxer, encoder, sample rate, layout, bit rate, encoder options, expected container label
ROUND_TRIPS = [
    ("wav", "wav", "pcm_s16le", 44_100, "stereo", None, None, "wav"),
    ("flac", "flac", "flac", 48_000, "mono", None, None, "flac"),
    ("mp3", "mp3", "libmp3lame", 44_100, "stereo", None, None, "mp3"),
    ("m4a-aac", "ipod", "aac", 44_100, "mono", None, None, "m4a"),
    ("mp4-aac", "mp4", "aac", 48_000, "mono", None, None, "mp4"),
    ("adts-aac", "adts", "aac", 16_000, "mono", None, None, "aac"),
    ("ogg-vorbis", "ogg", "vorbis", 44_100, "stereo", None, {"strict": "experimental"}, "ogg"),
    ("ogg-opus", "opus", "libopus", 48_000, "mono", None, None, "ogg"),
    ("webm-opus", "webm", "libopus", 48_000, "stereo", None, None, "webm"),
    ("mkv-aac", "matroska", "aac", 44_100, "mono", None, None, "matroska"),
    ("mov-alac", "mov", "alac", 44_100, "mono", None, None, "mov"),
    ("3gp-aac", "3gp", "aac", 16_000, "mono", None, None, "3gp"),
    ("avi-mp3", "avi", "libmp3lame", 22_050, "mono", None, None, "avi"),
    ("asf-wma", "asf", "wmav2", 22_050, "mono", 32_000, None, "asf"),
    ("amr-nb", "amr", "libopencore_amrnb", 8_000, "mono", 12_200, None, "amr"),
    ("aiff", "aiff", "pcm_s16be", 22_050, "mono", None, None, "aiff"),
    ("caf", "caf", "pcm_s16le", 16_000, "mono", None, None, "caf"),
    ("au", "au", "pcm_s16be", 8_000, "mono", None, None, "au"),
    ("w64", "w64", "pcm_s16le", 16_000, "mono", None, None, "w64"),
    ("wavpack", "wv", "wavpack", 16_000, "mono", None, None, "wv"),
    ("tta", "tta", "tta", 16_000, "mono", None, None, "tta"),
    ("ac3", "ac3", "ac3", 48_000, "stereo", None, None, "ac3"),
    ("mpegts-mp2", "mpegts", "mp2", 48_000, "mono", None, None, "mpegts"),
    ("mpeg-ps-mp2", "mpeg", "mp2", 48_000, "mono", None, None, "mpeg"),
    ("flv-mp3", "flv", "libmp3lame", 44_100, "mono", None, None, "flv"),
]


@pytest.mark.parametrize(
    ("muxer", "codec", "rate", "layout", "bit_rate", "options", "label"),
    [pytest.param(*case[1:], id=case[0]) for case in ROUND_TRIPS],
)
def test_container_round_trip_keeps_duration_and_pitch(
    muxer: str,
    codec: str,
    rate: int,
    layout: str,
    bit_rate: int | None,
    options: dict[str, str] | None,
    label: str,
) -> None:
    if not has_encoder(codec):
        pytest.skip(f"the bundled FFmpeg has no {codec} encoder")
    data = mc.encode(
        mc.sine(440.0, 2.0, rate), rate, muxer, codec, layout=layout, bit_rate=bit_rate,
        options=options,
    )  # fmt: skip

    decoded = decode_bytes(data)

    assert decoded.container == label
    assert decoded.samples.dtype == np.float32
    assert decoded.samples.ndim == 1
    assert decoded.duration == pytest.approx(2.0, abs=0.15)
    assert dominant_frequency(decoded.samples) == pytest.approx(440.0, abs=3.0)
    assert 0.2 < float(np.max(np.abs(decoded.samples))) < 1.0
    assert decoded.bad_packets == 0


def test_path_and_bytes_inputs_decode_identically() -> None:
    for name in ("speech.mp3", "speech.wav", "tone.ogg", "speech_webm_named.wav"):
        path = DATA / name
        from_path = decode_audio(AudioSource(path))
        from_bytes = decode_audio(AudioSource(path.read_bytes()))
        assert from_path.container == from_bytes.container
        np.testing.assert_array_equal(from_path.samples, from_bytes.samples)


def test_webm_named_wav_is_detected_from_its_bytes(tmp_path: Path) -> None:
    path = DATA / "speech_webm_named.wav"
    assert path.suffix == ".wav"
    assert path.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # EBML, not RIFF

    decoded = decode_audio(AudioSource(path))
    forced = decode_audio(AudioSource(path.read_bytes(), format="file"))
    reference = decode_audio(AudioSource(DATA / "speech.wav"))

    assert decoded.container == "webm"
    assert forced.container == "webm"
    assert decoded.duration == pytest.approx(reference.duration, abs=0.05)


def test_name_is_never_used_wav_named_mp3(tmp_path: Path) -> None:
    path = tmp_path / "really_a_wav.mp3"
    path.write_bytes((DATA / "speech.wav").read_bytes())
    assert decode_audio(AudioSource(path)).container == "wav"


def test_committed_speech_clip_has_quiet_edges_and_loud_middle() -> None:
    speech = decode_audio(AudioSource(DATA / "speech.wav"))
    mp3 = decode_audio(AudioSource(DATA / "speech.mp3"))

    assert 3.0 < speech.duration < 8.0
    assert mp3.duration == pytest.approx(speech.duration, abs=0.1)
    half_second = RATE // 2
    assert rms_dbfs(speech.samples[:half_second]) < -55
    assert rms_dbfs(speech.samples[-half_second:]) < -55
    middle = len(speech.samples) // 2
    assert rms_dbfs(speech.samples[middle - RATE : middle + RATE]) > -35


def test_quiet_noise_clip_decodes_and_is_about_minus_60_dbfs() -> None:
    decoded = decode_audio(AudioSource(DATA / "silence.wav"))
    assert decoded.duration == pytest.approx(5.0, abs=0.01)
    assert rms_dbfs(decoded.samples) == pytest.approx(-60.0, abs=2.0)


def test_music_clip_decodes() -> None:
    decoded = decode_audio(AudioSource(DATA / "tone.ogg"))
    assert decoded.container == "ogg"
    assert decoded.duration == pytest.approx(4.0, abs=0.05)
    assert rms_dbfs(decoded.samples) > -30


def test_sample_rate_change_mid_stream_is_followed() -> None:
    first = mc.encode(mc.sine(440.0, 3.0, 44_100), 44_100, "mp3", "libmp3lame")
    second = mc.encode(mc.sine(440.0, 3.0, 22_050), 22_050, "mp3", "libmp3lame")

    decoded = decode_bytes(first + second)

    assert decoded.duration == pytest.approx(6.0, abs=0.15)
    assert dominant_frequency(decoded.samples[: 2 * RATE]) == pytest.approx(440.0, abs=3.0)
    assert dominant_frequency(decoded.samples[-2 * RATE :]) == pytest.approx(440.0, abs=3.0)


def test_multichannel_is_mixed_down() -> None:
    data = mc.encode(mc.sine(440.0, 1.0), RATE, "wav", "pcm_s16le", layout="5.1")
    decoded = decode_bytes(data)
    assert decoded.duration == pytest.approx(1.0, abs=0.01)
    assert dominant_frequency(decoded.samples) == pytest.approx(440.0, abs=3.0)


# ---------------------------------------------------------------------------------------------
# Channels: every input path mixes to the mean of its channels


def encode_channels(
    channels: np.ndarray, rate: int, muxer: str, codec: str, layout: str, **options: str
) -> bytes:
    """Encode ``[channels, samples]`` float32 planes (one signal per channel) with PyAV."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=muxer, container_options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout, options=options)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(channels, dtype=np.float32), format="fltp", layout=layout
        )
        frame.sample_rate = rate
        frame.pts = 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()


def stereo_cases() -> dict[str, np.ndarray]:
    """Stereo signals whose mean is known: both channels, one channel, different tones."""
    loud = mc.sine(440.0, 1.0, amplitude=0.9)
    other = mc.sine(660.0, 1.0, amplitude=0.3)
    silent = np.zeros_like(loud)
    return {
        "same-in-both": np.stack([loud, loud]),
        "left-only": np.stack([loud, silent]),
        "right-only": np.stack([silent, loud]),
        "different": np.stack([loud, other]),
    }


LOSSLESS_STEREO = [("wav", "pcm_s16le"), ("wav", "pcm_f32le"), ("flac", "flac")]


@pytest.mark.parametrize("case", list(stereo_cases()))
@pytest.mark.parametrize(("muxer", "codec"), LOSSLESS_STEREO, ids=["wav-s16", "wav-f32", "flac"])
def test_stereo_container_mixes_to_the_mean_of_its_channels(
    case: str, muxer: str, codec: str
) -> None:
    # FFmpeg's own float downmix is 0.707 * (L + R): 3 dB too loud, and past 1.0 here.
    channels = stereo_cases()[case]

    decoded = decode_bytes(encode_channels(channels, RATE, muxer, codec, "stereo"))

    np.testing.assert_allclose(decoded.samples, channels.mean(axis=0), atol=1e-4)
    assert float(np.abs(decoded.samples).max()) <= 0.9 + 1e-4


@pytest.mark.parametrize("rate", [44_100, 48_000])
def test_resampled_stereo_keeps_the_level_of_the_mean(rate: int) -> None:
    tone = mc.sine(440.0, 1.0, rate, amplitude=0.8)
    both = decode_bytes(encode_channels(np.stack([tone, tone]), rate, "wav", "pcm_f32le", "stereo"))
    one = decode_bytes(
        encode_channels(np.stack([tone, np.zeros_like(tone)]), rate, "wav", "pcm_f32le", "stereo")
    )
    middle = slice(RATE // 4, 3 * RATE // 4)  # away from the resampler's edges
    assert float(np.abs(both.samples[middle]).max()) == pytest.approx(0.8, abs=0.01)
    assert float(np.abs(one.samples[middle]).max()) == pytest.approx(0.4, abs=0.01)


@pytest.mark.parametrize(("layout", "count"), [("3.0", 3), ("quad", 4), ("5.1", 6), ("6.1", 7)])
def test_any_channel_count_mixes_to_the_mean(layout: str, count: int) -> None:
    rng = np.random.default_rng(count)
    channels = (rng.uniform(-0.9, 0.9, (count, RATE))).astype(np.float32)

    decoded = decode_bytes(encode_channels(channels, RATE, "wav", "pcm_f32le", layout))

    np.testing.assert_allclose(decoded.samples, channels.mean(axis=0), atol=1e-6)


@pytest.mark.parametrize("count", [9, 12, 64])
def test_more_than_eight_channels_mix_to_the_mean(count: int) -> None:
    # Written with the wave module: FFmpeg sees no channel layout, and PyAV cannot hold more
    # than eight channels as planes.
    rng = np.random.default_rng(count)
    pcm = np.round(rng.uniform(-0.9, 0.9, (RATE // 2, count)) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(count)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.tobytes())

    decoded = decode_bytes(buffer.getvalue())

    np.testing.assert_allclose(decoded.samples, pcm.mean(axis=1) / 32768, atol=1e-6)


def test_lossy_stereo_keeps_the_level_of_the_mean() -> None:
    tone = mc.sine(440.0, 2.0, 48_000, amplitude=0.8)
    data = encode_channels(
        np.stack([tone, np.zeros_like(tone)]), 48_000, "webm", "libopus", "stereo"
    )
    decoded = decode_bytes(data)
    middle = decoded.samples[RATE // 2 : 3 * RATE // 2]
    assert float(np.abs(middle).max()) == pytest.approx(0.4, abs=0.03)


@pytest.mark.parametrize("case", list(stereo_cases()))
def test_stereo_arrays_mix_to_the_mean(case: str) -> None:
    channels = stereo_cases()[case]
    as_int16 = np.round(channels * 32767).astype(np.int16)

    from_npy = decode_bytes(npy_bytes(channels.T.copy()))
    from_int16 = decode_bytes(npy_bytes(as_int16))

    np.testing.assert_allclose(from_npy.samples, channels.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(from_int16.samples, channels.mean(axis=0), atol=1e-4)


def test_decoded_audio_duration_property() -> None:
    audio = DecodedAudio(samples=np.zeros(24_000, dtype=np.float32), container="pcm")
    assert audio.duration == 1.5
    assert audio.bad_packets == 0


# ---------------------------------------------------------------------------------------------
# NumPy arrays


def npy_bytes(array: np.ndarray, *, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


def test_npy_mono_float32_passes_through_unchanged(tmp_path: Path) -> None:
    signal = mc.sine(440.0, 1.0)
    decoded = decode_bytes(npy_bytes(signal))
    assert decoded.container == "numpy"
    np.testing.assert_array_equal(decoded.samples, signal)

    path = tmp_path / "clip.npy"
    np.save(path, signal)
    np.testing.assert_array_equal(decode_audio(AudioSource(path)).samples, signal)


@pytest.mark.parametrize("channels_first", [True, False])
def test_npy_stereo_is_averaged_on_the_smaller_axis(channels_first: bool) -> None:
    left = mc.sine(440.0, 1.0, amplitude=0.6)
    right = mc.sine(660.0, 1.0, amplitude=0.2)
    stereo = np.stack([left, right]) if channels_first else np.stack([left, right], axis=1)

    decoded = decode_bytes(npy_bytes(stereo))

    np.testing.assert_allclose(decoded.samples, (left + right) / 2, atol=1e-6)


def test_npy_int16_is_scaled_to_unit_range() -> None:
    signal = mc.sine(440.0, 1.0, amplitude=0.5)
    as_int16 = np.round(signal * 32768).astype(np.int16)

    decoded = decode_bytes(npy_bytes(as_int16))

    np.testing.assert_allclose(decoded.samples, signal, atol=1e-4)


def test_npy_uint8_is_centred_and_scaled() -> None:
    signal = mc.sine(440.0, 1.0, amplitude=0.5)
    as_uint8 = np.round(signal * 128 + 128).astype(np.uint8)
    decoded = decode_bytes(npy_bytes(as_uint8))
    np.testing.assert_allclose(decoded.samples, signal, atol=1 / 128)


def test_npy_at_44100_is_resampled() -> None:
    signal = mc.sine(440.0, 2.0, 44_100)
    decoded = decode_bytes(npy_bytes(signal), sample_rate=44_100)
    assert len(decoded.samples) == pytest.approx(2 * RATE, abs=2)
    assert dominant_frequency(decoded.samples) == pytest.approx(440.0, abs=1.0)


def test_npy_pickled_object_array_is_rejected() -> None:
    data = npy_bytes(np.array([{"a": 1}, [1, 2]], dtype=object), allow_pickle=True)
    with pytest.raises(UnsupportedAudioError, match="pickle"):
        decode_bytes(data)


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((2, 2, 100), dtype=np.float32), "1-D"),
        (np.float32(0.5), "1-D"),
        (np.ones(100, dtype=np.complex64), "complex64"),
        (np.ones(100, dtype=bool), "bool"),
        (np.ones((100, 1000), dtype=np.float32), "100 channels"),
    ],
    ids=["3d", "scalar", "complex", "bool", "too-many-channels"],
)
def test_npy_shapes_and_dtypes_that_are_not_audio(array: np.ndarray, match: str) -> None:
    with pytest.raises(UnsupportedAudioError, match=match):
        decode_bytes(npy_bytes(array))


def test_npy_singleton_axes_are_squeezed() -> None:
    signal = mc.sine(440.0, 1.0)
    decoded = decode_bytes(npy_bytes(signal.reshape(1, 1, -1)))
    np.testing.assert_array_equal(decoded.samples, signal)


def test_npy_shorter_than_its_header_is_corrupt() -> None:
    data = npy_bytes(mc.sine(440.0, 1.0))
    with pytest.raises(CorruptAudioError, match="shorter than"):
        decode_bytes(data[: len(data) // 2])


def test_npy_header_claiming_a_huge_array_is_refused_before_allocating() -> None:
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (400000000000,), }"
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    data = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + bytes(64)

    with pytest.raises(CorruptAudioError, match="shorter than"):
        decode_bytes(data)


def test_numpy_format_requires_npy_magic() -> None:
    with pytest.raises(UnsupportedAudioError, match=r"\.npy"):
        decode_bytes((DATA / "speech.wav").read_bytes(), format="numpy")


@pytest.mark.parametrize("rate", [0, -16_000, 999, 1_000_000])
def test_out_of_range_sample_rate_is_rejected(rate: int) -> None:
    with pytest.raises(UnsupportedAudioError, match="Sample rate") as caught:
        decode_bytes(npy_bytes(mc.sine(440.0, 0.5)), sample_rate=rate)
    assert caught.value.param == "sample_rate"


# ---------------------------------------------------------------------------------------------
# PyTorch tensors


def fake_torch_zip() -> bytes:
    """The layout of a ``torch.save`` archive, without needing torch to write it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        archive.writestr("archive/version", b"3\n")
    return buf.getvalue()


LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19" + b"\x00" * 32


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (fake_torch_zip(), "auto"),
        (LEGACY_TORCH_MAGIC, "auto"),
        (fake_torch_zip(), "tensor"),
    ],
    ids=["zip-auto", "legacy-auto", "zip-tensor"],
)
def test_tensor_without_torch_raises_torch_unavailable(
    data: bytes, fmt: AudioFormat, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Make "import torch" fail whether or not torch is installed here.
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(TorchUnavailableError, match=r"torch.*\.npy"):
        decode_bytes(data, format=fmt)


def test_tensor_without_torch_in_this_environment() -> None:
    if importlib.util.find_spec("torch") is not None:
        pytest.skip("torch is installed; the real load is tested instead")
    with pytest.raises(TorchUnavailableError):
        decode_bytes(fake_torch_zip())


def test_zip_that_is_not_a_torch_file_is_unsupported() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(UnsupportedAudioError):
        decode_bytes(buf.getvalue())


class FakeTensor:
    """Just enough of ``torch.Tensor`` for the decoder's glue code."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def detach(self) -> FakeTensor:
        return self

    def cpu(self) -> FakeTensor:
        return self

    def is_complex(self) -> bool:
        return bool(np.iscomplexobj(self.array))

    def is_floating_point(self) -> bool:
        return self.array.dtype.kind == "f"

    def to(self, dtype: Any) -> FakeTensor:
        return FakeTensor(self.array.astype(dtype))

    def numpy(self) -> np.ndarray:
        return self.array


def install_fake_torch(monkeypatch: pytest.MonkeyPatch, result: Any) -> list[dict[str, Any]]:
    """Put a fake ``torch`` in ``sys.modules`` whose ``load`` returns ``result`` (or raises it)."""
    calls: list[dict[str, Any]] = []

    def load(file: Any, **kwargs: Any) -> Any:
        calls.append({"payload": file.read(), **kwargs})
        if isinstance(result, Exception):
            raise result
        return result

    fake = ModuleType("torch")
    fake.Tensor = FakeTensor  # type: ignore[attr-defined]
    fake.float32 = np.float32  # type: ignore[attr-defined]
    fake.load = load  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", fake)
    return calls


def test_tensor_glue_loads_with_weights_only_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    signal = mc.sine(440.0, 1.0, 22_050).astype(np.float64)
    calls = install_fake_torch(monkeypatch, FakeTensor(np.stack([signal, signal])))
    payload = fake_torch_zip()

    decoded = decode_bytes(payload, sample_rate=22_050)

    assert calls == [{"payload": payload, "weights_only": True, "map_location": "cpu"}]
    assert decoded.container == "tensor"
    assert decoded.duration == pytest.approx(1.0, abs=0.01)
    assert dominant_frequency(decoded.samples) == pytest.approx(440.0, abs=2.0)


@pytest.mark.parametrize(
    ("result", "error", "match"),
    [
        ({"audio": FakeTensor(np.ones(10))}, UnsupportedAudioError, "holds a dict"),
        (FakeTensor(np.ones(10, np.complex64)), UnsupportedAudioError, "Complex"),
        (
            RuntimeError("Weights only load failed: GLOBAL os.system was not an allowed global"),
            UnsupportedAudioError,
            r"objects other than tensors \(os\.system\), which are never loaded",
        ),
        (RuntimeError("PytorchStreamReader failed"), CorruptAudioError, "damaged or incomplete"),
    ],
    ids=["dict", "complex", "unsafe-pickle", "damaged"],
)
def test_tensor_glue_errors(
    monkeypatch: pytest.MonkeyPatch, result: Any, error: type[Exception], match: str
) -> None:
    install_fake_torch(monkeypatch, result)
    with pytest.raises(error, match=match):
        decode_bytes(fake_torch_zip(), format="tensor")


def test_tensor_real_load_with_torch(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    signal = mc.sine(440.0, 1.0, 22_050)
    stereo = torch.from_numpy(np.stack([signal, signal]))
    buf = io.BytesIO()
    torch.save(stereo, buf)

    decoded = decode_bytes(buf.getvalue(), sample_rate=22_050)

    assert decoded.container == "tensor"
    assert decoded.duration == pytest.approx(1.0, abs=0.01)
    assert dominant_frequency(decoded.samples) == pytest.approx(440.0, abs=2.0)

    left_only = io.BytesIO()
    torch.save(torch.from_numpy(np.stack([signal, np.zeros_like(signal)])), left_only)
    np.testing.assert_allclose(
        decode_bytes(left_only.getvalue(), sample_rate=22_050).samples,
        decoded.samples / 2,
        atol=1e-6,
    )

    not_a_tensor = io.BytesIO()
    torch.save({"audio": stereo}, not_a_tensor)
    with pytest.raises(UnsupportedAudioError, match="dict"):
        decode_bytes(not_a_tensor.getvalue())


# ---------------------------------------------------------------------------------------------
# Raw PCM

PCM_DTYPES = {"int16": ("<i2", 32767), "int32": ("<i4", 2**31 - 1), "float32": ("<f4", 1),
              "float64": ("<f8", 1)}  # fmt: skip


@pytest.mark.parametrize("rate", [8_000, 16_000, 44_100, 48_000])
@pytest.mark.parametrize("dtype", list(PCM_DTYPES))
def test_pcm_each_dtype_and_rate(dtype: str, rate: int) -> None:
    numpy_dtype, scale = PCM_DTYPES[dtype]
    signal = mc.sine(440.0, 1.0, rate, amplitude=0.5).astype(np.float64)
    raw = (np.round(signal * scale) if scale != 1 else signal).astype(numpy_dtype).tobytes()

    decoded = decode_bytes(raw, format="pcm", dtype=dtype, sample_rate=rate)

    assert decoded.container == "pcm"
    assert len(decoded.samples) == pytest.approx(RATE, abs=2)
    assert dominant_frequency(decoded.samples) == pytest.approx(440.0, abs=1.0)
    assert float(np.max(np.abs(decoded.samples))) == pytest.approx(0.5, abs=0.02)


def test_pcm_defaults_are_float32_at_16k_and_path_equals_bytes(tmp_path: Path) -> None:
    signal = mc.sine(440.0, 1.0)
    path = tmp_path / "audio.raw"
    path.write_bytes(signal.tobytes())

    from_bytes = decode_bytes(signal.tobytes(), format="pcm")
    from_path = decode_audio(AudioSource(path, format="pcm"))

    np.testing.assert_array_equal(from_bytes.samples, signal)
    np.testing.assert_array_equal(from_path.samples, signal)
    assert from_bytes.samples.flags.writeable


def test_pcm_length_not_a_multiple_of_the_sample_size() -> None:
    with pytest.raises(CorruptAudioError, match=r"1001 bytes.*int16 samples \(2 bytes each\)"):
        decode_bytes(b"\x01" * 1001, format="pcm", dtype="int16")


def test_pcm_unknown_dtype() -> None:
    with pytest.raises(UnsupportedAudioError, match="int8") as caught:
        decode_bytes(b"\x01\x02", format="pcm", dtype=cast("PcmDtype", "int8"))
    assert caught.value.param == "dtype"


def test_pcm_is_never_auto_detected() -> None:
    raw = (mc.sine(440.0, 1.0) * 32767).astype("<i2").tobytes()
    with pytest.raises(UnsupportedAudioError, match="not in a recognised"):
        decode_bytes(raw)


# ---------------------------------------------------------------------------------------------
# Errors


def test_unknown_format_value() -> None:
    with pytest.raises(UnsupportedAudioError, match="'mp3'"):
        decode_bytes(b"abc", format=cast("AudioFormat", "mp3"))


@pytest.mark.parametrize("fmt", ["auto", "file", "numpy", "tensor", "pcm"])
def test_empty_input(fmt: AudioFormat, tmp_path: Path) -> None:
    with pytest.raises(EmptyAudioError, match="0 bytes"):
        decode_bytes(b"", format=fmt)
    empty = tmp_path / "empty.wav"
    empty.touch()
    with pytest.raises(EmptyAudioError):
        decode_audio(AudioSource(empty, format=fmt))


def test_container_without_samples_is_empty() -> None:
    wav = mc.to_wav(mc.sine(440.0, 0.1))
    data_at = wav.index(b"data")
    header_only = b"RIFF" + (data_at).to_bytes(4, "little") + wav[8:data_at] + b"data" + bytes(4)
    with pytest.raises(EmptyAudioError, match="no audio data"):
        decode_bytes(header_only)


def test_empty_array_is_empty() -> None:
    with pytest.raises(EmptyAudioError):
        decode_bytes(npy_bytes(np.zeros(0, dtype=np.float32)))


@pytest.mark.parametrize(
    ("source", "seconds"),
    [
        (AudioSource(DATA / "digital_silence.wav"), 2.0),
        (AudioSource(np.zeros(RATE, dtype=np.float32).tobytes(), format="pcm"), 1.0),
        (AudioSource(np.full(RATE, 3, dtype="<i2").tobytes(), format="pcm", dtype="int16"), 1.0),
    ],
    ids=["wav-zeros", "pcm-zeros", "pcm-below-80dBFS"],
)
def test_digital_silence_is_audio_marked_silent(source: AudioSource, seconds: float) -> None:
    # Silence is not an error: it transcribes to empty text (the service skips the model).
    decoded = decode_audio(source)
    assert decoded.is_silent
    assert decoded.duration == pytest.approx(seconds, abs=0.01)


def test_quiet_audio_above_the_silence_threshold_is_kept() -> None:
    # 50/32768 is about -56 dBFS: quiet, but well above the -80 dBFS threshold.
    quiet = np.full(RATE, 50, dtype="<i2").tobytes()
    decoded = decode_bytes(quiet, format="pcm", dtype="int16")
    assert decoded.duration == 1.0
    assert not decoded.is_silent
    assert float(decoded.samples.max()) == pytest.approx(50 / 32768)


TOO_SHORT = "Audio file is too short. Minimum audio length is 0.1 seconds."


def short_inputs(seconds: float) -> dict[str, AudioSource]:
    """The same tone, ``seconds`` long, as every kind of input."""
    tone = mc.sine(440.0, 1.0)[: round(seconds * RATE)]
    tone44 = mc.sine(440.0, 1.0, 44_100)[: round(seconds * 44_100)]
    return {
        "wav": AudioSource(mc.to_wav(tone)),
        "wav-44k-stereo": AudioSource(
            mc.encode(tone44, 44_100, "wav", "pcm_s16le", layout="stereo")
        ),
        "flac": AudioSource(mc.encode(tone, RATE, "flac", "flac")),
        "npy": AudioSource(npy_bytes(tone)),
        "pcm": AudioSource(tone.tobytes(), format="pcm"),
        "pcm-8k": AudioSource(
            mc.sine(440.0, 1.0, 8_000)[: round(seconds * 8_000)].tobytes(),
            format="pcm",
            sample_rate=8_000,
        ),
    }


@pytest.mark.parametrize("kind", list(short_inputs(0.05)))
def test_audio_under_a_tenth_of_a_second_is_too_short(kind: str) -> None:
    with pytest.raises(AudioTooShortError, match=re.escape(TOO_SHORT)) as info:
        decode_audio(short_inputs(0.05)[kind])
    assert info.value.code == "audio_too_short"
    assert info.value.param == "file"


@pytest.mark.parametrize("kind", list(short_inputs(0.1)))
def test_audio_of_a_tenth_of_a_second_is_accepted(kind: str) -> None:
    assert decode_audio(short_inputs(0.1)[kind]).duration == pytest.approx(0.1, abs=0.001)


def test_too_short_silence_is_too_short_and_the_minimum_is_a_limit() -> None:
    blip = np.zeros(RATE // 50, dtype=np.float32).tobytes()  # 20 ms
    with pytest.raises(AudioTooShortError):
        decode_bytes(blip, format="pcm")
    assert decode_bytes(blip, format="pcm", limits=DecodeLimits(min_duration_s=0)).duration == 0.02


@pytest.mark.parametrize(
    "data",
    [
        (DATA / "not_audio.txt").read_bytes(),
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 200,
        b"1\n00:00:01,000 --> 00:00:02,000\nhello\n\n",
        b"%PDF-1.4\n" + b"x" * 1000,
        np.random.default_rng(5).integers(0, 256, 20_000, dtype=np.uint8).tobytes(),
    ],
    ids=["text", "png", "srt", "pdf", "random"],
)
def test_not_audio_is_unsupported(data: bytes) -> None:
    with pytest.raises(UnsupportedAudioError, match=r"not in a recognised|not accepted"):
        decode_bytes(data)


def test_video_without_audio_is_unsupported() -> None:
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for index in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(UnsupportedAudioError, match="no audio track"):
        decode_bytes(buf.getvalue())


def test_committed_corrupt_mp3_exceeds_the_bad_packet_budget() -> None:
    with pytest.raises(CorruptAudioError, match=r"audio packets could not be decoded, more than"):
        decode_audio(AudioSource(DATA / "corrupt.mp3"))


def test_a_few_bad_packets_within_the_budget_are_skipped_and_counted() -> None:
    speech = (DATA / "speech.mp3").read_bytes()
    full = decode_bytes(speech)

    slightly_damaged = decode_bytes(mc.corrupt(speech, 0.5, 0.51))
    assert slightly_damaged.bad_packets >= 1
    assert slightly_damaged.duration == pytest.approx(full.duration, abs=0.2)

    damaged = mc.corrupt(speech, 0.4, 0.42)
    with pytest.raises(CorruptAudioError, match="tolerated"):
        decode_bytes(damaged)
    tolerant = decode_bytes(damaged, limits=DecodeLimits(max_bad_packet_ratio=0.05))
    assert tolerant.bad_packets >= 2


def test_mp4_with_garbage_middle_is_corrupt() -> None:
    data = mc.encode(mc.sine(440.0, 4.0), RATE, "mp4", "aac")
    with pytest.raises(CorruptAudioError, match="packets could not be decoded"):
        decode_bytes(mc.corrupt(data, 0.2, 0.8))


def test_flac_with_garbage_middle_is_corrupt_not_truncated() -> None:
    data = mc.encode(mc.sine(440.0, 10.0), RATE, "flac", "flac")
    with pytest.raises(CorruptAudioError, match="damaged in the middle"):
        decode_bytes(mc.corrupt(data, 0.3, 0.6))


def test_no_packet_decodes_is_corrupt() -> None:
    wav_mp3 = mc.encode(mc.sine(440.0, 2.0), RATE, "wav", "libmp3lame")
    payload = wav_mp3.index(b"data") + 8
    zeroed = wav_mp3[:payload] + bytes(len(wav_mp3) - payload)
    with pytest.raises(CorruptAudioError, match="None of the file's"):
        decode_bytes(zeroed)


def test_recognised_container_that_cannot_be_opened_is_corrupt() -> None:
    mp4 = mc.encode(mc.sine(440.0, 2.0), RATE, "mp4", "aac")  # moov at the end
    with pytest.raises(CorruptAudioError, match="looks like mp4"):
        decode_bytes(mc.truncate(mp4, 0.5))


def test_committed_truncated_wav() -> None:
    with pytest.raises(TruncatedAudioError, match=r"declares 4\.9 s.* only 2\.\d s"):
        decode_audio(AudioSource(DATA / "truncated.wav"))


@pytest.mark.parametrize("kind", ["flac", "mp3", "mp4-faststart"])
def test_truncated_containers(kind: str, tmp_path: Path) -> None:
    signal = mc.sine(440.0, 6.0)
    if kind == "mp4-faststart":
        path = tmp_path / "fast.mp4"
        with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as out:
            stream = out.add_stream("aac", rate=RATE, layout="mono")
            frame = av.AudioFrame.from_ndarray(signal.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = RATE
            frame.pts = 0
            out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        data = path.read_bytes()
    else:
        data = mc.encode(signal, RATE, kind, "flac" if kind == "flac" else "libmp3lame")
    assert decode_bytes(data).duration == pytest.approx(6.0, abs=0.1)
    with pytest.raises(TruncatedAudioError, match=r"declares 6\.\d s"):
        decode_bytes(mc.truncate(data, 0.5))


def with_sizes(wav: bytes, riff: int, data: int) -> bytes:
    """``wav`` with its RIFF and data chunk sizes replaced."""
    data_at = wav.index(b"data")
    return (
        wav[:4]
        + riff.to_bytes(4, "little")
        + wav[8 : data_at + 4]
        + data.to_bytes(4, "little")
        + wav[data_at + 8 :]
    )


@pytest.mark.parametrize(
    ("riff", "data"),
    [(0, 0), (0xFFFFFFFF, 0xFFFFFFFF), (0x7FFFF024, 0x7FFFF000), (0x7FFFFFFF, 0x7FFFFFFF)],
    ids=["zero", "ffmpeg-pipe", "espeak-stdout", "signed-max"],
)
def test_wav_written_to_a_pipe_has_unknown_length_and_is_accepted(riff: int, data: int) -> None:
    # A writer on a pipe cannot go back to fill in the sizes: these mean "unknown".
    wav = mc.to_wav(mc.sine(440.0, 2.7))
    decoded = decode_bytes(with_sizes(wav, riff, data))
    assert decoded.duration == pytest.approx(2.7, abs=0.01)
    assert decoded.container == "wav"


def test_wav_with_unknown_data_size_but_a_real_riff_size_is_accepted() -> None:
    wav = mc.to_wav(mc.sine(440.0, 2.7))
    assert decode_bytes(with_sizes(wav, len(wav) - 8, 0)).duration == pytest.approx(2.7, abs=0.01)
    assert decode_bytes(with_sizes(wav, 0, len(wav) - 44)).duration == pytest.approx(2.7, abs=0.01)


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
def test_espeak_ng_stdout_wav_is_accepted() -> None:
    spoken = subprocess.run(
        ["espeak-ng", "--stdout", "The weather was cold and windy all day long."],
        capture_output=True,
        check=True,
    ).stdout
    assert int.from_bytes(spoken[4:8], "little") >= 0x7FFF0000  # the placeholder is there
    assert decode_bytes(spoken).duration > 2.0


def test_a_truthful_wav_header_still_finds_truncation() -> None:
    wav = mc.to_wav(mc.sine(440.0, 6.0))
    with pytest.raises(TruncatedAudioError, match=r"declares 6\.0 s"):
        decode_bytes(mc.truncate(wav, 0.5))


def test_cut_ogg_is_truncated_like_the_other_containers() -> None:
    ogg = (DATA / "tone.ogg").read_bytes()  # Ogg has no duration in its header
    assert decode_bytes(ogg).duration > 3.0
    with pytest.raises(TruncatedAudioError, match=r"Ogg file stops after \d\.\d s"):
        decode_bytes(mc.truncate(ogg, 0.6))


def test_channel_and_sample_rate_caps() -> None:
    three = mc.encode(mc.sine(440.0, 1.0), RATE, "wav", "pcm_s16le", layout="3.0")
    with pytest.raises(UnsupportedAudioError, match="3 channels"):
        decode_bytes(three, limits=DecodeLimits(max_channels=2))
    fast = mc.encode(mc.sine(440.0, 1.0, 96_000), 96_000, "wav", "pcm_s16le")
    with pytest.raises(UnsupportedAudioError, match="96000 Hz"):
        decode_bytes(fast, limits=DecodeLimits(max_sample_rate=48_000))
    assert decode_bytes(fast).duration == pytest.approx(1.0, abs=0.01)


# ---------------------------------------------------------------------------------------------
# Duration cap and decompression bombs


@pytest.fixture(scope="module")
def flac_bomb() -> bytes:
    """Ten minutes of FLAC silence with a short tone at the start (so it is not silent)."""
    audio = np.concatenate([mc.sine(440.0, 1.0, 8_000), np.zeros(600 * 8_000, np.float32)])
    data: bytes = mc.encode(audio, 8_000, "flac", "flac")
    return data


class SpyResampler:
    """Wraps ``av.AudioResampler`` and counts the seconds of audio fed to it."""

    fed_seconds = 0.0

    def __init__(self, real: type, **kwargs: Any) -> None:
        self._inner = real(**kwargs)

    def resample(self, frame: Any) -> Any:
        if frame is not None:
            SpyResampler.fed_seconds += frame.samples / frame.sample_rate
        return self._inner.resample(frame)


def test_flac_bomb_stops_at_the_cap_without_decoding_the_rest(
    flac_bomb: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(flac_bomb) < 200_000  # ten minutes in a small file
    real = av.AudioResampler
    SpyResampler.fed_seconds = 0.0
    monkeypatch.setattr(av, "AudioResampler", lambda **kw: SpyResampler(real, **kw))

    started = time.perf_counter()
    with pytest.raises(AudioTooLongError, match="longer than the 5 s limit"):
        decode_bytes(flac_bomb, limits=DecodeLimits(max_duration_s=5.0))
    elapsed = time.perf_counter() - started

    assert SpyResampler.fed_seconds <= 5.0
    assert elapsed < 1.0
    monkeypatch.undo()
    assert decode_bytes(flac_bomb).duration == pytest.approx(601.0, abs=0.1)


def test_duration_cap_for_arrays_and_pcm_is_checked_before_reading() -> None:
    limits = DecodeLimits(max_duration_s=60.0)
    with pytest.raises(AudioTooLongError, match="longer than the 0:01:00 limit"):
        decode_bytes(b"\x00\x00" * (61 * RATE), format="pcm", dtype="int16", limits=limits)
    with pytest.raises(AudioTooLongError):
        decode_bytes(npy_bytes(np.zeros(61 * 8_000, np.int16)), sample_rate=8_000, limits=limits)


# ---------------------------------------------------------------------------------------------
# Hardening: playlists, nested opens, the PyAV call itself, no raw exceptions


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server on 127.0.0.1 that records every request it gets."""
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write((DATA / "speech.wav").read_bytes())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/segment.wav", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize("as_path", [False, True], ids=["bytes", "path-named-m3u8"])
@pytest.mark.parametrize("playlist", ["hls", "ffconcat"])
@pytest.mark.parametrize("fmt", ["auto", "file"])
def test_playlists_are_refused_and_fetch_nothing(
    http_server: tuple[str, list[str]],
    tmp_path: Path,
    playlist: str,
    as_path: bool,
    fmt: AudioFormat,
) -> None:
    url, requests = http_server
    data = mc.hls_playlist(url) if playlist == "hls" else mc.ffconcat(url)
    source: bytes | Path = data
    if as_path:
        source = tmp_path / "playlist.m3u8"
        source.write_bytes(data)

    with pytest.raises(UnsupportedAudioError):
        decode_audio(AudioSource(source, format=fmt))
    time.sleep(0.05)
    assert requests == []


def test_playlist_fixture_would_see_a_naive_open(
    http_server: tuple[str, list[str]], tmp_path: Path
) -> None:
    """Control: a plain av.open() of a file object named .m3u8 does fetch the segment."""
    url, requests = http_server
    path = tmp_path / "playlist.m3u8"
    path.write_bytes(mc.hls_playlist(url))
    with path.open("rb") as file, contextlib.suppress(av.error.FFmpegError):
        av.open(file, timeout=5).close()
    assert requests == ["/segment.wav"]


def test_ffconcat_cannot_read_a_local_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "secret.wav").write_bytes((DATA / "speech.wav").read_bytes())
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsupportedAudioError):
        decode_bytes(b"ffconcat version 1.0\nfile 'secret.wav'\n")


def test_av_open_gets_a_nameless_file_and_deny_all_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[tuple[Any, dict[str, Any]]] = []
    real_open = av.open

    def spy_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append((file, kwargs))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(av, "open", spy_open)
    path = tmp_path / "clip.m3u8"
    path.write_bytes((DATA / "speech.wav").read_bytes())

    assert decode_audio(AudioSource(path)).container == "wav"

    ((file, kwargs),) = calls
    assert not hasattr(file, "name")
    options = kwargs["container_options"]
    allowed = options["format_whitelist"].split(",")
    assert {"wav", "mp3", "mov", "matroska", "ogg", "flac"} <= set(allowed)
    assert not {"hls", "concat", "dash", "image2", "tty", "lavfi"} & set(allowed)
    assert options["protocol_whitelist"] not in ("", "file")
    with pytest.raises(PermissionError, match="nested open blocked"):
        kwargs["io_open"]("http://127.0.0.1:9/x", 1, {})


def mutations() -> Iterator[tuple[str, bytes]]:
    for name in ("speech.mp3", "speech.wav", "speech_webm_named.wav", "tone.ogg"):
        data = (DATA / name).read_bytes()
        for keep in (0.001, 0.01, 0.1, 0.7):
            yield f"{name}-cut-{keep}", mc.truncate(data, keep)
        for seed, (start, end) in enumerate([(0.0, 0.02), (0.01, 0.05), (0.5, 0.52), (0.9, 1.0)]):
            yield f"{name}-garbage-{start}-{end}", mc.corrupt(data, start, end, seed=seed)


@pytest.mark.parametrize("data", [m[1] for m in mutations()], ids=[m[0] for m in mutations()])
def test_damaged_input_never_raises_a_raw_exception(data: bytes) -> None:
    outcome = decode_or_error(data)
    if isinstance(outcome, AudioError):
        assert type(outcome) is not AudioError
        assert outcome.message
    else:
        assert outcome.duration > 0
        assert np.isfinite(outcome.samples).all()


def decode_or_error(data: bytes) -> DecodedAudio | AudioError:
    try:
        return decode_bytes(data)
    except AudioError as exc:
        return exc

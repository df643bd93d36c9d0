"""NaN and infinite samples on every input path: zeroed as dropouts, refused when many.

Each path is checked against the same input with the bad samples written as zeros: the decoded
audio must be identical, so nothing of a NaN leaks past the sample it was in (a resampler
would otherwise spread it over its neighbours).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from whisperd.audio.decode import AudioSource, DecodeLimits, decode_audio
from whisperd.audio.finite import NonFiniteCount, zero_nonfinite
from whisperd.audio.formats import render, to_verbose_json
from whisperd.engine.base import Segment, Transcript, Word
from whisperd.errors import CorruptAudioError
from whisperd.streaming.pcm import PcmDecoder

RATE = 16_000
BAD = (np.nan, np.inf, -np.inf)


def chord(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    """A few seconds of a chord, ``(channels, samples)`` float64, different per channel."""
    t = np.arange(round(seconds * rate)) / rate
    rows = [
        0.2 * np.sin(2 * np.pi * 220.0 * (c + 1) * t) + 0.1 * np.sin(2 * np.pi * 331.0 * t)
        for c in range(channels)
    ]
    return np.stack(rows)


def spoil(clean: np.ndarray, share: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``clean`` with ``share`` of its samples NaN or infinite, and the same with zeros there."""
    rng = np.random.default_rng(seed)
    count = max(1, int(share * clean.size))
    where = rng.choice(clean.size, count, replace=False)
    bad, zeroed = clean.copy(), clean.copy()
    bad.reshape(-1)[where] = rng.choice(BAD, count)
    zeroed.reshape(-1)[where] = 0.0
    return bad, zeroed


def float_wav(samples: np.ndarray, rate: int, codec: str = "pcm_f32le") -> bytes:
    """A float WAV of ``(channels, samples)`` written by FFmpeg (NaN and infinities kept)."""
    channels = samples.shape[0]
    layout = "mono" if channels == 1 else "stereo"
    fmt, dtype = ("flt", np.float32) if codec == "pcm_f32le" else ("dbl", np.float64)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="wav") as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        interleaved = np.ascontiguousarray(samples.T, dtype=dtype).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(interleaved, format=fmt, layout=layout)
        frame.sample_rate = rate
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def npy(samples: np.ndarray, dtype: Any = np.float32) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, samples.astype(dtype))
    return buffer.getvalue()


def tensor(samples: np.ndarray) -> bytes:
    torch = pytest.importorskip("torch")
    buffer = io.BytesIO()
    torch.save(torch.from_numpy(samples.astype(np.float32)), buffer)
    return buffer.getvalue()


def pcm(samples: np.ndarray, dtype: str) -> bytes:
    return samples.reshape(-1).astype(dtype).tobytes()


# name -> (bytes of (channels, samples) float64 at a rate, AudioSource keywords)
PATHS: dict[str, Any] = {
    "wav-f32": lambda s, r: (float_wav(s, r), {}),
    "wav-f64": lambda s, r: (float_wav(s, r, "pcm_f64le"), {}),
    "npy-f32": lambda s, r: (npy(s), {"sample_rate": r}),
    "npy-f64": lambda s, r: (npy(s, np.float64), {"sample_rate": r}),
    "tensor": lambda s, r: (tensor(s), {"sample_rate": r}),
    "pcm-f32": lambda s, r: (pcm(s[:1], "<f4"), {"format": "pcm", "sample_rate": r}),
    "pcm-f64": lambda s, r: (
        pcm(s[:1], "<f8"),
        {"format": "pcm", "dtype": "float64", "sample_rate": r},
    ),
}


def decode(path: str, samples: np.ndarray, rate: int, **limits: Any) -> np.ndarray:
    data, keywords = PATHS[path](samples, rate)
    source = AudioSource(data, **keywords)
    return decode_audio(source, DecodeLimits(**limits)).samples


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize(("rate", "channels"), [(16_000, 1), (44_100, 2)], ids=["16k", "44k-2ch"])
def test_one_bad_sample_is_a_zero_and_nothing_else_changes(
    path: str, rate: int, channels: int
) -> None:
    clean = chord(1.5, rate, channels)
    if path.startswith("pcm"):
        clean = clean[:1]
    bad, zeroed = spoil(clean, 0.0)

    got = decode(path, bad, rate)
    want = decode(path, zeroed, rate)

    assert np.isfinite(got).all()
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("path", list(PATHS))
def test_one_percent_of_bad_samples_is_zeroed_more_is_refused(path: str) -> None:
    clean = chord(2.0, 22_050)
    at_limit, at_limit_zeroed = spoil(clean, 0.01, seed=1)
    np.testing.assert_array_equal(
        decode(path, at_limit, 22_050), decode(path, at_limit_zeroed, 22_050)
    )

    over, _ = spoil(clean, 0.02, seed=2)
    refusal = r"\(2\.0%\) are NaN or infinite, more than the 1\.0%"
    with pytest.raises(CorruptAudioError, match=refusal):
        decode(path, over, 22_050)


def test_the_share_tolerated_is_a_limit() -> None:
    over, zeroed = spoil(chord(1.0, RATE), 0.02)
    strict = {"max_nonfinite_ratio": 0.0}
    with pytest.raises(CorruptAudioError, match="NaN or infinite"):
        decode("wav-f32", over, RATE, **strict)
    lenient = decode("wav-f32", over, RATE, max_nonfinite_ratio=0.05)
    np.testing.assert_array_equal(lenient, decode("wav-f32", zeroed, RATE))


def test_float64_beyond_float32_range_is_a_dropout_too() -> None:
    clean = chord(1.0, RATE)
    huge = clean.copy()
    huge[0, 1234] = 1e300  # infinite once in float32
    zeroed = clean.copy()
    zeroed[0, 1234] = 0.0
    np.testing.assert_array_equal(decode("npy-f64", huge, RATE), decode("npy-f64", zeroed, RATE))


def test_zeroing_works_block_by_block_on_long_arrays() -> None:
    values = np.ones(3 * (1 << 20) + 5, dtype=np.float32)
    where = [0, (1 << 20) - 1, 1 << 20, 2 * (1 << 20) + 7, values.size - 1]
    values[where] = [np.nan, np.inf, -np.inf, np.nan, np.inf]

    copy, count = zero_nonfinite(values)
    assert count == len(where)
    assert np.isnan(values[0])  # the input is left as it was
    assert np.flatnonzero(copy == 0).tolist() == where

    same, count = zero_nonfinite(values, in_place=True)
    assert same is values
    assert count == len(where)
    assert np.isfinite(values).all()


def test_integer_arrays_are_never_scanned_or_copied() -> None:
    values = np.arange(10, dtype=np.int16)
    assert zero_nonfinite(values) == (values, 0)


def test_count_refuses_only_past_its_share() -> None:
    count = NonFiniteCount(0.01)
    count.add(1000, 10)
    count.check()
    count.add(0, 1)
    with pytest.raises(CorruptAudioError, match="11 of the audio's 1000 samples"):
        count.check()


def test_stream_float_frames_zero_bad_samples_and_count_them() -> None:
    decoder = PcmDecoder("pcm_f32le", RATE)
    frame = np.array([0.5, np.nan, -0.25, np.inf, -np.inf, 2.0, -3.0], dtype="<f4")

    got = decoder.decode(frame.tobytes())

    assert got.tolist() == [0.5, 0.0, -0.25, 0.0, 0.0, 1.0, -1.0]
    assert decoder.zeroed == 3


def test_stream_float_frames_at_another_rate_stay_finite() -> None:
    decoder = PcmDecoder("pcm_f32le", 48_000)
    bad, _ = spoil(chord(1.0, 48_000), 0.01)
    samples = decoder.decode(bad.astype("<f4").tobytes(), last=True)
    assert np.isfinite(samples).all()
    assert decoder.zeroed == int(0.01 * bad.size)


def transcript_with(value: float) -> Transcript:
    word = Word(start=value, end=value, word=" hi", probability=value)
    segment = Segment(
        id=0,
        seek=0,
        start=value,
        end=value,
        text=" hi",
        tokens=(1,),
        temperature=value,
        avg_logprob=value,
        compression_ratio=value,
        no_speech_prob=value,
        words=(word,),
    )
    return Transcript(segments=(segment,), language="en", language_probability=1.0, duration=1.0)


def strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the JSON body")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("value", BAD, ids=["nan", "inf", "-inf"])
def test_rendered_json_never_holds_a_non_finite_number(value: float) -> None:
    for fmt in ("json", "verbose_json"):
        strict_json(render(transcript_with(value), fmt, granularities=("segment", "word")))
    body = to_verbose_json(transcript_with(value), granularities=("segment", "word"))
    segment = body["segments"][0]  # type: ignore[index]
    assert all(np.isfinite(segment[key]) for key in ("start", "end", "avg_logprob"))
    if np.isnan(value):
        assert segment["avg_logprob"] == 0.0
    else:
        assert abs(segment["avg_logprob"]) == np.finfo(np.float64).max
    for fmt in ("srt", "vtt", "tsv"):
        assert "hi" in render(transcript_with(value), fmt)


def test_decoding_a_path_keeps_the_rule(tmp_path: Path) -> None:
    bad, zeroed = spoil(chord(1.0, RATE), 0.005)
    (tmp_path / "bad.wav").write_bytes(float_wav(bad, RATE))
    (tmp_path / "zeroed.wav").write_bytes(float_wav(zeroed, RATE))
    got = decode_audio(AudioSource(tmp_path / "bad.wav")).samples
    np.testing.assert_array_equal(got, decode_audio(AudioSource(tmp_path / "zeroed.wav")).samples)

"""The torch feature extractor: faster-whisper's log-mel features, computed with PyTorch."""

from __future__ import annotations

import copy
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from faster_whisper.feature_extractor import FeatureExtractor

from whisperd.engine.hub import ResolvedModel
from whisperd.engine.pytorch.engine import TorchEngine
from whisperd.engine.pytorch.features import TorchFeatureExtractor

RATE = 16000
MAX_ABS = 3e-4
"""Largest |torch - faster-whisper| allowed in any output value.

Both compute the STFT in float32 (NumPy 2 runs float32 FFTs in float32), but with different FFT
and matrix-product kernels, so the results differ by rounding. FFT rounding is absolute, about
float32 epsilon times the frame's energy, so its relative error grows as a mel band's power
falls below its frame's peak. Eight decades down, at the log floor, that is ~1e-3 of the power,
~4e-4 in log10, ~1e-4 after the /4 scaling: a faint noise under a tone (most bands near the
floor) measured 1.2e-4 over 10 minutes. 3e-4 leaves room for other FFT kernels, and is still
below what a real mistake gives (a symmetric Hann window, a missing floor or dropped frame).
"""
MEAN_ABS = 1e-5
"""Mean |difference|: most values sit far above the floor and agree to a few float32 ulps
(measured at most 2.3e-6, on the near-floor case)."""


def _signal(kind: str, samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return (rng.standard_normal(samples) * 0.1).astype(np.float32)
    if kind == "tone":  # 440 Hz over a faint noise: most bands sit just above the floor
        tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(samples) / RATE)
        return (tone + 1e-3 * rng.standard_normal(samples)).astype(np.float32)
    return np.zeros(samples, dtype=np.float32)


def _assert_close(ours: np.ndarray, theirs: np.ndarray) -> None:
    assert ours.shape == theirs.shape
    assert ours.dtype == np.float32
    assert ours.flags.c_contiguous
    difference = np.abs(ours - theirs)
    assert difference.max() <= MAX_ABS
    assert difference.mean() <= MEAN_ABS


@pytest.fixture(scope="module", params=[80, 128], ids=["80mels", "128mels"])
def pair(request: pytest.FixtureRequest) -> tuple[TorchFeatureExtractor, FeatureExtractor]:
    return (
        TorchFeatureExtractor(torch.device("cpu"), feature_size=request.param),
        FeatureExtractor(feature_size=request.param),
    )


@pytest.mark.parametrize("kind", ["noise", "tone", "silence"])
@pytest.mark.parametrize("padding", [160, 0])
@pytest.mark.parametrize("seconds", [30, 7.3, 0.02])
def test_matches_faster_whisper(pair, seconds: float, padding: int, kind: str) -> None:
    ours, theirs = pair
    audio = _signal(kind, round(seconds * RATE))
    _assert_close(ours(audio, padding=padding), theirs(audio, padding=padding))


@pytest.mark.parametrize("kind", ["noise", "tone", "silence"])
def test_matches_faster_whisper_on_ten_minutes(pair, kind: str) -> None:
    ours, theirs = pair
    audio = _signal(kind, 600 * RATE)
    _assert_close(ours(audio), theirs(audio))


def test_silence_is_the_floor_of_its_own_peak(pair) -> None:
    ours, theirs = pair
    audio = _signal("silence", 3 * RATE)
    expected = theirs(audio)
    assert np.ptp(expected) == 0  # log10(1e-10) everywhere: the floor is the peak itself
    np.testing.assert_allclose(ours(audio), expected, rtol=0, atol=1e-6)


def test_has_the_librarys_attributes(pair) -> None:
    ours, theirs = pair
    for name in ("sampling_rate", "hop_length", "n_fft", "chunk_length", "time_per_frame"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert (ours.n_samples, ours.nb_max_frames) == (theirs.n_samples, theirs.nb_max_frames)
    np.testing.assert_array_equal(ours.mel_filters, theirs.mel_filters)


@pytest.mark.parametrize("chunk_length", [10, 30])
def test_chunk_length_resets_the_window_size_as_the_library(chunk_length: int) -> None:
    ours, theirs = TorchFeatureExtractor(), FeatureExtractor()
    audio = _signal("noise", 12 * RATE)
    _assert_close(ours(audio, chunk_length=chunk_length), theirs(audio, chunk_length=chunk_length))
    assert (ours.n_samples, ours.nb_max_frames) == (theirs.n_samples, theirs.nb_max_frames)
    assert ours.n_samples == chunk_length * RATE


@pytest.mark.parametrize(
    ("samples", "padding"),
    [(0, 160), (1, 160), (30, 160), (40, 160), (41, 160), (160, 0), (170, 0), (200, 0), (201, 0),
     (239, 0), (240, 160), (399, 0), (401, 1)],
)  # fmt: skip
def test_short_inputs_match_the_librarys_reflect_padding(samples: int, padding: int) -> None:
    """Up to 200 padded samples NumPy reflects more than once, which PyTorch's padding cannot."""
    ours, theirs = TorchFeatureExtractor(), FeatureExtractor()
    audio = _signal("noise", samples, seed=samples)
    _assert_close(ours(audio, padding=padding), theirs(audio, padding=padding))


@pytest.mark.parametrize(("samples", "padding"), [(0, 0), (1, 0), (159, 0)])
def test_input_too_short_for_a_frame_is_a_value_error(samples: int, padding: int) -> None:
    audio = np.ones(samples, dtype=np.float32)
    with pytest.raises(ValueError, match=r"zero-size array|empty axis"):
        FeatureExtractor()(audio, padding=padding)
    with pytest.raises(ValueError, match="make no feature frame"):
        TorchFeatureExtractor()(audio, padding=padding)


def test_refuses_what_is_not_mono_audio() -> None:
    extractor = TorchFeatureExtractor()
    with pytest.raises(ValueError, match="1-D audio"):
        extractor(np.zeros((2, 16000), dtype=np.float32))
    with pytest.raises(ValueError, match="padding"):
        extractor(np.zeros(16000, dtype=np.float32), padding=-1)


def test_other_dtypes_and_layouts_are_cast_like_the_library() -> None:
    ours, theirs = TorchFeatureExtractor(), FeatureExtractor()
    rng = np.random.default_rng(3)
    pcm = (rng.standard_normal(5 * RATE) * 3000).astype(np.int16)
    wide = rng.standard_normal(5 * RATE) * 0.1
    cases = [pcm, pcm.astype(np.float32), wide, wide[::-1], wide[::3], wide.astype(np.float16)]
    for audio in cases:
        _assert_close(ours(audio), theirs(audio))


def test_leaves_its_input_alone() -> None:
    audio = _signal("noise", 2 * RATE)
    kept = audio.copy()
    TorchFeatureExtractor()(audio)
    np.testing.assert_array_equal(audio, kept)


def test_a_copy_keeps_its_own_window_size() -> None:
    """The engine copies the extractor per request; faster-whisper resizes the copy."""
    original = TorchFeatureExtractor()
    view = copy.copy(original)
    audio = _signal("noise", 12 * RATE)
    _assert_close(view(audio, chunk_length=10), FeatureExtractor()(audio, chunk_length=10))
    assert view.n_samples == 10 * RATE
    assert original.n_samples == 30 * RATE


def _concurrent_matches_serial(extractor: TorchFeatureExtractor) -> None:
    clips = [_signal("noise", (3 + i) * RATE, seed=i) for i in range(8)]
    serial = [extractor(clip) for clip in clips]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            together = list(pool.map(extractor, clips))
            for mine, alone in zip(together, serial, strict=True):
                np.testing.assert_array_equal(mine, alone)


def test_concurrent_calls_give_the_serial_results() -> None:
    _concurrent_matches_serial(TorchFeatureExtractor())


def test_the_cpu_engine_keeps_faster_whisper_s_featurizer(scripted_pair) -> None:
    """On the CPU the torch engine's features are the CTranslate2 engine's, bit for bit."""
    path = Path(scripted_pair.huggingface)
    engine = TorchEngine(
        ResolvedModel(name=path.name, path=path, repo_id=None, known=None), device="cpu", max_rows=4
    )
    try:
        assert type(engine._model.feature_extractor) is FeatureExtractor
    finally:
        engine.close()


@pytest.mark.gpu
def test_cuda_matches_faster_whisper_without_waiting_for_the_default_stream(
    scripted_pair,
) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    ours = TorchFeatureExtractor(torch.device("cuda"), feature_size=128)
    theirs = FeatureExtractor(feature_size=128)
    for seconds, kind in [(600, "noise"), (30, "tone"), (7.3, "silence"), (0.01, "noise")]:
        audio = _signal(kind, round(seconds * RATE))
        _assert_close(ours(audio), theirs(audio))
    _concurrent_matches_serial(ours)
    audio = _signal("noise", 30 * RATE)
    ours(audio)
    torch.cuda.synchronize()
    default = torch.cuda.current_stream()
    torch.cuda._sleep(2_000_000_000)  # a second or so of busy default stream
    began = time.perf_counter()
    ours(audio)
    assert not default.query(), "the featurizer waited for the default stream"
    assert time.perf_counter() - began < 0.5
    torch.cuda.synchronize()
    path = Path(scripted_pair.huggingface)
    engine = TorchEngine(
        ResolvedModel(name=path.name, path=path, repo_id=None, known=None), device="cuda"
    )
    try:
        assert isinstance(engine._model.feature_extractor, TorchFeatureExtractor)
    finally:
        engine.close()

"""Language detection on the torch engine: the same ranking as the CTranslate2 engine."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from whisperd.engine.hub import ResolvedModel
from whisperd.engine.options import TranscribeOptions
from whisperd.engine.pytorch.engine import TorchEngine
from whisperd.engine.whisper import WhisperEngine

DATA = Path(__file__).parents[2] / "data"


def _speech() -> np.ndarray:
    with wave.open(str(DATA / "speech.wav")) as clip:
        frames = clip.readframes(clip.getnframes())
    return np.frombuffer(frames, dtype=np.int16).astype(np.float32) / 32768


def _resolved(path: Path) -> ResolvedModel:
    return ResolvedModel(name=path.name, path=path, repo_id=None, known=None)


@pytest.mark.parametrize("candidates", [(), ("fr", "de", "ja")])
def test_torch_detection_matches_ctranslate2(random_pair, candidates: tuple[str, ...]) -> None:
    torch_engine = TorchEngine(_resolved(random_pair.hf.path), device="cpu", max_rows=4)
    ct2_engine = WhisperEngine(_resolved(random_pair.ct.path), device="cpu", compute_type="float32")
    options = TranscribeOptions(vad_filter=False, languages=candidates)
    try:
        ours = torch_engine.detect_language(_speech(), options)
        theirs = ct2_engine.detect_language(_speech(), options)
    finally:
        torch_engine.close()
        ct2_engine.close()
    assert ours.language == theirs.language
    assert ours.probability == pytest.approx(theirs.probability, abs=1e-3)
    for mine, ref in zip(ours.candidates[:5], theirs.candidates[:5], strict=True):
        assert mine.language == ref.language
        assert mine.probability == pytest.approx(ref.probability, abs=1e-3)
    if candidates:
        assert {c.language for c in ours.candidates} == set(candidates)

"""The torch engine end to end: same transcripts as the CTranslate2 engine, selection, loading."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from whisperd.config import Settings
from whisperd.engine import selection
from whisperd.engine.base import Transcript
from whisperd.engine.catalogue import HUGGINGFACE, KNOWN_MODELS
from whisperd.engine.hub import ResolvedModel
from whisperd.engine.manager import ModelManager
from whisperd.engine.options import TranscribeOptions
from whisperd.engine.pytorch.engine import TorchEngine, torch_compute_type, torch_device
from whisperd.engine.whisper import WhisperEngine
from whisperd.errors import InvalidOptionError, ModelUnavailableError, UnknownModelError
from whisperd.service import TranscriptionService, whisper_loader

DATA = Path(__file__).parents[2] / "data"


def _speech() -> np.ndarray:
    with wave.open(str(DATA / "speech.wav")) as clip:
        frames = clip.readframes(clip.getnframes())
    audio = np.frombuffer(frames, dtype=np.int16).astype(np.float32) / 32768
    return np.tile(audio, 8)[: 16000 * 70]


def _resolved(path: Path) -> ResolvedModel:
    return ResolvedModel(name=path.name, path=path, repo_id=None, known=None)


@pytest.fixture(scope="module")
def engines(scripted_pair):
    torch_engine = TorchEngine(_resolved(scripted_pair.huggingface), device="cpu", max_rows=16)
    ct2_engine = WhisperEngine(
        _resolved(scripted_pair.ctranslate2), device="cpu", compute_type="float32"
    )
    yield torch_engine, ct2_engine
    torch_engine.close()
    ct2_engine.close()


def _assert_same(ours: Transcript, theirs: Transcript) -> None:
    assert len(ours.segments) == len(theirs.segments) > 0
    for mine, ref in zip(ours.segments, theirs.segments, strict=True):
        assert (mine.id, mine.seek, mine.text, mine.tokens) == (
            ref.id,
            ref.seek,
            ref.text,
            ref.tokens,
        )
        assert (mine.start, mine.end, mine.temperature) == (ref.start, ref.end, ref.temperature)
        assert mine.avg_logprob == pytest.approx(ref.avg_logprob, abs=1e-4)
        assert mine.no_speech_prob == pytest.approx(ref.no_speech_prob, rel=1e-3, abs=1e-9)
        if ref.words is None:
            assert mine.words is None
        else:
            assert mine.words is not None
            assert [(w.word, w.start, w.end) for w in mine.words] == [
                (w.word, w.start, w.end) for w in ref.words
            ]
    assert (ours.language, ours.duration) == (theirs.language, theirs.duration)


CASES: list[dict[str, Any]] = [
    {},
    {"vad_filter": False},
    {"vad_filter": False, "word_timestamps": True},
    {"vad_filter": False, "without_timestamps": True, "beam_size": 1},
    {"vad_filter": False, "task": "translate", "initial_prompt": "hello", "hotwords": "abc"},
    {"vad_filter": False, "multilingual": True, "language_detection_segments": 2},
    {"vad_filter": False, "repetition_penalty": 1.3, "no_repeat_ngram_size": 3, "patience": 2},
    {"batch_size": 4},
    {"batch_size": 4, "word_timestamps": True},
    {"vad_filter": False, "encoder_context": "audio", "clip_timestamps": (0.0, 9.5)},
]


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_transcripts_equal_the_ctranslate2_engines(engines, case: dict[str, Any]) -> None:
    torch_engine, ct2_engine = engines
    options = TranscribeOptions(**case)
    _assert_same(
        torch_engine.transcribe(_speech(), options), ct2_engine.transcribe(_speech(), options)
    )


@pytest.mark.parametrize("batch_size", [1, 4])
def test_both_engines_end_a_short_clip_within_it(engines, batch_size: int) -> None:
    # The scripted decoder always closes its segment with <|2.00|>, past this 1.3 s clip.
    clip = _speech()[16000 : 16000 + 20800]
    options = TranscribeOptions(vad_filter=batch_size > 1, batch_size=batch_size)
    for engine in engines:
        transcript = engine.transcribe(clip, options)
        assert transcript.duration == 1.3
        (segment,) = transcript.segments
        assert (segment.start, segment.end) == (0.0, 1.3)


def test_both_engines_keep_their_text_under_a_long_prompt_and_hotwords(engines) -> None:
    # faster-whisper alone would fill the 448-token context with both, leaving no text.
    words = " ".join(f"term{index}" for index in range(400))
    plain = TranscribeOptions(vad_filter=False, beam_size=1)
    prompted = plain.model_copy(update={"initial_prompt": words, "hotwords": words})
    for engine in engines:
        expected = engine.transcribe(_speech()[: 16000 * 40], plain).text
        assert engine.transcribe(_speech()[: 16000 * 40], prompted).text == expected


def test_info_names_the_engine(engines, scripted_pair) -> None:
    info = engines[0].info
    assert info.extra["engine"] == "torch"
    assert (info.device, info.compute_type, info.multilingual) == ("cpu", "float32", True)
    assert int(info.extra["decoder_rows"]) == 16
    assert "en" in info.languages


def test_a_beam_wider_than_the_decoder_is_a_clear_error(scripted_pair) -> None:
    engine = TorchEngine(_resolved(scripted_pair.huggingface), device="cpu", max_rows=2)
    try:
        with pytest.raises(InvalidOptionError, match="decoder rows"):
            engine.transcribe(
                _speech()[: 16000 * 5], TranscribeOptions(vad_filter=False, beam_size=5)
            )
    finally:
        engine.close()


def test_english_only_checkpoints_refuse_translation(tmp_path: Path) -> None:
    from whisperd.testing import build_test_model

    model = build_test_model(tmp_path / "en", model_format="huggingface", multilingual=False)
    engine = TorchEngine(_resolved(model.path), device="cpu", max_rows=4)
    try:
        assert not engine.info.multilingual
        with pytest.raises(InvalidOptionError, match="English-only"):
            engine.check(TranscribeOptions(task="translate"))
    finally:
        engine.close()


def test_devices_and_precisions_on_a_cpu_machine() -> None:
    assert torch_device("auto").type == "cpu"
    with pytest.raises(ModelUnavailableError, match="no CUDA GPU"):
        torch_device("cuda")
    assert torch_compute_type("float16", torch_device("cpu")) == "float32"


def test_auto_engine_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selection, "_torch_cuda", lambda: True)
    monkeypatch.setattr(selection, "_ctranslate2_cuda", lambda: False)
    assert selection.choose_engine("auto", "auto") == "torch"
    assert selection.choose_engine("auto", "cpu") == "ctranslate2"
    assert selection.choose_engine("ctranslate2", "cuda") == "ctranslate2"
    monkeypatch.setattr(selection, "_ctranslate2_cuda", lambda: True)
    assert selection.choose_engine("auto", "auto") == "ctranslate2"
    monkeypatch.setattr(selection, "torch_installed", lambda: False)
    with pytest.raises(ModelUnavailableError, match="whisperd\\[gpu\\]"):
        selection.choose_engine("torch", "auto")


def test_manager_loads_checkpoints_through_the_registry(scripted_pair) -> None:
    settings = Settings(_env_file=None, engine="torch", device="cpu", offline=True)
    manager = ModelManager(whisper_loader(settings, "torch"), offline=True, fmt=HUGGINGFACE)
    try:
        engine = manager.get(str(scripted_pair.huggingface), device="cpu", compute_type="auto")
        assert (
            manager.get(str(scripted_pair.huggingface), device="cpu", compute_type="auto") is engine
        )
        with pytest.raises(UnknownModelError, match="Hugging Face Whisper checkpoint"):
            manager.get(str(scripted_pair.ctranslate2), device="cpu", compute_type="auto")
    finally:
        manager.close()


def test_known_models_name_their_original_checkpoints() -> None:
    assert KNOWN_MODELS["large-v3-turbo"].repo_for(HUGGINGFACE) == "openai/whisper-large-v3-turbo"
    assert KNOWN_MODELS["large-v1"].repo_for(HUGGINGFACE) == "openai/whisper-large"
    assert KNOWN_MODELS["distil-large-v3"].repo_for(HUGGINGFACE) == "distil-whisper/distil-large-v3"


def test_offline_torch_service_reports_the_original_repository(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None, engine="torch", device="cpu", offline=True, models_dir=tmp_path
    )
    service = TranscriptionService.create(settings)
    with pytest.raises(ModelUnavailableError, match="openai/whisper-large-v3-turbo"):
        service.models.get("turbo", device="cpu", compute_type="auto")


@pytest.mark.gpu
def test_cuda_half_precision_transcribes_like_the_cpu(engines, scripted_pair) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    gpu = TorchEngine(_resolved(scripted_pair.huggingface), device="cuda")
    try:
        assert gpu.info.compute_type == "float16"
        assert gpu.info.extra["cuda_graphs"].split(",")[-1] == "128"
        options = TranscribeOptions(batch_size=8, word_timestamps=True)
        ours = gpu.transcribe(_speech(), options)
        reference = engines[0].transcribe(_speech(), options)
        assert [s.tokens for s in ours.segments] == [s.tokens for s in reference.segments]
        assert [(s.start, s.end) for s in ours.segments] == [
            (s.start, s.end) for s in reference.segments
        ]
    finally:
        gpu.close()

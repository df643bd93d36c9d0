"""The scripted random-weight model builder: a real checkpoint's layout, a predictable decoder."""

from __future__ import annotations

import json
from pathlib import Path

import ctranslate2
import pytest
import tokenizers

from whisperd.testing import ModelShape, ScriptedModel, build_test_model
from whisperd.testing.vocab import build_vocabulary, make_words


def test_directory_has_every_file_faster_whisper_reads(scripted_model: ScriptedModel) -> None:
    names = {p.name for p in scripted_model.path.iterdir()}
    assert {
        "model.bin",
        "config.json",
        "vocabulary.json",
        "tokenizer.json",
        "preprocessor_config.json",
    } <= names
    preprocessor = json.loads((scripted_model.path / "preprocessor_config.json").read_text())
    assert preprocessor["feature_size"] == ModelShape.TINY.n_mels


def test_special_tokens_sit_where_whisper_expects_them(scripted_model: ScriptedModel) -> None:
    tokenizer = tokenizers.Tokenizer.from_file(str(scripted_model.path / "tokenizer.json"))
    size = tokenizer.get_vocab_size()
    assert size == ModelShape.TINY.vocab_size
    no_timestamps = tokenizer.token_to_id("<|notimestamps|>")
    assert tokenizer.token_to_id("<|0.00|>") == no_timestamps + 1
    assert tokenizer.token_to_id("<|30.00|>") == size - 1
    sot = tokenizer.token_to_id("<|startoftranscript|>")
    assert tokenizer.token_to_id("<|endoftext|>") == sot - 1
    assert tokenizer.token_to_id("<|en|>") == sot + 1
    assert tokenizer.token_to_id("<|transcribe|>") < no_timestamps


def test_each_script_word_is_one_token(scripted_model: ScriptedModel) -> None:
    tokenizer = tokenizers.Tokenizer.from_file(str(scripted_model.path / "tokenizer.json"))
    for word in scripted_model.words + scripted_model.plain_words:
        ids = tokenizer.encode(" " + word, add_special_tokens=False).ids
        assert len(ids) == 1
        assert tokenizer.decode(ids) == " " + word


def test_multilingual_flag_follows_the_empty_token(
    scripted_model: ScriptedModel, english_model: ScriptedModel
) -> None:
    assert ctranslate2.models.Whisper(str(scripted_model.path)).is_multilingual
    assert not ctranslate2.models.Whisper(str(english_model.path)).is_multilingual


def test_words_are_distinct_and_deterministic() -> None:
    assert make_words(50, seed=1) == make_words(50, seed=1)
    assert len(set(make_words(500, seed=2))) == 500
    assert make_words(10, seed=1) != make_words(10, seed=2)


def test_vocabulary_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="too small"):
        build_vocabulary(make_words(10, seed=0), size=100)


def test_script_longer_than_the_model_width_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="d_model"):
        build_test_model(tmp_path, n_words=400)


def test_turbo_shape_matches_large_v3_turbo() -> None:
    shape = ModelShape.TURBO
    assert (shape.n_mels, shape.d_model, shape.n_heads) == (128, 1280, 20)
    assert (shape.encoder_layers, shape.decoder_layers) == (32, 4)
    assert (shape.vocab_size, shape.ffn_dim) == (51866, 5120)


@pytest.mark.slow
def test_turbo_shaped_model_decodes_its_script(tmp_path: Path) -> None:
    import numpy as np

    from whisperd.engine.hub import ResolvedModel
    from whisperd.engine.options import TranscribeOptions
    from whisperd.engine.whisper import WhisperEngine

    model = build_test_model(tmp_path / "turbo", shape=ModelShape.TURBO, n_words=88)
    engine = WhisperEngine(ResolvedModel("turbo", model.path, None, None), device="cpu")
    audio = np.full(16000 * 10, 0.01, dtype=np.float32)
    transcript = engine.transcribe(audio, TranscribeOptions(vad_filter=False, beam_size=1))
    assert transcript.text == model.text.strip()

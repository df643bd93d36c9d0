"""The PyTorch network and checkpoint reader against transformers' own Whisper."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import WhisperForConditionalGeneration

from whisperd.engine.pytorch.checkpoint import read_checkpoint
from whisperd.engine.pytorch.modeling import KVCache, WhisperNet
from whisperd.errors import ModelUnavailableError


@pytest.fixture(scope="module")
def reference(random_pair) -> WhisperForConditionalGeneration:
    model = WhisperForConditionalGeneration.from_pretrained(
        str(random_pair.huggingface), attn_implementation="sdpa"
    )
    return model.eval()


def _mel(seed: int, batch: int = 2) -> torch.Tensor:
    return torch.from_numpy(
        np.random.default_rng(seed).standard_normal((batch, 80, 3000)).astype(np.float32)
    )


@torch.inference_mode()
def test_encoder_and_decoder_equal_transformers(
    net: WhisperNet, reference: WhisperForConditionalGeneration, random_pair
) -> None:
    mel = _mel(0)
    ours = net.encode(mel)
    theirs = reference.model.encoder(mel).last_hidden_state
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    vocab = random_pair.vocab()
    tokens = torch.tensor([[vocab.sot, vocab.sot + 1, vocab.sot + 101, 400, 500, 600]] * 2)
    logits, weights = net.forward_text(tokens, ours, frozenset({3}))
    expected = reference(encoder_outputs=(theirs,), decoder_input_ids=tokens).logits
    torch.testing.assert_close(logits, expected, atol=1e-3, rtol=1e-4)
    assert weights[3].shape == (2, 6, 6, 1500)
    torch.testing.assert_close(weights[3].sum(-1), torch.ones(2, 6, 6))


@torch.inference_mode()
def test_cached_decoding_of_rows_at_different_positions_equals_a_full_pass(
    net: WhisperNet,
) -> None:
    """Rows at different positions with different audio lengths, one step at a time."""
    audio = net.encode(_mel(1))
    short = net.encode(_mel(2, batch=1)[..., :1000])
    sequences = [[50258, 50259, 50360, 300, 301, 302, 303], [50258, 50260, 50360, 500, 501]]
    expected = [
        net.forward_text(torch.tensor([sequences[0]]), audio[:1])[0][0],
        net.forward_text(torch.tensor([sequences[1]]), short)[0][0],
    ]
    cache = KVCache.zeros(net.dims, 4, torch.device("cpu"), torch.float32)
    net.fill_audio(cache, torch.tensor([0]), audio[:1])
    net.fill_audio(cache, torch.tensor([1]), short)
    # Prefill three tokens of each, then step each row from its own position.
    prefix = torch.tensor([s[:3] for s in sequences])
    hidden = net.decode(
        cache,
        slice(0, 2),
        prefix,
        torch.arange(3).expand(2, 3),
        text_len=3,
        audio_len=1500,
        uniform_audio=False,
    )
    torch.testing.assert_close(net.logits(hidden[0]), expected[0][:3], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(net.logits(hidden[1]), expected[1][:3], atol=1e-4, rtol=1e-4)
    steps = [(3, 3), (4, 4)]
    for positions in steps:
        tokens = torch.tensor([[sequences[0][positions[0]]], [sequences[1][positions[1]]]])
        where = torch.tensor(positions)[:, None]
        hidden = net.decode(
            cache,
            slice(0, 2),
            tokens,
            where,
            text_len=max(positions) + 1,
            audio_len=1500,
            uniform_audio=False,
        )
        logits = net.logits(hidden[:, 0])
        torch.testing.assert_close(logits[0], expected[0][positions[0]], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(logits[1], expected[1][positions[1]], atol=1e-4, rtol=1e-4)


def test_checkpoint_constants_follow_the_generation_config(random_pair) -> None:
    checkpoint = read_checkpoint(random_pair.huggingface)
    generation = json.loads((random_pair.huggingface / "generation_config.json").read_text())
    assert checkpoint.constants.suppress_ids == tuple(generation["suppress_tokens"])
    assert checkpoint.constants.suppress_ids_begin == tuple(generation["begin_suppress_tokens"])
    assert checkpoint.constants.alignment_heads == tuple(
        tuple(pair) for pair in generation["alignment_heads"]
    )
    assert len(checkpoint.constants.lang_ids) == len(generation["lang_to_id"])
    assert checkpoint.dims.decoder_layers == 4


def test_defaults_without_a_generation_config(random_pair, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(random_pair.huggingface, copy)
    (copy / "generation_config.json").unlink()
    checkpoint = read_checkpoint(copy)
    assert checkpoint.constants.alignment_heads == tuple(
        (layer, h) for layer in (2, 3) for h in range(6)
    )
    assert checkpoint.constants.lang_ids == ()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("no_weights", "is not a Hugging Face Whisper checkpoint"),
        ("bad_config", "cannot be read"),
        ("not_whisper", "is not a Whisper config"),
    ],
)
def test_broken_checkpoints_are_clear_errors(
    random_pair, tmp_path: Path, damage: str, message: str
) -> None:
    copy = tmp_path / "model"
    shutil.copytree(random_pair.huggingface, copy)
    if damage == "no_weights":
        (copy / "model.safetensors").unlink()
    elif damage == "bad_config":
        (copy / "config.json").write_text("{not json")
    else:
        (copy / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ModelUnavailableError, match=message):
        read_checkpoint(copy)

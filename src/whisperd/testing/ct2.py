"""Write Hugging Face-named Whisper weights as a CTranslate2 model directory."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from ctranslate2.specs import whisper_spec

if TYPE_CHECKING:
    import numpy.typing as npt

    from whisperd.testing.model import ModelShape
    from whisperd.testing.vocab import Vocabulary

    Tensors = dict[str, npt.NDArray[np.float32]]

_NON_SPEECH = '"#()*+/:;<=>@[\\]^_`{|}~「」『』'


def _linear(spec: Any, tensors: Tensors, name: str) -> None:
    spec.weight = tensors[f"{name}.weight"]
    if f"{name}.bias" in tensors:
        spec.bias = tensors[f"{name}.bias"]


def _norm(spec: Any, tensors: Tensors, name: str) -> None:
    spec.gamma = tensors[f"{name}.weight"]
    spec.beta = tensors[f"{name}.bias"]


def _qkv(tensors: Tensors, name: str, parts: str) -> dict[str, npt.NDArray[np.float32]]:
    """Fuse the q/k/v projections named by ``parts`` the way CTranslate2 stores them."""
    weights, biases = [], []
    for part in parts:
        weights.append(tensors[f"{name}.{part}_proj.weight"])
        bias = tensors.get(f"{name}.{part}_proj.bias")
        biases.append(bias if bias is not None else np.zeros(weights[-1].shape[0], np.float32))
    return {"weight": np.concatenate(weights), "bias": np.concatenate(biases)}


def _attention(spec: Any, tensors: Tensors, name: str, *, self_attention: bool) -> None:
    fused = (
        [_qkv(tensors, name, "qkv")]
        if self_attention
        else [
            _qkv(tensors, name, "q"),
            _qkv(tensors, name, "kv"),
        ]
    )
    for linear, values in zip(spec.linear, fused, strict=False):
        linear.weight, linear.bias = values["weight"], values["bias"]
    _linear(spec.linear[-1], tensors, f"{name}.out_proj")


def _layer(spec: Any, tensors: Tensors, name: str, *, cross: bool) -> None:
    _attention(spec.self_attention, tensors, f"{name}.self_attn", self_attention=True)
    _norm(spec.self_attention.layer_norm, tensors, f"{name}.self_attn_layer_norm")
    if cross:
        _attention(spec.attention, tensors, f"{name}.encoder_attn", self_attention=False)
        _norm(spec.attention.layer_norm, tensors, f"{name}.encoder_attn_layer_norm")
    _linear(spec.ffn.linear_0, tensors, f"{name}.fc1")
    _linear(spec.ffn.linear_1, tensors, f"{name}.fc2")
    _norm(spec.ffn.layer_norm, tensors, f"{name}.final_layer_norm")


def _fill_spec(spec: whisper_spec.WhisperSpec, tensors: Tensors) -> None:
    encoder, decoder = spec.encoder, spec.decoder
    for conv in ("conv1", "conv2"):
        getattr(encoder, conv).weight = tensors[f"model.encoder.{conv}.weight"]
        getattr(encoder, conv).bias = tensors[f"model.encoder.{conv}.bias"]
    encoder.position_encodings.encodings = tensors["model.encoder.embed_positions.weight"]
    _norm(encoder.layer_norm, tensors, "model.encoder.layer_norm")
    for i, layer in enumerate(encoder.layer):
        _layer(layer, tensors, f"model.encoder.layers.{i}", cross=False)
    decoder.embeddings.weight = tensors["model.decoder.embed_tokens.weight"]
    decoder.position_encodings.encodings = tensors["model.decoder.embed_positions.weight"]
    _norm(decoder.layer_norm, tensors, "model.decoder.layer_norm")
    for i, layer in enumerate(decoder.layer):
        _layer(layer, tensors, f"model.decoder.layers.{i}", cross=True)
    decoder.projection.weight = tensors["proj_out.weight"]


def non_speech_ids(vocab: Vocabulary) -> list[int]:
    """The symbol tokens Whisper suppresses by default (``suppress_tokens=[-1]``)."""
    byte_ids = {token: i for i, token in enumerate(vocab.tokens[:256])}
    return sorted(byte_ids[ch] for ch in _NON_SPEECH if ch in byte_ids)


def alignment_heads(shape: ModelShape) -> list[tuple[int, int]]:
    """Every head of the second half of the decoder (Whisper's default alignment heads)."""
    layers = range(shape.decoder_layers // 2, shape.decoder_layers)
    return list(itertools.product(layers, range(shape.n_heads)))


def _config(spec: whisper_spec.WhisperSpec, vocab: Vocabulary, shape: ModelShape) -> None:
    config = spec.config
    config.suppress_ids = non_speech_ids(vocab)
    config.suppress_ids_begin = [vocab.id("Ġ"), vocab.id("<|endoftext|>")]
    config.lang_ids = [vocab.id(f"<|{code}|>") for code in vocab.languages]
    config.alignment_heads = alignment_heads(shape)


def save_ctranslate2(
    tensors: Tensors,
    shape: ModelShape,
    vocab: Vocabulary,
    directory: Path,
    *,
    quantization: str | None,
) -> None:
    """Save ``tensors`` (Hugging Face names) as a CTranslate2 Whisper model in ``directory``."""
    spec = whisper_spec.WhisperSpec(
        shape.encoder_layers, shape.n_heads, shape.decoder_layers, shape.n_heads
    )
    _fill_spec(spec, tensors)
    _config(spec, vocab, shape)
    spec.register_vocabulary(list(vocab.tokens))
    spec.validate()
    spec.optimize(quantization=quantization)
    spec.save(str(directory))

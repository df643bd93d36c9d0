"""Build random-weight Whisper models whose decoder follows a fixed script.

Real checkpoints cannot be downloaded where the tests run, so the tests build a model with the
exact layout of a real one (CTranslate2 ``WhisperSpec``, a Whisper ``tokenizer.json`` and
``preprocessor_config.json``) and random encoder weights at full cost. The decoder is scripted:
its layers' output projections are zero, so the residual stream carries only the current token's
embedding, and the output projection is solved so that each token of the script predicts the
next one with a wide margin::

    <|startoftranscript|> -> <|en|>
    <|transcribe|>, <|translate|> -> <|0.00|> -> w1 ... wN -> <|2.00|> -> <|endoftext|>
    <|notimestamps|> -> v1 ... vN -> <|endoftext|>

One dimension of the final layer norm is held at 1 and acts as a bias that keeps
``<|endoftext|>`` far below every other token outside the script, so no beam ends early.
Decoding is then confident and deterministic: no temperature fallback, beam search equals
greedy, segments and timestamps are well formed, language detection says English, and N sets
the decoding work per window. The text does not depend on the audio.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np

from whisperd.engine.base import SAMPLE_RATE
from whisperd.testing.vocab import Vocabulary, build_vocabulary, make_words, write_tokenizer

if TYPE_CHECKING:
    import numpy.typing as npt

    Array = npt.NDArray[np.float32]

ModelFormat = Literal["ctranslate2", "huggingface"]

_MARGIN = 30.0
"""Logit gap between the scripted next token and every other token."""
_EOT_BIAS = 30.0
"""How far below zero ``<|endoftext|>`` sits wherever the script does not end."""


@dataclass(frozen=True, slots=True)
class ModelShape:
    """The dimensions of a Whisper checkpoint."""

    n_mels: int
    d_model: int
    n_heads: int
    encoder_layers: int
    decoder_layers: int
    vocab_size: int
    n_audio_ctx: int = 1500
    n_text_ctx: int = 448

    TINY: ClassVar[ModelShape]
    BASE: ClassVar[ModelShape]
    TURBO: ClassVar[ModelShape]

    @property
    def ffn_dim(self) -> int:
        """Feed-forward width (four times the model width in every Whisper)."""
        return 4 * self.d_model


ModelShape.TINY = ModelShape(
    n_mels=80, d_model=384, n_heads=6, encoder_layers=4, decoder_layers=4, vocab_size=51865
)
ModelShape.BASE = ModelShape(
    n_mels=80, d_model=512, n_heads=8, encoder_layers=6, decoder_layers=6, vocab_size=51865
)
ModelShape.TURBO = ModelShape(
    n_mels=128, d_model=1280, n_heads=20, encoder_layers=32, decoder_layers=4, vocab_size=51866
)


@dataclass(frozen=True, slots=True)
class ScriptedModel:
    """A built model directory and the script its decoder follows."""

    path: Path
    shape: ModelShape
    words: tuple[str, ...]
    """w1 ... wN, decoded with timestamps."""
    plain_words: tuple[str, ...]
    """v1 ... vN, decoded without timestamps."""

    @property
    def text(self) -> str:
        """The text of one window decoded with timestamps."""
        return "".join(" " + word for word in self.words)

    @property
    def plain_text(self) -> str:
        """The text of one window decoded without timestamps."""
        return "".join(" " + word for word in self.plain_words)


class _Weights:
    """Random weights named as in a Hugging Face Whisper checkpoint."""

    def __init__(self, shape: ModelShape, seed: int) -> None:
        self.shape = shape
        self.rng = np.random.default_rng(seed)
        self.tensors: dict[str, Array] = {}

    def normal(self, name: str, *dims: int, scale: float = 0.02) -> Array:
        tensor = (self.rng.standard_normal(dims, dtype=np.float32) * scale).astype(np.float32)
        self.tensors[name] = tensor
        return tensor

    def constant(self, name: str, value: float, *dims: int) -> Array:
        tensor = np.full(dims, value, dtype=np.float32)
        self.tensors[name] = tensor
        return tensor

    def linear(
        self, name: str, n_out: int, n_in: int, *, bias: bool = True, zero: bool = False
    ) -> None:
        """Add ``name.weight`` (and ``name.bias``); ``zero`` makes the layer output nothing."""
        scale = 0.0 if zero else 0.02
        self.normal(f"{name}.weight", n_out, n_in, scale=scale)
        if bias:
            self.normal(f"{name}.bias", n_out, scale=scale)

    def layer_norm(self, name: str) -> None:
        self.constant(f"{name}.weight", 1.0, self.shape.d_model)
        self.constant(f"{name}.bias", 0.0, self.shape.d_model)

    def attention(self, name: str, *, zero_output: bool = False) -> None:
        d = self.shape.d_model
        self.linear(f"{name}.q_proj", d, d)
        self.linear(f"{name}.k_proj", d, d, bias=False)
        self.linear(f"{name}.v_proj", d, d)
        self.linear(f"{name}.out_proj", d, d, zero=zero_output)


def _sinusoids(length: int, channels: int) -> Array:
    """Whisper's fixed sinusoidal position table for the encoder."""
    increment = np.log(10000) / (channels // 2 - 1)
    inv = np.exp(-increment * np.arange(channels // 2, dtype=np.float64))
    scaled = np.arange(length, dtype=np.float64)[:, None] * inv[None, :]
    return np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1).astype(np.float32)


def _encoder_weights(w: _Weights) -> None:
    s = w.shape
    w.normal("model.encoder.conv1.weight", s.d_model, s.n_mels, 3)
    w.normal("model.encoder.conv1.bias", s.d_model)
    w.normal("model.encoder.conv2.weight", s.d_model, s.d_model, 3)
    w.normal("model.encoder.conv2.bias", s.d_model)
    w.tensors["model.encoder.embed_positions.weight"] = _sinusoids(s.n_audio_ctx, s.d_model)
    for i in range(s.encoder_layers):
        prefix = f"model.encoder.layers.{i}"
        w.attention(f"{prefix}.self_attn")
        w.layer_norm(f"{prefix}.self_attn_layer_norm")
        w.linear(f"{prefix}.fc1", s.ffn_dim, s.d_model)
        w.linear(f"{prefix}.fc2", s.d_model, s.ffn_dim)
        w.layer_norm(f"{prefix}.final_layer_norm")
    w.layer_norm("model.encoder.layer_norm")


def _decoder_weights(w: _Weights, *, scripted: bool) -> None:
    s = w.shape
    w.normal("model.decoder.embed_tokens.weight", s.vocab_size, s.d_model, scale=1.0)
    if scripted:
        w.constant("model.decoder.embed_positions.weight", 0.0, s.n_text_ctx, s.d_model)
    else:
        w.normal("model.decoder.embed_positions.weight", s.n_text_ctx, s.d_model, scale=0.5)
    for i in range(s.decoder_layers):
        prefix = f"model.decoder.layers.{i}"
        w.attention(f"{prefix}.self_attn", zero_output=scripted)
        w.layer_norm(f"{prefix}.self_attn_layer_norm")
        w.attention(f"{prefix}.encoder_attn", zero_output=scripted)
        w.layer_norm(f"{prefix}.encoder_attn_layer_norm")
        w.linear(f"{prefix}.fc1", s.ffn_dim, s.d_model)
        w.linear(f"{prefix}.fc2", s.d_model, s.ffn_dim, zero=scripted)
        w.layer_norm(f"{prefix}.final_layer_norm")
    if not scripted:
        w.layer_norm("model.decoder.layer_norm")
        w.normal("proj_out.weight", s.vocab_size, s.d_model, scale=0.3)
        return
    # Dimension 0 of the final norm is a constant 1: the output projection's bias channel.
    w.layer_norm("model.decoder.layer_norm")
    w.tensors["model.decoder.layer_norm.weight"][0] = 0.0
    w.tensors["model.decoder.layer_norm.bias"][0] = 1.0


def _script(vocab: Vocabulary, words: list[str], plain: list[str]) -> list[tuple[int, int]]:
    """The (token, next token) pairs the decoder must follow."""
    start_ts, end_ts = vocab.id("<|0.00|>"), vocab.id("<|2.00|>")
    eot = vocab.id("<|endoftext|>")
    timed = [start_ts, *(vocab.word_id(x) for x in words), end_ts, eot]
    untimed = [vocab.id("<|notimestamps|>"), *(vocab.word_id(x) for x in plain), eot]
    pairs = [
        (vocab.id("<|startoftranscript|>"), vocab.id("<|en|>")),
        (vocab.id("<|transcribe|>"), start_ts),
        (vocab.id("<|translate|>"), start_ts),
    ]
    pairs += list(itertools.pairwise(timed))
    pairs += list(itertools.pairwise(untimed))
    return pairs


def _normed(x: Array) -> Array:
    """The decoder's final layer norm applied to residual rows ``x`` (dimension 0 held at 1)."""
    centred = x - x.mean(axis=-1, keepdims=True)
    out = centred / np.sqrt((centred**2).mean(axis=-1, keepdims=True) + 1e-5)
    out[..., 0] = 1.0
    result: Array = out.astype(np.float32)
    return result


def _solve_projection(w: _Weights, vocab: Vocabulary, pairs: list[tuple[int, int]]) -> None:
    """Choose output rows so each script token predicts its successor by ``_MARGIN``."""
    embeddings = w.tensors["model.decoder.embed_tokens.weight"]
    sources = [src for src, _ in pairs]
    hidden = _normed(embeddings[sources])
    targets = sorted({dst for _, dst in pairs} | {vocab.id("<|endoftext|>")})
    goal = np.zeros((len(pairs), len(targets)), dtype=np.float64)
    column = {token: j for j, token in enumerate(targets)}
    eot = vocab.id("<|endoftext|>")
    goal[:, column[eot]] = -_EOT_BIAS
    for row, (_, dst) in enumerate(pairs):
        goal[row, column[dst]] = _MARGIN
    # The EOT row's bias channel holds -_EOT_BIAS; the rest of the row makes up the difference.
    goal[:, column[eot]] += _EOT_BIAS
    solution, *_ = np.linalg.lstsq(hidden[:, 1:].astype(np.float64), goal, rcond=None)
    projection = np.zeros((w.shape.vocab_size, w.shape.d_model), dtype=np.float32)
    projection[targets, 1:] = solution.T.astype(np.float32)
    projection[eot, 0] = -_EOT_BIAS
    w.tensors["proj_out.weight"] = projection


def make_weights(
    shape: ModelShape,
    vocab: Vocabulary,
    pairs: list[tuple[int, int]],
    seed: int,
    *,
    scripted: bool = True,
) -> dict[str, Array]:
    """Return the full set of weights, in Hugging Face names, for a scripted model.

    Without ``scripted`` every weight is random: the decoder attends to the audio and to its
    own history and emits an arbitrary but deterministic mix of text, timestamps and
    end-of-text, which exercises every decoding rule (parity tests between engines).
    """
    weights = _Weights(shape, seed)
    _encoder_weights(weights)
    _decoder_weights(weights, scripted=scripted)
    if scripted:
        _solve_projection(weights, vocab, pairs)
    return weights.tensors


def build_test_model(
    directory: Path,
    *,
    shape: ModelShape = ModelShape.TINY,
    n_words: int = 24,
    seed: int = 0,
    multilingual: bool = True,
    quantization: str | None = "float16",
    model_format: ModelFormat = "ctranslate2",
    scripted: bool = True,
) -> ScriptedModel:
    """Write a scripted random-weight Whisper model into ``directory``.

    Args:
        directory: Where to write ``model.bin``, ``config.json``, ``vocabulary.json``,
            ``tokenizer.json`` and ``preprocessor_config.json`` (created if missing).
        shape: Model dimensions; ``ModelShape.TINY`` for tests, ``ModelShape.TURBO`` for
            benchmarks.
        n_words: Script length N: the text tokens decoded per 30 s window (about 3 tokens per
            second of speech means N near 88).
        seed: Seed of the random weights and of the word list.
        multilingual: False builds an English-only model (no language detection or
            translation), like the ``*.en`` checkpoints.
        quantization: Weight type stored on disk (CTranslate2 converts at load time).
        model_format: ``ctranslate2`` (``model.bin``, for the CTranslate2 engine) or
            ``huggingface`` (``model.safetensors`` in float32, for the PyTorch engine and
            ``transformers``). The same arguments give the same weights in either format.
        scripted: False makes every decoder weight random (see :func:`make_weights`); the
            script then says nothing about what is decoded.

    Returns:
        The model directory and its script.
    """
    all_words = make_words(2 * n_words, seed)
    words, plain = all_words[:n_words], all_words[n_words:]
    vocab = build_vocabulary(all_words, size=shape.vocab_size, multilingual=multilingual)
    pairs = _script(vocab, words, plain)
    if len(pairs) >= shape.d_model:
        raise ValueError(f"a script of {n_words} words needs d_model > {len(pairs)}")
    tensors = make_weights(shape, vocab, pairs, seed, scripted=scripted)
    directory.mkdir(parents=True, exist_ok=True)
    if model_format == "huggingface":
        from whisperd.testing.huggingface import save_huggingface

        save_huggingface(tensors, shape, vocab, directory)
    else:
        from whisperd.testing.ct2 import save_ctranslate2

        save_ctranslate2(tensors, shape, vocab, directory, quantization=quantization)
    write_tokenizer(vocab, directory)
    preprocessor = {
        "feature_size": shape.n_mels,
        "sampling_rate": SAMPLE_RATE,
        "hop_length": 160,
        "chunk_length": 30,
        "n_fft": 400,
        "n_samples": 480000,
        "nb_max_frames": 3000,
    }
    (directory / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    return ScriptedModel(directory, shape, tuple(words), tuple(plain))

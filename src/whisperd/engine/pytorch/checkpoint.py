"""Reading a Hugging Face Whisper checkpoint: dimensions, decoding constants and weights."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from whisperd.engine.catalogue import HUGGINGFACE
from whisperd.errors import ModelUnavailableError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True, slots=True)
class Dimensions:
    """The sizes of a Whisper model, from ``config.json``."""

    n_mels: int
    d_model: int
    encoder_layers: int
    encoder_heads: int
    encoder_ffn: int
    decoder_layers: int
    decoder_heads: int
    decoder_ffn: int
    vocab_size: int
    n_audio_ctx: int
    n_text_ctx: int


@dataclass(frozen=True, slots=True)
class DecodingConstants:
    """The token ids decoding needs, read the way CTranslate2's converter reads them."""

    suppress_ids: tuple[int, ...]
    """``suppress_tokens=[-1]`` stands for these (non-speech symbols)."""
    suppress_ids_begin: tuple[int, ...]
    """Suppressed at the first generated position when ``suppress_blank`` is on."""
    lang_ids: tuple[int, ...]
    """Language token ids, for language detection."""
    alignment_heads: tuple[tuple[int, int], ...]
    """(decoder layer, head) pairs whose cross-attention aligns text to audio."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A checkpoint directory, read but not yet placed on a device."""

    path: Path
    dims: Dimensions
    constants: DecodingConstants


def _read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"{path.name} of {path.parent} cannot be read: {exc}.") from exc
    if not isinstance(document, dict):
        raise ModelUnavailableError(f"{path.name} of {path.parent} is not a JSON object.")
    return document


def _dimensions(config: dict[str, Any]) -> Dimensions:
    try:
        return Dimensions(
            n_mels=int(config["num_mel_bins"]),
            d_model=int(config["d_model"]),
            encoder_layers=int(config["encoder_layers"]),
            encoder_heads=int(config["encoder_attention_heads"]),
            encoder_ffn=int(config["encoder_ffn_dim"]),
            decoder_layers=int(config["decoder_layers"]),
            decoder_heads=int(config["decoder_attention_heads"]),
            decoder_ffn=int(config["decoder_ffn_dim"]),
            vocab_size=int(config["vocab_size"]),
            n_audio_ctx=int(config.get("max_source_positions", 1500)),
            n_text_ctx=int(config.get("max_target_positions", 448)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelUnavailableError(
            f"config.json is not a Whisper config: {exc!r} missing."
        ) from exc


def _default_heads(dims: Dimensions) -> tuple[tuple[int, int], ...]:
    """Without published alignment heads: every head of the second half of the decoder."""
    return tuple(
        (layer, head)
        for layer in range(dims.decoder_layers // 2, dims.decoder_layers)
        for head in range(dims.decoder_heads)
    )


def _constants(
    config: dict[str, Any], generation: dict[str, Any], dims: Dimensions
) -> DecodingConstants:
    def pick(name: str) -> list[int]:
        value = generation.get(name, config.get(name))
        return [int(v) for v in value] if isinstance(value, list) else []

    lang_to_id = generation.get("lang_to_id") or {}
    heads = generation.get("alignment_heads")
    alignment = (
        tuple((int(layer), int(head)) for layer, head in heads) if heads else _default_heads(dims)
    )
    return DecodingConstants(
        suppress_ids=tuple(pick("suppress_tokens")),
        suppress_ids_begin=tuple(pick("begin_suppress_tokens")),
        lang_ids=tuple(sorted(int(v) for v in lang_to_id.values())),
        alignment_heads=alignment,
    )


def read_checkpoint(path: Path) -> Checkpoint:
    """Read the configuration of the checkpoint in ``path``.

    Raises:
        ModelUnavailableError: if the directory is not a Whisper checkpoint.
    """
    if not HUGGINGFACE.complete(path):
        raise ModelUnavailableError(
            f"{path} is not a Hugging Face Whisper checkpoint (config.json and "
            "model.safetensors are needed)."
        )
    config = _read_json(path / "config.json")
    generation_file = path / "generation_config.json"
    generation = _read_json(generation_file) if generation_file.is_file() else {}
    dims = _dimensions(config)
    return Checkpoint(path=path, dims=dims, constants=_constants(config, generation, dims))


def _weight_files(path: Path) -> list[Path]:
    index = path / "model.safetensors.index.json"
    if index.is_file():
        weight_map = _read_json(index).get("weight_map", {})
        return [path / name for name in sorted(set(weight_map.values()))]
    return [path / "model.safetensors"]


def load_state(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of the checkpoint in ``path``, on the CPU, as stored.

    Raises:
        ModelUnavailableError: if a weight file is missing or damaged.
    """
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for file in _weight_files(path):
        try:
            state.update(load_file(str(file)))
        except (OSError, RuntimeError, ValueError) as exc:
            raise ModelUnavailableError(
                f"Weights {file.name} of {path} cannot be read: {exc}."
            ) from exc
    return state

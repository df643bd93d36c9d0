"""Write Hugging Face-named Whisper weights as a Hugging Face checkpoint directory.

The directory has what ``openai/whisper-*`` repositories have: ``config.json``,
``generation_config.json`` and ``model.safetensors`` (next to the ``tokenizer.json`` and
``preprocessor_config.json`` the caller writes), so both whisperd's PyTorch engine and
``transformers`` load it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from whisperd.testing.ct2 import alignment_heads, non_speech_ids

if TYPE_CHECKING:
    from pathlib import Path

    from whisperd.testing.ct2 import Tensors
    from whisperd.testing.model import ModelShape
    from whisperd.testing.vocab import Vocabulary


def _config(shape: ModelShape, vocab: Vocabulary) -> dict[str, object]:
    eot = vocab.id("<|endoftext|>")
    return {
        "architectures": ["WhisperForConditionalGeneration"],
        "model_type": "whisper",
        "vocab_size": shape.vocab_size,
        "num_mel_bins": shape.n_mels,
        "d_model": shape.d_model,
        "encoder_layers": shape.encoder_layers,
        "encoder_attention_heads": shape.n_heads,
        "encoder_ffn_dim": shape.ffn_dim,
        "decoder_layers": shape.decoder_layers,
        "decoder_attention_heads": shape.n_heads,
        "decoder_ffn_dim": shape.ffn_dim,
        "max_source_positions": shape.n_audio_ctx,
        "max_target_positions": shape.n_text_ctx,
        "activation_function": "gelu",
        "scale_embedding": False,
        "tie_word_embeddings": False,
        "decoder_start_token_id": vocab.id("<|startoftranscript|>"),
        "bos_token_id": eot,
        "eos_token_id": eot,
        "pad_token_id": eot,
        "torch_dtype": "float32",
    }


def _generation_config(shape: ModelShape, vocab: Vocabulary) -> dict[str, object]:
    eot = vocab.id("<|endoftext|>")
    multilingual = "" in vocab.tokens
    document: dict[str, object] = {
        "decoder_start_token_id": vocab.id("<|startoftranscript|>"),
        "bos_token_id": eot,
        "eos_token_id": eot,
        "pad_token_id": eot,
        "max_length": shape.n_text_ctx,
        "no_timestamps_token_id": vocab.id("<|notimestamps|>"),
        "prev_sot_token_id": vocab.id("<|startofprev|>"),
        "suppress_tokens": non_speech_ids(vocab),
        "begin_suppress_tokens": [vocab.id("Ġ"), eot],
        "alignment_heads": [list(pair) for pair in alignment_heads(shape)],
        "is_multilingual": multilingual,
    }
    if multilingual:
        document["lang_to_id"] = {
            f"<|{code}|>": vocab.id(f"<|{code}|>") for code in vocab.languages
        }
        document["task_to_id"] = {
            "transcribe": vocab.id("<|transcribe|>"),
            "translate": vocab.id("<|translate|>"),
        }
    return document


def save_huggingface(
    tensors: Tensors, shape: ModelShape, vocab: Vocabulary, directory: Path
) -> None:
    """Save ``tensors`` (Hugging Face names, float32) as a checkpoint in ``directory``."""
    from safetensors.numpy import save_file

    contiguous = {name: np.ascontiguousarray(tensor) for name, tensor in tensors.items()}
    save_file(contiguous, str(directory / "model.safetensors"), metadata={"format": "pt"})
    (directory / "config.json").write_text(json.dumps(_config(shape, vocab), indent=2))
    generation = _generation_config(shape, vocab)
    (directory / "generation_config.json").write_text(json.dumps(generation, indent=2))

"""Whisper's encoder and decoder in PyTorch, built for batched serving.

The weights are a Hugging Face checkpoint's (``model.encoder.*``, ``model.decoder.*``,
``proj_out``), with each attention's projections fused so a layer costs one matrix product
for q, k and v. Attention is PyTorch's scaled dot-product attention (flash or memory-efficient
kernels on CUDA). The decoder reads and writes a preallocated :class:`KVCache` whose rows are
independent sequences at different positions, which is what continuous batching needs; a
cache-free pass that also returns cross-attention weights serves word alignment and language
detection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from torch import nn

if TYPE_CHECKING:
    from whisperd.engine.pytorch.checkpoint import Dimensions


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``[B, T, D]`` -> ``[B, heads, T, D / heads]``."""
    batch, length, width = x.shape
    return x.view(batch, length, heads, width // heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``[B, heads, T, d]`` -> ``[B, T, heads * d]``."""
    batch, heads, length, width = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * width)


class _Mlp(nn.Module):
    def __init__(self, d_model: int, ffn: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, ffn)
        self.fc2 = nn.Linear(ffn, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc2(F.gelu(self.fc1(x)))
        return out


class EncoderLayer(nn.Module):
    """Pre-norm self-attention and MLP."""

    def __init__(self, d_model: int, heads: int, ffn: int) -> None:
        super().__init__()
        self.heads = heads
        self.attn_norm = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.mlp_norm = nn.LayerNorm(d_model)
        self.mlp = _Mlp(d_model, ffn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(self.attn_norm(x)).chunk(3, dim=-1)
        heads = self.heads
        attended = F.scaled_dot_product_attention(
            _split_heads(q, heads), _split_heads(k, heads), _split_heads(v, heads)
        )
        x = x + self.out(_merge_heads(attended))
        out: torch.Tensor = x + self.mlp(self.mlp_norm(x))
        return out


class DecoderLayer(nn.Module):
    """Pre-norm causal self-attention, cross-attention over the audio, and MLP."""

    def __init__(self, d_model: int, heads: int, ffn: int) -> None:
        super().__init__()
        self.heads = heads
        self.self_norm = nn.LayerNorm(d_model)
        self.self_qkv = nn.Linear(d_model, 3 * d_model)
        self.self_out = nn.Linear(d_model, d_model)
        self.cross_norm = nn.LayerNorm(d_model)
        self.cross_q = nn.Linear(d_model, d_model)
        self.cross_kv = nn.Linear(d_model, 2 * d_model)
        self.cross_out = nn.Linear(d_model, d_model)
        self.mlp_norm = nn.LayerNorm(d_model)
        self.mlp = _Mlp(d_model, ffn)

    def audio_keys(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-attention keys and values of encoder outputs ``[B, S, D]``."""
        k, v = self.cross_kv(audio).chunk(2, dim=-1)
        return _split_heads(k, self.heads), _split_heads(v, self.heads)

    def self_qkv_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        q, k, v = self.self_qkv(self.self_norm(x)).chunk(3, dim=-1)
        return tuple(_split_heads(t, self.heads) for t in (q, k, v))

    def cross_query(self, x: torch.Tensor) -> torch.Tensor:
        return _split_heads(self.cross_q(self.cross_norm(x)), self.heads)


@dataclass(slots=True)
class KVCache:
    """Preallocated keys and values for ``rows`` independent decoder sequences.

    ``self_k``/``self_v``: ``[layers, rows, heads, n_text_ctx, head_dim]``;
    ``cross_k``/``cross_v``: ``[layers, rows, heads, n_audio_ctx, head_dim]``;
    ``audio_len``: valid audio frames of each row (encoder outputs may be shorter than 30 s).
    """

    self_k: torch.Tensor
    self_v: torch.Tensor
    cross_k: torch.Tensor
    cross_v: torch.Tensor
    audio_len: torch.Tensor

    @classmethod
    def zeros(
        cls, dims: Dimensions, rows: int, device: torch.device, dtype: torch.dtype
    ) -> KVCache:
        """An all-zero cache of ``rows`` rows (zeros, not garbage: masked positions are still
        multiplied by their zero weights, and NaN times zero is NaN)."""
        head_dim = dims.d_model // dims.decoder_heads
        shape = (dims.decoder_layers, rows, dims.decoder_heads)

        def zeros(length: int) -> torch.Tensor:
            return torch.zeros((*shape, length, head_dim), device=device, dtype=dtype)

        return cls(
            self_k=zeros(dims.n_text_ctx),
            self_v=zeros(dims.n_text_ctx),
            cross_k=zeros(dims.n_audio_ctx),
            cross_v=zeros(dims.n_audio_ctx),
            audio_len=torch.zeros(rows, dtype=torch.long, device=device),
        )

    @property
    def rows(self) -> int:
        """How many sequences the cache holds."""
        return int(self.self_k.shape[1])

    def move(self, source: torch.Tensor, target: torch.Tensor, *, audio: bool) -> None:
        """Copy rows ``source`` over rows ``target``: the text keys always (beam reordering),
        the audio keys too with ``audio`` (compaction; beams of one window share them)."""
        tensors = [self.self_k, self.self_v]
        if audio:
            tensors += [self.cross_k, self.cross_v]
            self.audio_len[target] = self.audio_len[source]
        for tensor in tensors:
            tensor[:, target] = tensor[:, source]


def cache_bytes_per_row(dims: Dimensions, dtype: torch.dtype) -> int:
    """Memory one cache row takes."""
    width = torch.tensor([], dtype=dtype).element_size()
    per_layer = 2 * dims.d_model * (dims.n_text_ctx + dims.n_audio_ctx) * width
    return dims.decoder_layers * per_layer


class WhisperNet(nn.Module):
    """The Whisper network; see the module docstring."""

    def __init__(self, dims: Dimensions) -> None:
        super().__init__()
        self.dims = dims
        d = dims.d_model
        self.conv1 = nn.Conv1d(dims.n_mels, d, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(d, d, kernel_size=3, stride=2, padding=1)
        self.register_buffer("audio_positions", torch.zeros(dims.n_audio_ctx, d))
        encoder = [
            EncoderLayer(d, dims.encoder_heads, dims.encoder_ffn)
            for _ in range(dims.encoder_layers)
        ]
        self.encoder_layers = nn.ModuleList(encoder)
        self.encoder_norm = nn.LayerNorm(d)
        self.embed = nn.Embedding(dims.vocab_size, d)
        self.text_positions = nn.Parameter(torch.zeros(dims.n_text_ctx, d))
        decoder = [
            DecoderLayer(d, dims.decoder_heads, dims.decoder_ffn)
            for _ in range(dims.decoder_layers)
        ]
        self.decoder_layers = nn.ModuleList(decoder)
        # Typed views of the same modules (ModuleList items are untyped).
        self._encoder: tuple[EncoderLayer, ...] = tuple(encoder)
        self._decoder: tuple[DecoderLayer, ...] = tuple(decoder)
        self.decoder_norm = nn.LayerNorm(d)
        self.proj = nn.Parameter(torch.zeros(dims.vocab_size, d))

    # ----------------------------------------------------------------------------------------
    # Encoder

    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        """Encoder outputs ``[B, frames / 2, D]`` of log-mel windows ``[B, n_mels, frames]``."""
        x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        positions = self.audio_positions
        assert isinstance(positions, torch.Tensor)
        x = x + positions[: x.shape[1]]
        for layer in self._encoder:
            x = layer(x)
        normed: torch.Tensor = self.encoder_norm(x)
        return normed

    # ----------------------------------------------------------------------------------------
    # Decoder over the cache

    def fill_audio(self, cache: KVCache, rows: torch.Tensor, audio: torch.Tensor) -> None:
        """Store cross-attention keys of encoder outputs ``audio`` ``[len(rows), S, D]``."""
        frames = audio.shape[1]
        for index, layer in enumerate(self._decoder):
            k, v = layer.audio_keys(audio)
            cache.cross_k[index, rows, :, :frames] = k
            cache.cross_v[index, rows, :, :frames] = v
        cache.audio_len[rows] = frames

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        normed: torch.Tensor = self.decoder_norm(hidden)
        return (normed @ self.proj.T).float()

    def decode(
        self,
        cache: KVCache,
        rows: slice,
        tokens: torch.Tensor,
        positions: torch.Tensor,
        *,
        text_len: int,
        audio_len: int,
        uniform_audio: bool,
    ) -> torch.Tensor:
        """Run tokens ``[m, P]`` at ``positions`` ``[m, P]`` for cache rows ``rows`` and
        return the final hidden states ``[m, P, D]``; keys and values are written to the cache.

        ``text_len`` bounds every position + 1 and ``audio_len`` every row's audio frames;
        ``uniform_audio`` says all rows have ``audio_len`` frames (no cross mask needed).
        """
        m, length = tokens.shape
        x: torch.Tensor = self.embed(tokens) + self.text_positions[positions]
        keys = torch.arange(text_len, device=tokens.device)
        self_mask = (keys[None, None, :] <= positions[:, :, None]).unsqueeze(1)
        cross_mask = None
        if not uniform_audio:
            frames = torch.arange(audio_len, device=tokens.device)
            cross_mask = (frames[None, :] < cache.audio_len[rows, None]).view(m, 1, 1, audio_len)
        batch = torch.arange(m, device=tokens.device)
        for index, layer in enumerate(self._decoder):
            q, k, v = layer.self_qkv_heads(x)
            cache_k, cache_v = cache.self_k[index, rows], cache.self_v[index, rows]
            if length == 1:
                cache_k[batch, :, positions[:, 0]] = k[:, :, 0]
                cache_v[batch, :, positions[:, 0]] = v[:, :, 0]
            else:
                cache_k[:, :, :length] = k
                cache_v[:, :, :length] = v
            attended = F.scaled_dot_product_attention(
                q, cache_k[:, :, :text_len], cache_v[:, :, :text_len], attn_mask=self_mask
            )
            x = x + layer.self_out(_merge_heads(attended))
            attended = F.scaled_dot_product_attention(
                layer.cross_query(x),
                cache.cross_k[index, rows, :, :audio_len],
                cache.cross_v[index, rows, :, :audio_len],
                attn_mask=cross_mask,
            )
            x = x + layer.cross_out(_merge_heads(attended))
            x = x + layer.mlp(layer.mlp_norm(x))
        return x

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Float32 logits of final hidden states."""
        return self._logits(hidden)

    # ----------------------------------------------------------------------------------------
    # Cache-free pass (alignment, language detection, tests)

    def forward_text(
        self,
        tokens: torch.Tensor,
        audio: torch.Tensor,
        weights_of: frozenset[int] = frozenset(),
    ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """Logits ``[B, P, V]`` of full sequences ``tokens`` ``[B, P]`` over encoder outputs
        ``audio`` ``[B, S, D]``, and the cross-attention weights ``[B, heads, P, S]`` of the
        decoder layers in ``weights_of``."""
        length = tokens.shape[1]
        x = self.embed(tokens) + self.text_positions[:length]
        weights: dict[int, torch.Tensor] = {}
        for index, layer in enumerate(self._decoder):
            q, k, v = layer.self_qkv_heads(x)
            attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + layer.self_out(_merge_heads(attended))
            audio_k, audio_v = layer.audio_keys(audio)
            query = layer.cross_query(x)
            if index in weights_of:
                scale = query.shape[-1] ** -0.5
                probs = torch.softmax((query @ audio_k.transpose(-1, -2)).float() * scale, dim=-1)
                weights[index] = probs
                attended = probs.to(audio_v.dtype) @ audio_v
            else:
                attended = F.scaled_dot_product_attention(query, audio_k, audio_v)
            x = x + layer.cross_out(_merge_heads(attended))
            x = x + layer.mlp(layer.mlp_norm(x))
        return self._logits(x), weights


def _fuse(state: dict[str, torch.Tensor], prefix: str, parts: str) -> dict[str, torch.Tensor]:
    weights, biases = [], []
    for part in parts:
        weight = state[f"{prefix}.{part}_proj.weight"]
        weights.append(weight)
        bias = state.get(f"{prefix}.{part}_proj.bias")
        biases.append(
            bias if bias is not None else torch.zeros(weight.shape[0], dtype=weight.dtype)
        )
    return {"weight": torch.cat(weights), "bias": torch.cat(biases)}


def _norm(state: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    return {"weight": state[f"{name}.weight"], "bias": state[f"{name}.bias"]}


def _linear(state: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    return {"weight": state[f"{name}.weight"], "bias": state[f"{name}.bias"]}


def _prefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{name}": tensor for name, tensor in tensors.items()}


def convert_state(dims: Dimensions, hf: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a Hugging Face Whisper state dict onto :class:`WhisperNet`'s parameter names.

    Raises:
        KeyError: naming the first tensor the checkpoint lacks.
    """
    state = {k.removeprefix("model."): v for k, v in hf.items()}
    out: dict[str, torch.Tensor] = {}
    for conv in ("conv1", "conv2"):
        out.update(_prefixed(conv, _linear(state, f"encoder.{conv}")))
    out["audio_positions"] = state["encoder.embed_positions.weight"]
    for i in range(dims.encoder_layers):
        src, dst = f"encoder.layers.{i}", f"encoder_layers.{i}"
        out.update(_prefixed(f"{dst}.attn_norm", _norm(state, f"{src}.self_attn_layer_norm")))
        out.update(_prefixed(f"{dst}.qkv", _fuse(state, f"{src}.self_attn", "qkv")))
        out.update(_prefixed(f"{dst}.out", _linear(state, f"{src}.self_attn.out_proj")))
        out.update(_prefixed(f"{dst}.mlp_norm", _norm(state, f"{src}.final_layer_norm")))
        out.update(_prefixed(f"{dst}.mlp.fc1", _linear(state, f"{src}.fc1")))
        out.update(_prefixed(f"{dst}.mlp.fc2", _linear(state, f"{src}.fc2")))
    out.update(_prefixed("encoder_norm", _norm(state, "encoder.layer_norm")))
    out["embed.weight"] = state["decoder.embed_tokens.weight"]
    out["text_positions"] = state["decoder.embed_positions.weight"]
    for i in range(dims.decoder_layers):
        src, dst = f"decoder.layers.{i}", f"decoder_layers.{i}"
        out.update(_prefixed(f"{dst}.self_norm", _norm(state, f"{src}.self_attn_layer_norm")))
        out.update(_prefixed(f"{dst}.self_qkv", _fuse(state, f"{src}.self_attn", "qkv")))
        out.update(_prefixed(f"{dst}.self_out", _linear(state, f"{src}.self_attn.out_proj")))
        out.update(_prefixed(f"{dst}.cross_norm", _norm(state, f"{src}.encoder_attn_layer_norm")))
        out.update(_prefixed(f"{dst}.cross_q", _fuse(state, f"{src}.encoder_attn", "q")))
        out.update(_prefixed(f"{dst}.cross_kv", _fuse(state, f"{src}.encoder_attn", "kv")))
        out.update(_prefixed(f"{dst}.cross_out", _linear(state, f"{src}.encoder_attn.out_proj")))
        out.update(_prefixed(f"{dst}.mlp_norm", _norm(state, f"{src}.final_layer_norm")))
        out.update(_prefixed(f"{dst}.mlp.fc1", _linear(state, f"{src}.fc1")))
        out.update(_prefixed(f"{dst}.mlp.fc2", _linear(state, f"{src}.fc2")))
    out.update(_prefixed("decoder_norm", _norm(state, "decoder.layer_norm")))
    # Real checkpoints tie the output projection to the token embedding.
    out["proj"] = hf.get("proj_out.weight", out["embed.weight"])
    return out


def build_network(
    dims: Dimensions, hf_state: dict[str, torch.Tensor], device: torch.device, dtype: torch.dtype
) -> WhisperNet:
    """A :class:`WhisperNet` holding ``hf_state`` on ``device`` in ``dtype``, in eval mode.

    Raises:
        KeyError: if the state lacks a tensor.
        RuntimeError: if a tensor has the wrong shape.
    """
    with torch.device("meta"):
        net = WhisperNet(dims)
    net.load_state_dict(convert_state(dims, hf_state), strict=True, assign=True)
    net = net.to(device=device, dtype=dtype)
    net.eval()
    net.requires_grad_(False)
    return net

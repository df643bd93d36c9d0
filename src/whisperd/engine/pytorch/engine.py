"""The PyTorch engine: Hugging Face Whisper checkpoints, scheduled and continuously batched."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import tokenizers
import torch

from whisperd.engine.base import ModelInfo
from whisperd.engine.pytorch.backend import RequestModel, TorchWhisper
from whisperd.engine.pytorch.checkpoint import Dimensions, load_state, read_checkpoint
from whisperd.engine.pytorch.features import TorchFeatureExtractor
from whisperd.engine.pytorch.modeling import build_network, cache_bytes_per_row
from whisperd.engine.pytorch.rules import Vocab
from whisperd.engine.whisper import BatchingConfig, FasterWhisperEngine, faster_whisper_shell
from whisperd.errors import ModelUnavailableError
from whisperd.scheduler.batcher import Batcher

if TYPE_CHECKING:
    from pathlib import Path

    from whisperd.engine.hub import ResolvedModel
    from whisperd.engine.pytorch.checkpoint import Checkpoint
    from whisperd.engine.pytorch.modeling import WhisperNet
    from whisperd.scheduler.batcher import Ticket

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_BFLOAT16 = frozenset({"bfloat16", "int8_bfloat16"})
_CPU_ROWS = 64
_MAX_ROWS = 1024
_CACHE_SHARE = 0.5
"""Share of free GPU memory the decoder's key/value cache may grow into."""
_ENCODER_SHARE = 0.15
"""Share of free GPU memory one encoder pass may use for activations."""


def torch_device(device: str) -> torch.device:
    """``auto`` is CUDA when PyTorch sees a GPU, else the CPU.

    Raises:
        ModelUnavailableError: if CUDA is asked for and PyTorch has none.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailableError(
            "device 'cuda' was asked for but PyTorch sees no CUDA GPU; use device cpu or auto.",
            param="device",
        )
    return torch.device(device)


def torch_compute_type(compute_type: str, device: torch.device) -> str:
    """The floating-point type the torch engine runs for a compute type setting.

    Half precision (float16 for ``auto`` and the int8 types) on CUDA; float32 on the CPU.
    """
    if device.type != "cuda" or compute_type == "float32":
        return "float32"
    return "bfloat16" if compute_type in _BFLOAT16 else "float16"


@dataclass(frozen=True, slots=True)
class _Facts:
    """What faster-whisper reads off its model object outside of model calls."""

    is_multilingual: bool
    n_mels: int
    device: str
    device_index: tuple[int, ...] = (0,)


def plan_memory(
    dims: Dimensions, dtype: torch.dtype, device: torch.device, max_rows: int
) -> tuple[int, int]:
    """(decoder rows, windows per encoder pass) for ``device``'s free memory.

    ``max_rows`` above 0 is taken as given. On the CPU: 64 rows, 8 windows.
    """
    if device.type != "cuda":
        return max_rows or _CPU_ROWS, 8
    free, _ = torch.cuda.mem_get_info(device)
    per_row = cache_bytes_per_row(dims, dtype)
    rows = max_rows or max(8, min(_MAX_ROWS, int(free * _CACHE_SHARE) // per_row))
    width = torch.tensor([], dtype=dtype).element_size()
    per_window = dims.n_audio_ctx * (dims.encoder_ffn + 8 * dims.d_model) * width
    windows = max(1, min(256, int(free * _ENCODER_SHARE) // per_window))
    return rows, windows


def _vocab(tokenizer: tokenizers.Tokenizer, checkpoint: Checkpoint) -> Vocab:
    def token(*names: str) -> int:
        for name in names:
            found = tokenizer.token_to_id(name)
            if found is not None:
                return int(found)
        raise ModelUnavailableError(f"The tokenizer of {checkpoint.path} has no {names[0]}.")

    return Vocab(
        size=checkpoint.dims.vocab_size,
        eot=token("<|endoftext|>"),
        sot=token("<|startoftranscript|>"),
        no_timestamps=token("<|notimestamps|>"),
        timestamp_begin=token("<|0.00|>"),
        no_speech=token("<|nospeech|>", "<|nocaptions|>"),
        suppress_ids=checkpoint.constants.suppress_ids,
        suppress_ids_begin=checkpoint.constants.suppress_ids_begin,
    )


def _load(
    path: Path, checkpoint: Checkpoint, device: torch.device, dtype: torch.dtype
) -> WhisperNet:
    try:
        return build_network(checkpoint.dims, load_state(path), device, dtype)
    except (KeyError, RuntimeError) as exc:
        raise ModelUnavailableError(
            f"{path} is not a usable Whisper checkpoint on {device}: {exc}."
        ) from exc


class TorchEngine(FasterWhisperEngine):
    """A Whisper checkpoint on PyTorch, behind faster-whisper's decoding loop."""

    def __init__(
        self,
        model: ResolvedModel,
        *,
        device: str = "auto",
        compute_type: str = "auto",
        cpu_threads: int = 0,
        batching: BatchingConfig | None = None,
        max_rows: int = 0,
        graph_rows: int = 128,
    ) -> None:
        """Load ``model`` (a Hugging Face checkpoint directory) on ``device``.

        ``batching`` sizes encoder batches and their wait; the decoder holds ``max_rows``
        sequences (0: sized from free memory). On CUDA, decoder steps of up to ``graph_rows``
        rows replay CUDA graphs (0: never).

        Raises:
            ModelUnavailableError: if the checkpoint cannot be read or loaded.
        """
        place = torch_device(device)
        compute = torch_compute_type(compute_type, place)
        dtype = _DTYPES[compute]
        if cpu_threads > 0 and place.type == "cpu":
            torch.set_num_threads(cpu_threads)
        checkpoint = read_checkpoint(model.path)
        tokenizer = tokenizers.Tokenizer.from_file(str(model.path / "tokenizer.json"))
        vocab = _vocab(tokenizer, checkpoint)
        net = _load(model.path, checkpoint, place, dtype)
        languages = {i: str(tokenizer.id_to_token(i)) for i in checkpoint.constants.lang_ids}
        rows, windows = plan_memory(checkpoint.dims, dtype, place, max_rows)
        batching = batching or BatchingConfig()
        self.backend = TorchWhisper(
            net,
            vocab,
            checkpoint.constants,
            languages,
            max_rows=rows,
            encode_batch=windows,
            fixed_rows=graph_rows if place.type == "cuda" else 0,
        )
        facts = _Facts(bool(languages), checkpoint.dims.n_mels, place.type)
        shell = faster_whisper_shell(model.path, facts)
        if place.type == "cuda":  # on the CPU, faster-whisper's NumPy featurizer is as fast
            shell.feature_extractor = TorchFeatureExtractor(place, **shell.feat_kwargs)
        decoder = self.backend.decoder
        decoder.start()  # captures the CUDA graphs, before any other thread uses the GPU
        batcher = Batcher(
            self.backend.run_batch,
            max_batch_size=max(batching.max_batch_size, windows if place.type == "cuda" else 1),
            max_wait_s=batching.max_wait_ms / 1000,
            workers=1,
            name="whisperd-encoder",
            observer=batching.observer,
        )
        extra = {"engine": "torch", "decoder_rows": str(rows)}
        if decoder.graph_sizes:
            extra["cuda_graphs"] = ",".join(map(str, decoder.graph_sizes))
        info = ModelInfo(
            name=model.name,
            path=str(model.path),
            multilingual=bool(languages),
            languages=tuple(shell.supported_languages),
            device=place.type,
            compute_type=compute,
            n_mels=checkpoint.dims.n_mels,
            extra=extra,
        )
        super().__init__(shell, info, batcher)
        batcher.start()
        logger.info(
            "loaded model %s from %s on %s (%s, torch engine, %d decoder rows, CUDA graphs: %s)",
            model.name,
            model.path,
            place,
            compute,
            rows,
            extra.get("cuda_graphs", "none"),
        )

    def _stand_in(self, ticket: Ticket, *, trim: bool) -> RequestModel:
        return RequestModel(self.backend, self.batcher, ticket, trim_padding=trim)

    def close(self) -> None:
        """Stop the scheduler and the decoder and free the device memory."""
        super().close()
        self.backend.decoder.stop()
        if self.backend.device.type == "cuda":
            torch.cuda.empty_cache()

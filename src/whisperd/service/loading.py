"""How the service builds an engine for a resolved model: the settings' engine and threading."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from whisperd.config import Settings
    from whisperd.engine.base import Engine
    from whisperd.engine.hub import ResolvedModel
    from whisperd.engine.manager import Loader


def whisper_loader(settings: Settings, engine: str = "ctranslate2") -> Loader:
    """Return a loader that builds ``engine`` engines with the settings' threading."""

    def load(model: ResolvedModel, device: str, compute_type: str) -> Engine:
        from whisperd.engine.whisper import BatchingConfig, WhisperEngine

        batching = BatchingConfig(settings.max_batch_size, settings.max_batch_wait_ms)
        if engine == "torch":
            from whisperd.engine.pytorch.engine import TorchEngine

            return TorchEngine(
                model,
                device=device,
                compute_type=compute_type,
                cpu_threads=settings.cpu_threads,
                batching=batching,
                max_rows=settings.max_decode_rows,
                graph_rows=settings.cuda_graph_rows,
            )
        return WhisperEngine(
            model,
            device=device,
            compute_type=compute_type,
            cpu_threads=settings.cpu_threads,
            num_workers=settings.num_workers,
            batching=batching,
        )

    return load

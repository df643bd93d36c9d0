"""How the service gets its models: the settings' engine and threading, the model format that
engine reads, the concrete hardware that keys a loaded model, and the quick check a server runs
on its default model before it listens."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from whisperd.engine.catalogue import FORMATS
from whisperd.engine.hub import check_model
from whisperd.engine.selection import ENGINE_FORMATS, choose_engine, concrete_hardware

if TYPE_CHECKING:
    from whisperd.config import Settings
    from whisperd.engine.base import Engine
    from whisperd.engine.catalogue import ModelFormat
    from whisperd.engine.hub import ResolvedModel
    from whisperd.engine.manager import Hardware, Loader
    from whisperd.scheduler.batcher import BatchObserver


def model_format(engine: str) -> ModelFormat:
    """The format of the weights ``engine`` (``ctranslate2`` or ``torch``) loads."""
    return FORMATS[ENGINE_FORMATS[engine]]


def model_hardware(engine: str) -> Hardware:
    """How ``engine`` (``ctranslate2`` or ``torch``) resolves ``auto`` device and compute type,
    for the model manager's keys (:func:`~whisperd.engine.selection.concrete_hardware`)."""

    def concrete(device: str, compute_type: str) -> tuple[str, str]:
        return concrete_hardware(engine, device, compute_type)

    return concrete


def check_default_model(settings: Settings) -> None:
    """Refuse, quickly and without the network, a default model that surely cannot be had.

    For a server to run before it listens: a name that selects no model, a missing or
    incomplete model directory, the torch engine without PyTorch, and offline a model missing
    from the cache all fail here. A model still to be downloaded passes (the download runs in
    the background once the server listens). Blocking: imports the engine's libraries.

    Raises:
        UnknownModelError: if ``settings.model`` selects no model.
        ModelUnavailableError: if the engine is missing, or offline the model is not cached.
    """
    engine = choose_engine(settings.engine, settings.device)
    check_model(
        settings.model,
        models_dir=settings.models_dir,
        offline=settings.offline,
        fmt=model_format(engine),
    )


CPU_MAX_BATCH_SIZE = 2
"""Windows per merged CTranslate2 call on the CPU with one worker, unless ``max_batch_size`` is
set: memory grows with windows times beams, throughput does not (see
``Settings.max_batch_size``). With several workers, one window per call."""

CPU_MAX_WORKERS = 4
"""Most model calls CTranslate2 runs at once on the CPU unless ``num_workers`` or
``cpu_threads`` is set."""


@dataclass(frozen=True, slots=True)
class ModelThreads:
    """How a CTranslate2 model uses the CPU: ``workers`` model calls at once (CTranslate2's
    ``inter_threads``, the scheduler's worker threads), each on ``threads`` cores
    (``intra_threads``; 0 is CTranslate2's own default)."""

    workers: int
    threads: int


def model_threads(settings: Settings, engine: str, device: str) -> ModelThreads:
    """The settings' ``num_workers`` and ``cpu_threads`` when either was set; for CTranslate2
    on the CPU otherwise, one worker per core (at most :data:`CPU_MAX_WORKERS`), the cores
    shared evenly among them.

    A Whisper decoder step's matrices are too small to keep two threads of one call busy. On
    2 cores with tiny.en, against one two-thread call at a time (docs/benchmarks.md, "CPU
    threads of the model"): 4 concurrent streams' finals came 2.5x sooner (p50 and p95),
    16 concurrent clients got 1.06x the throughput at the same memory (one window per call),
    a long file cost 0.87x the CPU; a lone short clip takes about 1.2x as long.
    """
    chosen = {"num_workers", "cpu_threads"} & settings.model_fields_set
    if chosen or engine != "ctranslate2" or device != "cpu":
        return ModelThreads(settings.num_workers, settings.cpu_threads)
    cores = available_cores()
    workers = min(cores, CPU_MAX_WORKERS)
    return ModelThreads(workers, max(1, cores // workers))


def available_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS reports one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def max_batch_size(settings: Settings, engine: str, device: str) -> int:
    """The scheduler's most windows per model call: ``max_batch_size`` when it was set (flag,
    environment or argument); for CTranslate2 on the CPU otherwise, :data:`CPU_MAX_BATCH_SIZE`
    with one worker and 1 with several (the windows in flight, and so the memory, stay
    bounded); the setting's default elsewhere."""
    chosen = "max_batch_size" in settings.model_fields_set
    if not chosen and engine == "ctranslate2" and device == "cpu":
        workers = model_threads(settings, engine, device).workers
        return CPU_MAX_BATCH_SIZE if workers == 1 else 1
    return settings.max_batch_size


def whisper_loader(
    settings: Settings, engine: str = "ctranslate2", *, observer: BatchObserver | None = None
) -> Loader:
    """Return a loader that builds ``engine`` engines with the settings' threading, whose
    schedulers tell ``observer`` of every model call they run."""

    def load(model: ResolvedModel, device: str, compute_type: str) -> Engine:
        from whisperd.engine.whisper import BatchingConfig, WhisperEngine

        batching = BatchingConfig(
            max_batch_size(settings, engine, device), settings.max_batch_wait_ms, observer=observer
        )
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
        threads = model_threads(settings, engine, device)
        return WhisperEngine(
            model,
            device=device,
            compute_type=compute_type,
            cpu_threads=threads.threads,
            num_workers=threads.workers,
            batching=batching,
        )

    return load

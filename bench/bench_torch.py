"""The PyTorch engine: offline throughput by batch size, concurrent clients, and transformers.

In one run, on the same weights (a scripted random-weight Hugging Face checkpoint decoding
``--words`` tokens per 30 s window, ~3 per second of audio by default) and the same audio:

* offline: one long file through whisperd's torch engine with ``batch_size`` 1 ... 256, and
  through the Hugging Face ``transformers`` pipeline (batched, SDPA attention: what
  insanely-fast-whisper runs) at the same batch sizes;
* concurrency: ``--clients`` requests of a 30 s clip at once through the engine's scheduler and
  continuous decoder, against the same requests one at a time;
* on CUDA, CUDA graphs: the concurrency run and an offline run at batch 8 with decoder steps
  replayed as graphs (``WHISPERD_CUDA_GRAPH_ROWS``, default 128) against eager steps.

Decoding is greedy everywhere (the transformers pipeline's default, and insanely-fast-whisper's).
Every result is audio seconds per wall second (RTFx) and a ratio to its same-run baseline.

    python bench/bench_torch.py --shape turbo --device cuda --minutes 10 --write docs/benchmarks.md
    python bench/bench_torch.py --shape tiny --device cpu --minutes 2 --batches 1,8
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

import common
from bench_long_file import long_audio
from common import ROOT, SHAPES, machine, model_dir, write_section
from whisperd.engine.hub import ResolvedModel
from whisperd.engine.options import TranscribeOptions
from whisperd.engine.pytorch.engine import TorchEngine


def timed(repeats: int, fn: Callable[[], object]) -> float:
    """Median wall time of ``fn``, GPU work included."""
    return common.timed(repeats, fn, torch.cuda.synchronize if torch.cuda.is_available() else None)


def transformers_pipeline(path: Path, device: str, batch: int) -> Callable[[np.ndarray], object]:
    """The transformers ASR pipeline on ``path``: 30 s chunks, batched, SDPA attention."""
    from transformers import pipeline

    dtype = torch.float16 if device == "cuda" else torch.float32
    asr = pipeline(
        "automatic-speech-recognition",
        model=str(path),
        device=device,
        dtype=dtype,
        model_kwargs={"attn_implementation": "sdpa"},
    )
    if asr.tokenizer.pad_token is None:  # the test checkpoint ships tokenizer.json alone
        asr.tokenizer.pad_token = "<|endoftext|>"

    def run(audio: np.ndarray) -> object:
        return asr(
            {"raw": audio, "sampling_rate": 16000},
            chunk_length_s=30,
            batch_size=batch,
            return_timestamps=True,
            generate_kwargs={"language": "en", "task": "transcribe"},
        )

    return run


def offline(engine: TorchEngine, path: Path, audio: np.ndarray, args: argparse.Namespace) -> str:
    seconds = len(audio) / 16000
    lines = [
        "| batch | whisperd torch RTFx | transformers pipeline RTFx | ratio |",
        "|---|---|---|---|",
    ]
    for batch in args.batches:
        options = TranscribeOptions(batch_size=batch, language="en", beam_size=1)
        ours = seconds / timed(args.repeats, lambda o=options: engine.transcribe(audio, o))
        theirs_run = transformers_pipeline(path, args.device, batch)
        theirs = seconds / timed(args.repeats, lambda r=theirs_run: r(audio))
        lines.append(f"| {batch} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f}x |")
    return "\n".join(lines)


def concurrent_run(
    engine: TorchEngine, audio: np.ndarray, clients: int
) -> tuple[float, Callable[[], object]]:
    """(audio seconds, a call running ``clients`` 30 s requests at once)."""
    clip = audio[: 30 * 16000]
    options = TranscribeOptions(language="en", vad_filter=False, beam_size=1)

    def together() -> None:
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(lambda _: engine.transcribe(clip, options), range(clients)))

    return clients * len(clip) / 16000, together


def concurrency(engine: TorchEngine, audio: np.ndarray, clients: int, repeats: int) -> str:
    total, together = concurrent_run(engine, audio, clients)
    clip = audio[: 30 * 16000]
    options = TranscribeOptions(language="en", vad_filter=False, beam_size=1)

    def sequential() -> None:
        for _ in range(clients):
            engine.transcribe(clip, options)

    alone = total / timed(repeats, sequential)
    stats = engine.backend.decoder.stats
    steps, row_steps = stats.steps, stats.row_steps
    shared = total / timed(repeats, together)
    mean_rows = (stats.row_steps - row_steps) / max(1, stats.steps - steps)
    return (
        f"| clients | one at a time RTFx | concurrent RTFx | ratio | mean decoder rows |\n"
        f"|---|---|---|---|---|\n"
        f"| {clients} | {alone:.1f} | {shared:.1f} | {shared / alone:.2f}x "
        f"| {mean_rows:.1f} |"
    )


def graphs_vs_eager(path: Path, audio: np.ndarray, args: argparse.Namespace) -> str:
    """Offline batch 8 and the concurrent run, with CUDA graphs and with eager steps."""
    results = {}
    for rows in (128, 0):
        engine = load(path, args.device, rows)
        try:
            options = TranscribeOptions(batch_size=8, language="en", beam_size=1)
            offline_rtfx = (
                len(audio)
                / 16000
                / timed(args.repeats, lambda o=options, e=engine: e.transcribe(audio, o))
            )
            total, together = concurrent_run(engine, audio, args.clients)
            results[rows] = (offline_rtfx, total / timed(args.repeats, together))
            sizes = engine.info.extra.get("cuda_graphs", "none")
        finally:
            engine.close()
        print(f"graph rows {rows}: captured sizes {sizes}", flush=True)
    (graph_offline, graph_load), (eager_offline, eager_load) = results[128], results[0]
    return (
        "| run | eager steps RTFx | CUDA graph steps RTFx | ratio |\n|---|---|---|---|\n"
        f"| offline, batch 8 | {eager_offline:.1f} | {graph_offline:.1f} "
        f"| {graph_offline / eager_offline:.2f}x |\n"
        f"| {args.clients} concurrent clients | {eager_load:.1f} | {graph_load:.1f} "
        f"| {graph_load / eager_load:.2f}x |"
    )


def load(path: Path, device: str, graph_rows: int = 128) -> TorchEngine:
    """The torch engine on the scripted checkpoint."""
    return TorchEngine(
        ResolvedModel(path.name, path, None, None), device=device, graph_rows=graph_rows
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="tiny", choices=sorted(SHAPES))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--words", type=int, default=88)
    parser.add_argument("--batches", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=ROOT / ".bench-models")
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    path = model_dir(args.shape, args.cache, args.words, model_format="huggingface")
    audio = long_audio(args.minutes)
    engine = load(path, args.device)
    try:
        gpu = torch.cuda.get_device_name() if args.device == "cuda" else "none"
        header = (
            f"`cd bench && python bench_torch.py {' '.join(sys.argv[1:])}`\n\n"
            f"Machine: {machine()}; GPU: {gpu}; torch {torch.__version__}; shape {args.shape}, "
            f"{args.words} tokens per window, {args.minutes} min of audio; "
            f"{engine.info.compute_type}, {engine.info.extra['decoder_rows']} decoder rows. "
            "Baselines in the same run: the transformers ASR pipeline (batched, SDPA) on the "
            "same weights and audio, and the same requests one at a time."
        )
        if args.device == "cpu":
            header += (
                " A CPU sanity run: the engine's targets are for the turbo shape on an H200 "
                "(`--shape turbo --device cuda --minutes 10 --batches 1,8,32,64,128,256 "
                "--clients 32`, which adds CUDA-graph decoder steps against eager ones)."
            )
        parts = [
            header,
            "Offline, one long file (greedy):\n\n" + offline(engine, path, audio, args),
            "Concurrent 30 s requests (greedy, one window each):\n\n"
            + concurrency(engine, audio, args.clients, args.repeats),
        ]
    finally:
        engine.close()
    if args.device == "cuda":
        parts.append(
            "Decoder steps as CUDA graphs vs eager:\n\n" + graphs_vs_eager(path, audio, args)
        )
    body = "\n\n".join(parts)
    write_section(args.write, f"PyTorch engine ({args.device}, {args.shape} shape)", body)


if __name__ == "__main__":
    main()

"""The PyTorch engine: offline throughput by batch size, concurrent clients, and transformers.

In one run, on the same weights (a scripted random-weight Hugging Face checkpoint decoding
``--words`` tokens per 30 s window, ~3 per second of audio by default) and the same audio:

* offline: one long file through whisperd's torch engine with ``batch_size`` 1 ... 256, and
  through the Hugging Face ``transformers`` pipeline (batched, SDPA attention: what
  insanely-fast-whisper runs) at the same batch sizes;
* concurrency: ``--clients`` requests of a 30 s clip at once through the engine's scheduler and
  continuous decoder, against the same requests one at a time.

Every result is audio seconds per wall second (RTFx) and a ratio to its same-run baseline.

    python bench/bench_torch.py --shape turbo --device cuda --minutes 10 --write docs/benchmarks.md
    python bench/bench_torch.py --shape tiny --device cpu --minutes 2 --batches 1,8
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from bench_long_file import long_audio
from common import ROOT, SHAPES, machine, write_section
from whisperd.engine.options import TranscribeOptions
from whisperd.engine.pytorch.engine import TorchEngine
from whisperd.engine.registry import ResolvedModel
from whisperd.testing import build_test_model


def checkpoint(shape: str, words: int, cache: Path) -> Path:
    """Build (once) the scripted checkpoint of ``shape``."""
    path = cache / f"{shape}-hf-scripted-{words}"
    if not (path / "model.safetensors").exists():
        build_test_model(path, shape=SHAPES[shape], n_words=words, model_format="huggingface")
    return path


def timed(repeats: int, fn: Callable[[], object]) -> float:
    """Median wall time of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


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
        options = TranscribeOptions(batch_size=batch, language="en")
        ours = seconds / timed(args.repeats, lambda o=options: engine.transcribe(audio, o))
        theirs_run = transformers_pipeline(path, args.device, batch)
        theirs = seconds / timed(args.repeats, lambda r=theirs_run: r(audio))
        lines.append(f"| {batch} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f}x |")
    return "\n".join(lines)


def concurrency(engine: TorchEngine, audio: np.ndarray, clients: int, repeats: int) -> str:
    clip = audio[: 30 * 16000]
    options = TranscribeOptions(language="en", vad_filter=False)

    def one() -> object:
        return engine.transcribe(clip, options)

    def sequential() -> None:
        for _ in range(clients):
            one()

    def together() -> None:
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(lambda _: one(), range(clients)))

    total = clients * len(clip) / 16000
    alone = total / timed(repeats, sequential)
    shared = total / timed(repeats, together)
    stats = engine.backend.decoder.stats
    return (
        f"| clients | one at a time RTFx | concurrent RTFx | ratio | mean decoder rows |\n"
        f"|---|---|---|---|---|\n"
        f"| {clients} | {alone:.1f} | {shared:.1f} | {shared / alone:.2f}x "
        f"| {stats.mean_rows():.1f} |"
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
    path = checkpoint(args.shape, args.words, args.cache)
    audio = long_audio(args.minutes)
    engine = TorchEngine(ResolvedModel(path.name, path, None, None), device=args.device)
    try:
        gpu = torch.cuda.get_device_name() if args.device == "cuda" else "none"
        header = (
            f"Machine: {machine()}; GPU: {gpu}; torch {torch.__version__}; shape {args.shape}, "
            f"{args.words} tokens per window, {args.minutes} min of audio; "
            f"{engine.info.compute_type}, {engine.info.extra['decoder_rows']} decoder rows.\n"
        )
        body = "\n\n".join(
            [
                header,
                "Offline, one long file:\n\n" + offline(engine, path, audio, args),
                "Concurrent 30 s requests (greedy, one window each):\n\n"
                + concurrency(engine, audio, args.clients, args.repeats),
            ]
        )
    finally:
        engine.close()
    write_section(args.write, f"PyTorch engine ({args.device}, {args.shape} shape)", body)


if __name__ == "__main__":
    main()

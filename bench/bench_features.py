"""Log-mel features: faster-whisper's NumPy extractor against the torch engine's, same run.

For each clip length, the median wall time of one feature call by faster-whisper's
``FeatureExtractor`` (the baseline) and by :class:`TorchFeatureExtractor` on ``--device``
(results copied back to the host, as the engine uses them), their RTFx (audio seconds per wall
second) and the speed-up ratio; then ``--threads`` concurrent calls of the first length.

    python bench/bench_features.py --device cpu --seconds 30,600
    python bench/bench_features.py --device cuda --seconds 30,600 --threads 16
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from faster_whisper.feature_extractor import FeatureExtractor

from common import machine, noise, timed, write_section
from whisperd.engine.pytorch.features import TorchFeatureExtractor


def lengths(ours: FeatureExtractor, theirs: FeatureExtractor, args: argparse.Namespace) -> str:
    lines = [
        f"| audio | numpy s | torch {args.device} s | numpy RTFx | torch RTFx | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for seconds in args.seconds:
        audio = noise(seconds, seed=0)
        base = timed(args.repeats, lambda a=audio: theirs(a))
        mine = timed(args.repeats, lambda a=audio: ours(a))
        lines.append(
            f"| {seconds:g} s | {base:.4f} | {mine:.4f} | {seconds / base:.0f} "
            f"| {seconds / mine:.0f} | {base / mine:.2f}x |"
        )
    return "\n".join(lines)


def threads(ours: FeatureExtractor, theirs: FeatureExtractor, args: argparse.Namespace) -> str:
    seconds = args.seconds[0]
    clips = [noise(seconds, seed=i) for i in range(args.threads)]

    def together(extractor: FeatureExtractor) -> Callable[[], object]:
        def run() -> object:
            with ThreadPoolExecutor(args.threads) as pool:
                return list(pool.map(extractor, clips))

        return run

    total = seconds * args.threads
    base = total / timed(args.repeats, together(theirs))
    mine = total / timed(args.repeats, together(ours))
    return (
        f"| threads x audio | numpy RTFx | torch {args.device} RTFx | ratio |\n"
        f"|---|---|---|---|\n"
        f"| {args.threads} x {seconds:g} s | {base:.0f} | {mine:.0f} | {mine / base:.2f}x |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--mels", type=int, default=80)
    parser.add_argument(
        "--seconds", type=lambda s: [float(x) for x in s.split(",")], default=[30.0, 600.0]
    )
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    theirs = FeatureExtractor(feature_size=args.mels)
    ours = TorchFeatureExtractor(torch.device(args.device), feature_size=args.mels)
    check = noise(args.seconds[0], seed=1)
    error = float(np.abs(ours(check) - theirs(check)).max())
    gpu = torch.cuda.get_device_name() if ours.device.type == "cuda" else "none"
    body = "\n\n".join(
        [
            f"Machine: {machine()}; GPU: {gpu}; torch {torch.__version__}; {args.mels} mels, "
            f"torch threads {torch.get_num_threads()}; max |difference| {error:.1e}.",
            "One call per clip (median of the calls):\n\n" + lengths(ours, theirs, args),
            "Concurrent calls:\n\n" + threads(ours, theirs, args),
        ]
    )
    write_section(args.write, f"Log-mel features ({args.device})", body)


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Everything that needs a CUDA GPU, in one go: the GPU-marked tests, then the torch engine's
# benchmarks on the turbo shape, written into docs/benchmarks.md.
# Needs `pip install -e ".[gpu,test]"` on a machine where PyTorch sees CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pytest -q -p no:cacheprovider -n 0 -m gpu tests
cd bench
python bench_features.py --device cuda --seconds 30,600 --threads 16 --write ../docs/benchmarks.md
python bench_torch.py --shape turbo --device cuda --minutes 10 --batches 1,8,32,64,128,256 \
    --clients 32 --write ../docs/benchmarks.md
python stream.py --engine torch --device cuda --shape turbo --streams 1 8 32 64 \
    --write ../docs/benchmarks.md

"""Decoder steps at fixed batch sizes, replayed as CUDA graphs.

A decoder step for a few hundred rows is a hundred small kernels; launched one by one from
Python, their launch cost rivals their run time. :class:`FixedSteps` runs the step for rows
``[0, n)`` at the smallest of a few fixed sizes ``>= n`` over the whole text and audio context
(masks, not slices, bound what each row sees), so each size's step has one shape and, on CUDA,
is captured once as a graph and replayed. Rows past ``n`` are free rows of the cache: the padded
step writes only their position 0, which a prompt overwrites when a window takes the row.

Padding costs work (a padded row reads its audio keys like a real one), so fixed sizes stop at a
limit above which launch overhead is small next to the step itself; larger batches run eagerly.
Every captured graph is checked against the eager step on the same inputs before it is used;
if capture or the check fails, the decoder runs eagerly and says so once in the log.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from collections.abc import Sequence

    from whisperd.engine.pytorch.modeling import KVCache, WhisperNet

logger = logging.getLogger(__name__)

_SIZES = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
_WARMUP_RUNS = 2
"""Eager runs on a side stream before capture (PyTorch's advice: lazy init happens there)."""


def step_sizes(limit: int) -> tuple[int, ...]:
    """The fixed batch sizes up to ``limit`` (``limit`` itself is the last one)."""
    if limit < 1:
        return ()
    return (*(size for size in _SIZES if size < limit), limit)


class FixedSteps:
    """One-token decoder steps for cache rows ``[0, n)`` at fixed sizes; see the module doc."""

    def __init__(self, net: WhisperNet, cache: KVCache, limit: int, pad_token: int) -> None:
        """Steps over ``cache`` (which must outlive this object) for up to ``limit`` rows.

        Raises:
            ValueError: if the cache holds fewer than ``limit`` rows.
        """
        if cache.rows < limit:
            raise ValueError(f"a cache of {cache.rows} rows cannot run steps of {limit}")
        self._net = net
        self._cache = cache
        self.sizes = step_sizes(limit)
        self._pad = pad_token
        device = net.proj.device
        self._tokens = torch.full((limit, 1), pad_token, dtype=torch.long, device=device)
        self._positions = torch.zeros((limit, 1), dtype=torch.long, device=device)
        self._graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}

    @property
    def limit(self) -> int:
        """Most rows a fixed step takes."""
        return self.sizes[-1] if self.sizes else 0

    @property
    def captured(self) -> tuple[int, ...]:
        """The sizes replayed as CUDA graphs."""
        return tuple(sorted(self._graphs))

    def size_for(self, rows: int) -> int | None:
        """The fixed size that runs ``rows`` rows, or None when they need an eager step."""
        return next((size for size in self.sizes if size >= rows), None)

    def run(self, tokens: Sequence[int], positions: Sequence[int]) -> torch.Tensor:
        """Logits ``[n, V]`` of one step: ``tokens[i]`` at ``positions[i]`` for cache row i.

        Raises:
            ValueError: if there are more rows than the largest fixed size.
        """
        rows = len(tokens)
        size = self.size_for(rows)
        if size is None:
            raise ValueError(f"{rows} rows exceed the largest fixed step ({self.limit})")
        self._load(tokens, positions, size)
        graph = self._graphs.get(size)
        if graph is None:
            return self._step(size)[:rows]
        graph[0].replay()
        return graph[1][:rows].clone()

    def capture(self) -> bool:
        """Capture every size as a CUDA graph (before serving: nothing else may run on the
        GPU meanwhile); False, with a warning and no graphs kept, if any size fails."""
        cache = self._cache
        saved_len = cache.audio_len.clone()
        # Dummy rows see the whole (zero) audio context, so every output is finite.
        cache.audio_len.fill_(cache.cross_k.shape[3])
        try:
            for size in reversed(self.sizes):
                self._graphs[size] = self._capture(size)
        except (RuntimeError, AssertionError) as exc:
            logger.warning("CUDA graphs are off, decoder steps run eagerly: %s", exc)
            self._graphs.clear()
            return False
        finally:
            cache.audio_len.copy_(saved_len)
        return True

    def _capture(self, size: int) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
        self._load([self._pad] * size, [0] * size, size)
        device = self._tokens.device
        side = torch.cuda.Stream(device)  # type: ignore[no-untyped-call]
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(_WARMUP_RUNS):
                expected = self._step(size)
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            output = self._step(size)
        graph.replay()
        torch.cuda.synchronize(device)
        if not _same(output, expected):
            raise AssertionError(f"the graph of {size} rows disagrees with the eager step")
        return graph, output

    def _load(self, tokens: Sequence[int], positions: Sequence[int], size: int) -> None:
        rows = len(tokens)
        device = self._tokens.device
        self._tokens[:rows, 0] = torch.tensor(tokens, dtype=torch.long).to(device)
        self._positions[:rows, 0] = torch.tensor(positions, dtype=torch.long).to(device)
        self._tokens[rows:size] = self._pad
        self._positions[rows:size] = 0

    def _step(self, size: int) -> torch.Tensor:
        net, cache = self._net, self._cache
        hidden = net.decode(
            cache,
            slice(0, size),
            self._tokens[:size],
            self._positions[:size],
            text_len=cache.self_k.shape[3],
            audio_len=cache.cross_k.shape[3],
            uniform_audio=False,
        )
        return net.logits(hidden[:, 0])


def _same(graph: torch.Tensor, eager: torch.Tensor) -> bool:
    """Replayed logits equal the eager ones (the same kernels: equal up to rounding)."""
    if not bool(torch.isfinite(graph).all()):
        return False
    scale = 1.0 + float(eager.abs().max())
    return float((graph - eager).abs().max()) <= 1e-3 * scale

"""Continuous batching: one running decoder batch that windows join and leave at every step.

Every ``generate`` call of every request becomes groups of rows (one row per greedy prompt, one
per beam, one per sampled hypothesis) in a preallocated key/value cache. One thread runs the
loop: admit waiting groups into free rows (highest scheduling priority first) and run their
prompts through the decoder, advance every other row by one token, apply Whisper's token rules
to all rows at once, pick tokens (greedy, sampled, or per-group beam search; the choices are
the pure functions of :mod:`whisperd.engine.pytorch.search`), and release the rows of finished
groups, compacting the cache so the running batch stays dense. A window that decodes 200 tokens
never holds back one that ends after 10: the short one's rows are reused at the next step.
"""

from __future__ import annotations

import contextvars
import logging
import math
import threading
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from whisperd.engine.pytorch.graphs import FixedSteps
from whisperd.engine.pytorch.modeling import KVCache
from whisperd.engine.pytorch.options import GenerateOptions, PromptPlan, plan_prompt
from whisperd.engine.pytorch.rules import RowState, SuppressTable, Vocab, apply_rules
from whisperd.engine.pytorch.search import (
    beam_candidates,
    best_hypotheses,
    choose_beams,
    penalize,
    pick_tokens,
    rank_beams,
)
from whisperd.errors import CancelledError
from whisperd.scheduler.batcher import batch_contexts

if TYPE_CHECKING:
    from collections.abc import Sequence

    from whisperd.engine.pytorch.modeling import WhisperNet
    from whisperd.scheduler.batcher import Ticket

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GenerationResult:
    """One prompt's result, with the fields of CTranslate2's ``WhisperGenerationResult``."""

    sequences_ids: list[list[int]]
    scores: list[float]
    no_speech_prob: float
    sequences: list[list[str]] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class _Row:
    group: _Group
    slot: int = -1
    tokens: list[int] = field(default_factory=list)
    score: float = 0.0
    last_timestamp: int = -1
    done: bool = False


@dataclass(eq=False)
class _Group:
    request: _Request
    index: int
    plan: PromptPlan
    options: GenerateOptions
    audio: torch.Tensor
    suppress: int
    rows: list[_Row] = field(default_factory=list)
    hypotheses: list[tuple[list[int], float]] = field(default_factory=list)
    top_finished: bool = False
    no_speech: float = 0.0
    rows_done: int = 0
    done: bool = False

    @property
    def step(self) -> int:
        return len(self.rows[0].tokens)


@dataclass(eq=False)
class _Request:
    ticket: Ticket
    future: Future[list[GenerationResult]]
    results: list[GenerationResult | None]
    remaining: int
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    """The submitter's context variables (its request id), for log lines."""


@dataclass
class DecoderStats:
    """What the decoder has done: steps run and how full its batch was."""

    steps: int = 0
    row_steps: int = 0
    """Rows advanced, summed over steps (``row_steps / steps`` is the mean batch)."""
    peak_rows: int = 0
    prompts: int = 0
    sizes: Counter[int] = field(default_factory=Counter)
    fixed_steps: int = 0
    """Steps run at a fixed size (replayed as CUDA graphs on CUDA)."""

    def mean_rows(self) -> float:
        """Average rows per decoder step."""
        return self.row_steps / self.steps if self.steps else 0.0


def _row_state(row: _Row) -> RowState:
    group = row.group
    tokens, begin = row.tokens, len(group.plan.prefix)
    step = len(tokens)
    last = tokens[-1] if tokens else -1
    penultimate = tokens[-2] if step - 1 > begin else last
    return RowState(
        step=step,
        sample_begin=begin,
        timestamps=group.plan.timestamps,
        last=last,
        penultimate=penultimate,
        last_timestamp=row.last_timestamp,
        max_initial_timestamp=group.options.max_initial_timestamp_index,
        suppress=group.suppress,
        suppress_blank=group.options.suppress_blank,
    )


class ContinuousDecoder:
    """The decoder loop; see the module docstring."""

    def __init__(
        self,
        net: WhisperNet,
        vocab: Vocab,
        *,
        max_rows: int,
        fixed_rows: int = 0,
        name: str = "whisperd-decoder",
    ) -> None:
        """A stopped decoder over ``net`` holding at most ``max_rows`` rows.

        Steps of at most ``fixed_rows`` rows run at fixed sizes, captured as CUDA graphs on
        CUDA (see :mod:`whisperd.engine.pytorch.graphs`); the cache then takes all
        ``max_rows`` rows at start instead of growing on demand.
        """
        if max_rows < 1:
            raise ValueError("the decoder needs at least one row")
        self._net = net
        self._vocab = vocab
        self.max_rows = max_rows
        self.fixed_rows = min(fixed_rows, max_rows)
        self._fixed: FixedSteps | None = None
        self._name = name
        param = net.proj
        self._device, self._dtype = param.device, param.dtype
        self._table = SuppressTable(vocab, self._device)
        self._cache: KVCache | None = None
        self._rows: list[_Row] = []
        self._pending: list[_Group] = []
        self._arrivals = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.stats = DecoderStats()

    # ----------------------------------------------------------------------------------------
    # Lifecycle and submission

    def start(self) -> None:
        """Launch the decoder thread (idempotent)."""
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            if self.fixed_rows > 0:
                self._prepare_fixed_steps()
            self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Fail waiting and running work and join the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        error = CancelledError("The decoder stopped.")
        for group in [*self._pending, *(row.group for row in self._rows)]:
            self._fail(group.request, error)
        self._pending.clear()
        self._rows.clear()
        self._cache = None
        self._fixed = None

    @property
    def graph_sizes(self) -> tuple[int, ...]:
        """Batch sizes whose steps replay CUDA graphs."""
        return self._fixed.captured if self._fixed is not None else ()

    def _prepare_fixed_steps(self) -> None:
        with torch.inference_mode():
            cache = self._ensure_rows(self.max_rows)
            fixed = FixedSteps(self._net, cache, self.fixed_rows, self._vocab.eot)
            if self._device.type == "cuda" and not fixed.capture():
                return
        self._fixed = fixed

    @property
    def running(self) -> int:
        """Rows in the running batch."""
        return len(self._rows)

    @property
    def queued(self) -> int:
        """Prompts waiting for rows."""
        with self._cond:
            return len(self._pending)

    def submit(
        self,
        audio: torch.Tensor,
        prompts: Sequence[Sequence[int]],
        options: GenerateOptions,
        ticket: Ticket,
    ) -> list[GenerationResult]:
        """Decode ``prompts`` over encoder outputs ``audio`` ``[len(prompts), S, D]``. Blocks.

        Raises:
            ValueError: if the prompts or options cannot be decoded.
            CancelledError: if the ticket is cancelled or the decoder stops first.
        """
        if audio.shape[0] != len(prompts):
            raise ValueError(f"{len(prompts)} prompts for {audio.shape[0]} encoder outputs")
        if options.rows > self.max_rows:
            raise ValueError(
                f"beam_size/best_of {options.rows} needs {options.rows} decoder rows and this "
                f"server's decoder holds {self.max_rows}"
            )
        dims = self._net.dims
        plans = [plan_prompt(p, self._vocab, options.max_length, dims.n_text_ctx) for p in prompts]
        suppress = self._table.index(options.suppress_tokens)
        request = _Request(ticket, Future(), [None] * len(prompts), len(prompts))
        groups = [
            _Group(request, i, plan, options, audio[i], suppress) for i, plan in enumerate(plans)
        ]
        for group in groups:
            group.rows = [_Row(group) for _ in range(options.rows)]
        if not groups:
            return []
        with self._cond:
            if self._stopping or self._thread is None:
                raise CancelledError("The decoder is not running.")
            self._pending.extend(groups)
            self._cond.notify_all()
        return request.future.result()

    # ----------------------------------------------------------------------------------------
    # The loop

    def _loop(self) -> None:
        with torch.inference_mode():
            while True:
                with self._cond:
                    while not (self._pending or self._rows or self._stopping):
                        self._cond.wait()
                    if self._stopping:
                        return
                    joining = self._admit()
                try:
                    self._iterate(joining)
                except Exception as exc:  # a failed step fails its work, not the server
                    groups = [*joining, *(row.group for row in self._rows)]
                    with batch_contexts(group.request.context for group in groups):
                        logger.exception("decoder step failed")
                    self._fail_running(exc, joining)

    def _admit(self) -> list[_Group]:
        """Take waiting groups, best rank first, while rows are free (lock held)."""
        self._pending.sort(key=_rank)
        free = self.max_rows - len(self._rows)
        joining: list[_Group] = []
        for group in list(self._pending):
            if group.request.ticket.cancelled.is_set():
                self._pending.remove(group)
                self._fail(group.request, _cancelled())
                continue
            if group.options.rows > free:
                break
            self._pending.remove(group)
            joining.append(group)
            free -= group.options.rows
        return joining

    def _iterate(self, joining: list[_Group]) -> None:
        self._drop_cancelled()
        parts = []
        if self._rows:
            parts.append(self._advance())
        if joining:
            parts.append(self._prefill(joining))
        if not parts:
            return
        logits = torch.cat(parts) if len(parts) > 1 else parts[0]
        self._select(logits)
        self._release()

    def _drop_cancelled(self) -> None:
        cancelled = {
            row.group.request
            for row in self._rows
            if row.group.request.ticket.cancelled.is_set() and not row.group.done
        }
        if not cancelled:
            return
        for row in self._rows:
            if row.group.request in cancelled:
                row.group.done = True
        for request in cancelled:
            self._fail(request, _cancelled())
        self._release()

    # ----------------------------------------------------------------------------------------
    # Model calls

    def _ensure_rows(self, needed: int) -> KVCache:
        cache = self._cache
        if cache is not None and cache.rows >= needed:
            return cache
        have = cache.rows if cache is not None else 0
        rows = min(self.max_rows, max(needed, 2 * have, 8))
        grown = KVCache.zeros(self._net.dims, rows, self._device, self._dtype)
        if cache is not None and self._rows:
            used = len(self._rows)
            for name in ("self_k", "self_v", "cross_k", "cross_v"):
                getattr(grown, name)[:, :used] = getattr(cache, name)[:, :used]
            grown.audio_len[:used] = cache.audio_len[:used]
        self._cache = grown
        return grown

    def _audio_shape(self, rows: Sequence[_Row]) -> tuple[int, bool]:
        lengths = {int(row.group.audio.shape[0]) for row in rows}
        return max(lengths), len(lengths) == 1

    def _prefill(self, groups: list[_Group]) -> torch.Tensor:
        """Place ``groups``' rows after the running ones and run each group's prompt once;
        the logits of every placed row, in placement order.

        A group's other rows (its beams or sampled hypotheses) hold the same prompt over the
        same audio, so they start as copies of its first row's keys: one audio projection
        and one prompt pass per window, whatever the beam size.
        """
        leaders = [group.rows[0] for group in groups]
        followers = [row for group in groups for row in group.rows[1:]]
        start = len(self._rows)
        cache = self._ensure_rows(start + len(leaders) + len(followers))
        for offset, row in enumerate([*leaders, *followers]):
            row.slot = start + offset
        self._rows.extend([*leaders, *followers])
        logits = self._run_prompts(cache, leaders)
        if not followers:
            return logits
        firsts = torch.tensor([row.group.rows[0].slot for row in followers], device=self._device)
        slots = torch.tensor([row.slot for row in followers], device=self._device)
        cache.move(firsts, slots, audio=True)
        leader_of = {id(group): index for index, group in enumerate(groups)}
        order = [*range(len(groups)), *(leader_of[id(row.group)] for row in followers)]
        return logits[torch.tensor(order, device=self._device)]

    def _run_prompts(self, cache: KVCache, rows: list[_Row]) -> torch.Tensor:
        """Fill the audio keys of ``rows`` (consecutive slots) and run their prompts; their
        logits. Sets each row's group's no-speech probability."""
        by_length: dict[int, list[_Row]] = {}
        for row in rows:
            by_length.setdefault(int(row.group.audio.shape[0]), []).append(row)
        for same in by_length.values():
            slots = torch.tensor([row.slot for row in same], device=self._device)
            audio = torch.stack([row.group.audio for row in same])
            self._net.fill_audio(cache, slots, audio)
        contexts = [row.group.plan.context for row in rows]
        width = max(len(c) for c in contexts)
        padded = [list(c) + [self._vocab.eot] * (width - len(c)) for c in contexts]
        tokens = torch.tensor(padded, device=self._device)
        positions = torch.arange(width, device=self._device).expand(len(rows), width)
        audio_len, uniform = self._audio_shape(rows)
        hidden = self._net.decode(
            cache,
            slice(rows[0].slot, rows[0].slot + len(rows)),
            tokens,
            positions,
            text_len=width,
            audio_len=audio_len,
            uniform_audio=uniform,
        )
        batch = torch.arange(len(rows), device=self._device)
        last = torch.tensor([len(c) - 1 for c in contexts], device=self._device)
        sot = torch.tensor([row.group.plan.sot_index for row in rows], device=self._device)
        logits = self._net.logits(hidden[batch, last])
        no_speech = torch.softmax(self._net.logits(hidden[batch, sot]), dim=-1)
        probs = no_speech[:, self._vocab.no_speech].tolist()
        for row, prob in zip(rows, probs, strict=True):
            row.group.no_speech = float(prob)
        self.stats.prompts += len(rows)
        return logits

    def _advance(self) -> torch.Tensor:
        """One token for every running row; their logits ``[rows, V]``."""
        rows = self._rows
        assert self._cache is not None
        positions = [len(row.group.plan.context) + len(row.tokens) - 1 for row in rows]
        last = [row.tokens[-1] for row in rows]
        stats = self.stats
        stats.steps += 1
        stats.row_steps += len(rows)
        stats.peak_rows = max(stats.peak_rows, len(rows))
        stats.sizes[len(rows)] += 1
        fixed = self._fixed
        if fixed is not None and fixed.size_for(len(rows)) is not None:
            stats.fixed_steps += 1
            return fixed.run(last, positions)
        tokens = torch.tensor(last, device=self._device)[:, None]
        where = torch.tensor(positions, device=self._device)[:, None]
        audio_len, uniform = self._audio_shape(rows)
        hidden = self._net.decode(
            self._cache,
            slice(0, len(rows)),
            tokens,
            where,
            text_len=max(positions) + 1,
            audio_len=audio_len,
            uniform_audio=uniform,
        )
        return self._net.logits(hidden[:, 0])

    # ----------------------------------------------------------------------------------------
    # Token selection

    def _select(self, logits: torch.Tensor) -> None:
        rows = self._rows
        logits = penalize(logits, [r.tokens for r in rows], [r.group.options for r in rows])
        processed = apply_rules(logits, [_row_state(r) for r in rows], self._vocab, self._table)
        single = [i for i, row in enumerate(rows) if row.group.options.beam_size == 1]
        # Each beam group's rows in beam order (compaction may have reordered their slots).
        where = {id(row): i for i, row in enumerate(rows)}
        beams = {
            row.group: [where[id(beam)] for beam in row.group.rows]
            for row in rows
            if row.group.options.beam_size > 1
        }
        groups = list(beams)
        picked = pick_tokens(processed, single, [rows[i].group.options for i in single])
        ranked = rank_beams(
            processed, [beams[g] for g in groups], [self._beam_scores(g, beams[g]) for g in groups]
        )
        for i, (token, logprob) in zip(single, picked, strict=True):
            self._extend_single(rows[i], token, logprob)
        moves: list[tuple[int, int]] = []
        for index, (values, indices) in ranked.items():
            moves.extend(self._extend_beams(groups[index], values, indices))
        if moves and self._cache is not None:
            source = torch.tensor([m[0] for m in moves], device=self._device)
            target = torch.tensor([m[1] for m in moves], device=self._device)
            self._cache.move(source, target, audio=False)

    def _beam_scores(self, group: _Group, members: list[int]) -> list[float]:
        """The running scores of a group's beams; at its first step only the first beam
        counts (all beams hold the same prompt)."""
        if group.step == 0:
            return [self._rows[members[0]].score] + [-math.inf] * (len(members) - 1)
        return [self._rows[i].score for i in members]

    def _extend_single(self, row: _Row, token: int, logprob: float) -> None:
        group = row.group
        step, begin = len(row.tokens), len(group.plan.prefix)
        if step < begin:
            token, logprob = group.plan.prefix[step], 0.0
        row.tokens.append(token)
        row.score += logprob
        if step >= begin and token >= self._vocab.timestamp_begin:
            row.last_timestamp = token
        ended = token == self._vocab.eot and step >= begin
        if ended or step + 1 == group.plan.max_steps:
            hypothesis = row.tokens[:-1] if ended else list(row.tokens)
            group.hypotheses.append((hypothesis, row.score))
            row.done = True
            group.rows_done += 1
            if group.rows_done == len(group.rows):
                self._finish(group)

    def _extend_beams(
        self, group: _Group, values: list[float], indices: list[int]
    ) -> list[tuple[int, int]]:
        """Advance one beam group; the cache moves (source slot, target slot) it needs."""
        eot, step, prefix = self._vocab.eot, group.step, group.plan.prefix
        candidates = beam_candidates(
            values, indices, vocab_size=self._vocab.size, eot=eot, prefix=prefix, step=step
        )
        last = step + 1 == group.plan.max_steps
        options = group.options
        chosen, finished = choose_beams(
            candidates, options.beam_size, eot=eot, can_end=step >= len(prefix), last=last
        )
        for k, (parent, token, score) in finished:
            group.top_finished |= k == 0
            tokens = group.rows[parent].tokens
            group.hypotheses.append(([*tokens] if token == eot else [*tokens, token], score))
        if last or (
            group.top_finished and len(group.hypotheses) >= options.num_hypotheses
            if options.length_penalty == 0
            else len(group.hypotheses) >= options.max_finished
        ):
            self._finish(group)
            return []
        return self._reorder(group, chosen)

    def _reorder(
        self, group: _Group, chosen: list[tuple[int, int, float]]
    ) -> list[tuple[int, int]]:
        parents = [group.rows[parent] for parent, _, _ in chosen]
        snapshots = [(list(p.tokens), p.last_timestamp, p.slot) for p in parents]
        moves = []
        begin = len(group.plan.prefix)
        for row, (tokens, last_ts, slot), (_, token, score) in zip(
            group.rows, snapshots, chosen, strict=True
        ):
            step = len(tokens)
            row.tokens = [*tokens, token]
            row.score = score
            row.last_timestamp = (
                token if step >= begin and token >= self._vocab.timestamp_begin else last_ts
            )
            if slot != row.slot:
                moves.append((slot, row.slot))
        return moves

    # ----------------------------------------------------------------------------------------
    # Results and bookkeeping

    def _finish(self, group: _Group) -> None:
        group.done = True
        options = group.options
        ranked = best_hypotheses(
            group.hypotheses, length_penalty=options.length_penalty, count=options.num_hypotheses
        )
        request = group.request
        request.results[group.index] = GenerationResult(
            sequences_ids=[tokens for tokens, _ in ranked],
            scores=[score for _, score in ranked],
            no_speech_prob=group.no_speech,
        )
        request.remaining -= 1
        if request.remaining == 0 and not request.future.done():
            request.ticket.served += 1
            results = [r for r in request.results if r is not None]
            request.future.set_result(results)

    def _release(self) -> None:
        """Drop the rows of finished groups and compact the cache."""
        keep = [row for row in self._rows if not (row.done or row.group.done)]
        if len(keep) == len(self._rows):
            return
        count = len(keep)
        taken = {row.slot for row in keep if row.slot < count}
        holes = [slot for slot in range(count) if slot not in taken]
        movers = [row for row in keep if row.slot >= count]
        if movers and self._cache is not None:
            source = torch.tensor([row.slot for row in movers], device=self._device)
            target = torch.tensor(holes, device=self._device)
            self._cache.move(source, target, audio=True)
            for row, slot in zip(movers, holes, strict=True):
                row.slot = slot
        keep.sort(key=lambda row: row.slot)
        self._rows = keep

    def _fail(self, request: _Request, error: BaseException) -> None:
        if not request.future.done():
            request.future.set_exception(error)

    def _fail_running(self, error: BaseException, joining: list[_Group]) -> None:
        for group in [*joining, *(row.group for row in self._rows)]:
            group.done = True
            self._fail(group.request, error)
        self._rows = []


def _rank(group: _Group) -> tuple[int, int, int, int]:
    """Admission order: the scheduler's fairness policy (priority, service level, arrival)."""
    return (*group.request.ticket.rank(), group.index)


def _cancelled() -> CancelledError:
    return CancelledError("The request was cancelled; its remaining audio was skipped.")

"""Token search: repetition rules on the logits, then greedy, sampled or beam choices.

Pure functions over logits, token histories and :class:`GenerateOptions`; the decoder loop in
:mod:`whisperd.engine.pytorch.decoding` owns the rows and applies what these functions choose.
Every choice follows CTranslate2's Whisper decoding, so both engines pick the same tokens.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, TypeAlias

import torch

if TYPE_CHECKING:
    from collections.abc import Sequence

    from whisperd.engine.pytorch.options import GenerateOptions

__all__ = [
    "BEAM_FLOOR",
    "Candidate",
    "beam_candidates",
    "best_hypotheses",
    "choose_beams",
    "penalize",
    "pick_tokens",
    "rank_beams",
]

BEAM_FLOOR = -1e10
"""Score CTranslate2 gives candidates it rules out (forced prefix, early end)."""

Candidate: TypeAlias = tuple[int, int, float]
"""A beam search candidate: (parent beam, token, cumulative score)."""


def penalize(
    logits: torch.Tensor,
    histories: Sequence[Sequence[int]],
    options: Sequence[GenerateOptions],
) -> torch.Tensor:
    """Apply the repetition penalty and n-gram blocking to the rows that ask for them.

    Args:
        logits: ``[rows, V]`` logits, changed in place.
        histories: Each row's generated tokens.
        options: Each row's decoding options.

    Returns:
        ``logits``.
    """
    for i, (history, row_options) in enumerate(zip(histories, options, strict=True)):
        penalty, size = row_options.repetition_penalty, row_options.no_repeat_ngram_size
        if penalty == 1 and size == 0:
            continue
        if penalty != 1 and history:
            seen = torch.tensor(sorted(set(history)), device=logits.device, dtype=torch.long)
            values = logits[i, seen]
            logits[i, seen] = torch.where(values < 0, values * penalty, values / penalty)
        if size > 0 and len(history) + 1 >= size:
            banned = _repeated_ngram_tokens(history, size)
            if banned:
                logits[i, sorted(banned)] = torch.finfo(torch.float32).min
    return logits


def pick_tokens(
    logits: torch.Tensor, rows: Sequence[int], options: Sequence[GenerateOptions]
) -> list[tuple[int, float]]:
    """The next token of each greedy or sampled row, with its log-probability.

    Args:
        logits: ``[all rows, V]`` logits, the token rules already applied.
        rows: Which rows of ``logits`` to pick for.
        options: The decoding options of each of ``rows``.

    Returns:
        One ``(token, log-probability)`` per row of ``rows``, in order.
    """
    if not rows:
        return []
    chosen = logits[torch.tensor(rows, device=logits.device)]
    temperature = torch.tensor(
        [o.sampling_temperature if o.sampling else 1.0 for o in options], device=logits.device
    )
    logprobs = torch.log_softmax(chosen / temperature[:, None], dim=-1)
    tokens = logprobs.argmax(dim=-1)
    sampled = [j for j, o in enumerate(options) if o.sampling]
    if sampled:
        tokens[sampled] = _sample(logprobs[sampled], [options[j].sampling_topk for j in sampled])
    scores = logprobs.gather(1, tokens[:, None])[:, 0]
    return list(zip(tokens.tolist(), scores.tolist(), strict=True))


def rank_beams(
    logits: torch.Tensor,
    members: Sequence[Sequence[int]],
    scores: Sequence[Sequence[float]],
) -> dict[int, tuple[list[float], list[int]]]:
    """The ``2 * beams`` best candidates of each beam group, all groups with the same number of
    beams in one batched top-k.

    Args:
        logits: ``[all rows, V]`` logits, the token rules already applied.
        members: Each group's rows of ``logits``, in beam order.
        scores: Each group's running beam scores, in beam order.

    Returns:
        For each group (by its index in ``members``; groups with the same number of beams
        together, in order of first appearance), the candidates' total scores and their
        ``beam * V + token`` indices, best first.
    """
    by_size: dict[int, list[int]] = {}
    for index, group in enumerate(members):
        by_size.setdefault(len(group), []).append(index)
    ranked = {}
    for size, indices in by_size.items():
        beams = torch.tensor([members[i] for i in indices], device=logits.device)
        running = torch.tensor([scores[i] for i in indices])
        logprobs = torch.log_softmax(logits[beams], dim=-1)  # [G, K, V]
        total = (logprobs + running.to(logits.device)[:, :, None]).flatten(1)
        top = torch.topk(total, 2 * size, dim=-1)
        for index, values, flat in zip(
            indices, top.values.tolist(), top.indices.tolist(), strict=True
        ):
            ranked[index] = (values, flat)
    return ranked


def beam_candidates(
    values: Sequence[float],
    indices: Sequence[int],
    *,
    vocab_size: int,
    eot: int,
    prefix: Sequence[int],
    step: int,
) -> list[Candidate]:
    """One group's ranked candidates, with the forced prefix and the no-early-end rule applied.

    Args:
        values: The candidates' total scores, best first (from :func:`rank_beams`).
        indices: The candidates' ``beam * V + token`` indices.
        vocab_size: ``V``.
        eot: The end-of-text token.
        prefix: Tokens forced at the first steps.
        step: Tokens the group's beams hold so far.

    Returns:
        The candidates, in order; ruled-out ones score :data:`BEAM_FLOOR`.
    """
    if step < len(prefix):
        forced = prefix[step]
        return [(0, forced, 0.0 if k == 0 else BEAM_FLOOR) for k in range(len(values))]
    candidates = [
        (i // vocab_size, i % vocab_size, v) for v, i in zip(values, indices, strict=True)
    ]
    if step == len(prefix):
        return [
            (b, 0, BEAM_FLOOR) if k > 0 and t == eot else (b, t, s)
            for k, (b, t, s) in enumerate(candidates)
        ]
    return candidates


def choose_beams(
    candidates: Sequence[Candidate], size: int, *, eot: int, can_end: bool, last: bool
) -> tuple[list[Candidate], list[tuple[int, Candidate]]]:
    """Choose the next ``size`` beams; a top candidate that finishes gives way to a spare.

    Args:
        candidates: ``2 * size`` candidates, best first (from :func:`beam_candidates`).
        size: The beam size.
        eot: The end-of-text token.
        can_end: Whether end-of-text finishes a beam at this step (past the forced prefix).
        last: Whether this is the last step, which finishes every candidate.

    Returns:
        The candidates that continue as the new beams, in beam order, and the finished ones
        with their rank among the top ``size``.
    """
    chosen: list[Candidate] = []
    finished: list[tuple[int, Candidate]] = []
    spare = size
    for k in range(size):
        pick = k
        if (candidates[k][1] == eot and can_end) or last:
            finished.append((k, candidates[k]))
            for j in range(spare, 2 * size):
                if candidates[j][1] != eot:
                    pick, spare = j, j + 1
                    break
        chosen.append(candidates[pick])
    return chosen, finished


def best_hypotheses(
    hypotheses: Sequence[tuple[list[int], float]], *, length_penalty: float, count: int
) -> list[tuple[list[int], float]]:
    """The ``count`` best finished hypotheses, scored with the length penalty, best first."""
    return sorted(
        ((tokens, _normalized(tokens, score, length_penalty)) for tokens, score in hypotheses),
        key=lambda item: -item[1],
    )[:count]


def _normalized(tokens: list[int], score: float, penalty: float) -> float:
    """``score`` divided by the length penalty (``len(tokens) ** penalty``)."""
    if tokens:
        return score / float(len(tokens) ** penalty)
    return score if penalty == 0 else -math.inf


def _sample(logprobs: torch.Tensor, topk: Sequence[int]) -> torch.Tensor:
    """Draw one token per row from ``exp(logprobs)``, within each row's top-k (0: all)."""
    if all(k == 0 for k in topk):
        return torch.multinomial(logprobs.exp(), 1)[:, 0]
    out = []
    for j, k in enumerate(topk):
        values, ids = logprobs[j].topk(k) if k > 0 else (logprobs[j], None)
        draw = torch.multinomial(values.exp(), 1)
        out.append(ids[draw] if ids is not None else draw)
    return torch.cat(out)


def _repeated_ngram_tokens(tokens: Sequence[int], size: int) -> set[int]:
    """Tokens that would repeat an n-gram of ``size`` already in ``tokens``."""
    if size == 1:
        return set(tokens)
    tail = tuple(tokens[len(tokens) - size + 1 :])
    return {
        tokens[i + size - 1]
        for i in range(len(tokens) - size + 1)
        if tuple(tokens[i : i + size - 1]) == tail
    }

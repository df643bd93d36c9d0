"""Whisper's token rules, applied to many independent sequences at once.

Every rule here follows CTranslate2's Whisper decoding exactly, so the PyTorch engine picks the
same tokens as the CTranslate2 engine: suppressed tokens (``-1`` standing for the model's
non-speech symbols), blank suppression at the first sampled position, and the timestamp rules
(no ``<|notimestamps|>``; the first token a timestamp within ``max_initial_timestamp_index``;
timestamps in pairs and increasing; text forbidden whenever the timestamps together are more
likely than any single text token). Disabled tokens get float32's lowest value, as in
CTranslate2, rather than minus infinity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass(frozen=True, slots=True)
class Vocab:
    """The token ids the rules need."""

    size: int
    eot: int
    sot: int
    no_timestamps: int
    timestamp_begin: int
    no_speech: int
    suppress_ids: tuple[int, ...]
    """What ``-1`` in ``suppress_tokens`` stands for."""
    suppress_ids_begin: tuple[int, ...]
    """Suppressed at the first sampled position when ``suppress_blank`` is on."""

    def __post_init__(self) -> None:
        if self.no_timestamps != self.timestamp_begin - 1:
            raise ValueError("<|notimestamps|> must come just before the first timestamp")


@dataclass(frozen=True, slots=True)
class RowState:
    """Where one sequence stands, for the rules of its next token."""

    step: int
    """Tokens generated so far (the forced prefix included)."""
    sample_begin: int
    """Length of the forced prefix: the first step that is sampled."""
    timestamps: bool
    """Whether the prompt asks for timestamps."""
    last: int
    """Last generated token (-1 before the first)."""
    penultimate: int
    """The one before it, or ``last`` when only one was sampled."""
    last_timestamp: int
    """Latest timestamp token sampled, or -1."""
    max_initial_timestamp: int
    suppress: int
    """Index of the row's suppressed-token set (see :class:`SuppressTable`)."""
    suppress_blank: bool


class SuppressTable:
    """The distinct ``suppress_tokens`` lists in use, as boolean masks on the device."""

    def __init__(self, vocab: Vocab, device: torch.device) -> None:
        """An empty table for ``vocab``."""
        self._vocab = vocab
        self._device = device
        self._index: dict[tuple[int, ...], int] = {}
        self._masks: list[torch.Tensor] = []
        self._stacked: torch.Tensor | None = None

    def index(self, tokens: Sequence[int]) -> int:
        """The table index of ``tokens`` (added on first use).

        Raises:
            ValueError: if a token id is outside the vocabulary.
        """
        key = tuple(tokens)
        found = self._index.get(key)
        if found is not None:
            return found
        ids: list[int] = []
        for token in key:
            if token == -1:
                ids.extend(self._vocab.suppress_ids)
            elif 0 <= token < self._vocab.size:
                ids.append(token)
            else:
                raise ValueError(f"suppress_tokens holds {token}, which is not a token id")
        mask = torch.zeros(self._vocab.size, dtype=torch.bool, device=self._device)
        mask[ids] = True
        self._index[key] = len(self._masks)
        self._masks.append(mask)
        self._stacked = None
        return self._index[key]

    def masks(self, rows: torch.Tensor) -> torch.Tensor:
        """``[len(rows), V]`` masks of the table indices ``rows``."""
        if self._stacked is None:
            self._stacked = torch.stack(self._masks)
        return self._stacked[rows]


LOWEST = torch.finfo(torch.float32).min


def _column(states: Sequence[RowState], name: str, device: torch.device) -> torch.Tensor:
    return torch.tensor([getattr(s, name) for s in states], device=device)


def apply_rules(
    logits: torch.Tensor, states: Sequence[RowState], vocab: Vocab, table: SuppressTable
) -> torch.Tensor:
    """Disable, in float32 ``logits`` ``[n, V]``, every token the rules forbid per row."""
    device = logits.device
    col = torch.arange(logits.shape[1], device=device)[None, :]
    tb = vocab.timestamp_begin
    disabled = table.masks(_column(states, "suppress", device))
    plan = [_plan(s, vocab) for s in states]
    blank = torch.tensor([p[0] for p in plan], device=device)
    if vocab.suppress_ids_begin and bool(any(p[0] for p in plan)):
        begin = torch.tensor(vocab.suppress_ids_begin, device=device)
        disabled[:, begin] |= blank[:, None]
    limits = torch.tensor([p[1:] for p in plan], device=device, dtype=torch.long)
    text_below, ts_low, ts_high, ts_cap, check = (limits[:, i, None] for i in range(5))
    disabled |= col < text_below
    disabled |= (col >= ts_low) & (col < ts_high)
    disabled |= col >= ts_cap
    if bool(check.any()):
        masked = logits.masked_fill(disabled, LOWEST)
        logprobs = torch.log_softmax(masked, dim=-1)
        text_best = logprobs[:, :tb].max(dim=-1).values
        timestamp_mass = torch.logsumexp(logprobs[:, tb:], dim=-1)
        prefer = (check[:, 0] > 0) & (timestamp_mass > text_best)
        disabled |= (col < tb) & prefer[:, None]
    return logits.masked_fill(disabled, LOWEST)


def _plan(state: RowState, vocab: Vocab) -> tuple[bool, int, int, int, int, int]:
    """(blank suppressed, text disabled below, timestamps disabled in [low, high),
    everything disabled from, check timestamp mass) for one row."""
    tb, size = vocab.timestamp_begin, vocab.size
    blank = state.suppress_blank and state.step == state.sample_begin
    if not state.timestamps:
        return blank, 0, tb, tb, size, 0
    # <|notimestamps|> is always disabled; it sits just below the timestamps, so one range
    # [low, high) covers it and the timestamps a rule disables.
    low, high, text_below, cap, check = vocab.no_timestamps, vocab.no_timestamps + 1, 0, size, 0
    if state.step == state.sample_begin == 0:
        text_below, cap = tb, tb + state.max_initial_timestamp + 1
    elif state.step > state.sample_begin:
        if state.last >= tb:
            if state.penultimate >= tb:
                high = size  # two timestamps in a row: text (or end) must follow
            else:
                text_below, high, check = vocab.eot, state.last, 1
        else:
            check = 1
            if state.last_timestamp >= 0:
                high = state.last_timestamp + 1
    return blank, text_below, low, high, cap, check

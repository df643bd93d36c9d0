"""Window prompts that leave the decoder room: one budget for hotwords, prompt and prefix.

Whisper's decoder has ``n_ctx`` = 448 positions (faster-whisper's ``max_length``) for a
window's prompt and the tokens it generates, together. faster-whisper lays a prompt out as::

    <|startofprev|> hotwords previous-text <|startoftranscript|> [<|en|> <|transcribe|>]
    [<|notimestamps|>] [<|0.00|>] [prefix]

where the previous text is the initial prompt and then, with ``condition_on_previous_text``,
the text of the earlier windows. It caps the hotwords and the previous text at
``n_ctx // 2 - 1`` = 223 tokens *each*, so together they can fill every position: the window
then decodes nothing and its text is lost without an error (200 words of prompt and 200
hotwords gave an empty transcript; 140 each cut it off halfway).

The rule here, applied to every window (:class:`BudgetedPrompt`) and checked before any work
(:func:`check_room`, :func:`fit_max_new_tokens`):

* The decoder keeps ``reserve`` positions: ``max_new_tokens`` when it is set, else
  ``n_ctx // 2`` = 224, the most Whisper itself samples per window (``sample_len`` in
  openai/whisper's ``decoding.py``).
* ``max_new_tokens`` (1-448) is lowered to what fits after the prompt's fixed part: 448 minus
  the start-of-transcript sequence (3 tokens on multilingual models, 1 on English-only ones),
  ``<|notimestamps|>`` and the prefix. openai/whisper does the same: its decoder stops
  sampling when the context is full, whatever ``sample_len`` asks. faster-whisper and
  transformers refuse the request instead, so ``max_new_tokens=448``, inside the documented
  range, could never run.
* The start-of-transcript sequence, ``<|notimestamps|>`` and the prefix (first window only)
  are kept whole; a prefix that leaves the decoder fewer than ``min(reserve, n_ctx // 2)``
  positions is refused (:class:`~whisperd.errors.InvalidOptionError` naming ``prefix``)
  rather than cut.
* The hotwords and the previous text share what is left, at most ``n_ctx // 2 - 1`` tokens
  (Whisper keeps the last ``n_ctx // 2 - 1`` tokens of a prompt). When both do not fit, each
  keeps at least half of the budget: the hotwords their first tokens (as faster-whisper cuts
  them), the previous text its last (as Whisper cuts a prompt).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from whisperd.errors import InvalidOptionError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "BudgetedPrompt",
    "check_room",
    "conditioning_budget",
    "decoder_reserve",
    "fit_max_new_tokens",
    "share",
]


def decoder_reserve(n_ctx: int, max_new_tokens: int | None) -> int:
    """Positions every window's decoder keeps: ``max_new_tokens``, else ``n_ctx // 2``."""
    return max_new_tokens if max_new_tokens is not None else n_ctx // 2


def conditioning_budget(n_ctx: int, fixed: int, reserve: int) -> int:
    """Tokens the hotwords and previous text may take together (without ``<|startofprev|>``).

    Args:
        n_ctx: The decoder's positions (448 for every Whisper model).
        fixed: Length of the prompt's fixed part: start-of-transcript sequence,
            ``<|notimestamps|>``, and the prefix with its ``<|0.00|>``.
        reserve: Positions the decoder keeps (:func:`decoder_reserve`).

    Returns:
        At most ``n_ctx // 2 - 1`` (Whisper's cap on a prompt); 0 when nothing is left.
    """
    return max(0, min(n_ctx // 2 - 1, n_ctx - reserve - fixed - 1))


def share(
    hotwords: Sequence[int], previous: Sequence[int], budget: int
) -> tuple[list[int], list[int]]:
    """Cut hotwords and previous text to ``budget`` tokens together.

    Both are kept whole when they fit. Otherwise each keeps at least ``budget // 2`` tokens
    (or all it has, when less), the hotwords their first tokens and the previous text its
    last.

    Returns:
        ``(hotwords, previous)``, together at most ``budget`` tokens long.
    """
    if len(hotwords) + len(previous) <= budget:
        return list(hotwords), list(previous)
    kept_hotwords = min(len(hotwords), max(budget // 2, budget - len(previous)))
    kept_previous = budget - kept_hotwords
    return list(hotwords[:kept_hotwords]), list(previous[len(previous) - kept_previous :])


class BudgetedPrompt:
    """faster-whisper's ``WhisperModel.get_prompt`` under the budget of this module.

    Set as ``get_prompt`` on a request's own view of the model; faster-whisper's decoding loop
    (sequential and batched) calls it for every window. The layout is faster-whisper's.
    """

    __slots__ = ("_n_ctx", "_reserve")

    def __init__(self, n_ctx: int, max_new_tokens: int | None) -> None:
        """Budget prompts for a decoder of ``n_ctx`` positions and one request's
        ``max_new_tokens``."""
        self._n_ctx = n_ctx
        self._reserve = decoder_reserve(n_ctx, max_new_tokens)

    def __call__(
        self,
        tokenizer: Any,
        previous_tokens: list[int],
        without_timestamps: bool = False,
        prefix: str | None = None,
        hotwords: str | None = None,
    ) -> list[int]:
        """The prompt of one window (faster-whisper's ``get_prompt`` signature).

        Args:
            tokenizer: faster-whisper's ``Tokenizer`` for the request's language and task.
            previous_tokens: The initial prompt and earlier windows' text, oldest first.
            without_timestamps: Whether the window is decoded without timestamp tokens.
            prefix: Text the window's transcript starts with (first window only).
            hotwords: Words to bias decoding toward; ignored with a prefix, as faster-whisper
                does.

        Returns:
            Token ids: conditioning, start-of-transcript sequence, then the prefix.
        """
        fixed = list(tokenizer.sot_sequence)
        if without_timestamps:
            fixed.append(tokenizer.no_timestamps)
        if prefix:
            if not without_timestamps:
                fixed.append(tokenizer.timestamp_begin)
            fixed.extend(tokenizer.encode(" " + prefix.strip()))
        wanted = tokenizer.encode(" " + hotwords.strip()) if hotwords and not prefix else []
        budget = conditioning_budget(self._n_ctx, len(fixed), self._reserve)
        kept_hotwords, kept_previous = share(wanted, previous_tokens, budget)
        if not kept_hotwords and not kept_previous:
            return fixed
        return [tokenizer.sot_prev, *kept_hotwords, *kept_previous, *fixed]


def _fixed_length(sot_length: int, *, without_timestamps: bool, prefix_tokens: int) -> int:
    """Length of a first window's fixed prompt: start-of-transcript sequence,
    ``<|notimestamps|>``, and the prefix with its ``<|0.00|>``."""
    base = sot_length + (1 if without_timestamps else 0)
    return base + prefix_tokens + (1 if prefix_tokens and not without_timestamps else 0)


def fit_max_new_tokens(
    n_ctx: int,
    *,
    sot_length: int,
    without_timestamps: bool,
    prefix_tokens: int,
    max_new_tokens: int | None,
) -> int | None:
    """``max_new_tokens`` lowered to the positions left after the first window's fixed prompt.

    Args:
        n_ctx: The decoder's positions (448).
        sot_length: Length of the start-of-transcript sequence (3 for multilingual models,
            1 for English-only ones).
        without_timestamps: Whether ``<|notimestamps|>`` is in the prompt.
        prefix_tokens: Tokens of the prefix (0 without one).
        max_new_tokens: The request's cap on tokens per window, if any.

    Returns:
        ``None`` when no cap was asked; else ``min(max_new_tokens, n_ctx - fixed)``, at least
        1 (:func:`check_room` refuses a prefix that leaves less). Windows after the first have
        no prefix, so they may have a few positions more than this cap uses.
    """
    if max_new_tokens is None:
        return None
    fixed = _fixed_length(
        sot_length, without_timestamps=without_timestamps, prefix_tokens=prefix_tokens
    )
    return max(1, min(max_new_tokens, n_ctx - fixed))


def check_room(
    n_ctx: int,
    *,
    sot_length: int,
    without_timestamps: bool,
    prefix_tokens: int,
    max_new_tokens: int | None,
) -> None:
    """Refuse a prefix that leaves the decoder less than its reserve (at most ``n_ctx // 2``).

    ``max_new_tokens`` is never refused: :func:`fit_max_new_tokens` lowers it to what fits.

    Args:
        n_ctx: The decoder's positions (448).
        sot_length: Length of the start-of-transcript sequence (3 for multilingual models:
            ``<|startoftranscript|>``, language, task; 1 for English-only ones).
        without_timestamps: Whether ``<|notimestamps|>`` is in the prompt.
        prefix_tokens: Tokens of the prefix (0 without one).
        max_new_tokens: The request's cap on tokens per window, if any.

    Raises:
        InvalidOptionError: naming ``prefix``, with the longest prefix that fits.
    """
    fixed = _fixed_length(
        sot_length, without_timestamps=without_timestamps, prefix_tokens=prefix_tokens
    )
    reserve = min(decoder_reserve(n_ctx, max_new_tokens), n_ctx // 2)
    if fixed + reserve <= n_ctx:
        return
    base = _fixed_length(sot_length, without_timestamps=without_timestamps, prefix_tokens=0)
    room = n_ctx - reserve - base - (0 if without_timestamps else 1)
    raise InvalidOptionError(
        f"The prefix is {prefix_tokens} tokens long; at most {max(room, 0)} fit in Whisper's "
        f"{n_ctx}-token context while the decoder keeps {reserve} tokens for the transcript. "
        "Shorten the prefix (or lower max_new_tokens).",
        param="prefix",
    )

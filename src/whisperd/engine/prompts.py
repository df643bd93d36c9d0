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
(:func:`check_room`):

* The decoder keeps ``reserve`` positions: ``max_new_tokens`` when it is set, else
  ``n_ctx // 2`` = 224, the most Whisper itself samples per window (``sample_len`` in
  openai/whisper's ``decoding.py``).
* The start-of-transcript sequence, ``<|notimestamps|>`` and the prefix (first window only)
  are kept whole; a prefix or ``max_new_tokens`` that does not leave the decoder its reserve
  is refused (:class:`~whisperd.errors.InvalidOptionError` naming the field) rather than cut.
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

__all__ = ["BudgetedPrompt", "check_room", "conditioning_budget", "decoder_reserve", "share"]


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


def check_room(
    n_ctx: int,
    *,
    sot_length: int,
    without_timestamps: bool,
    prefix_tokens: int,
    max_new_tokens: int | None,
) -> None:
    """Refuse a prefix or ``max_new_tokens`` that leaves the decoder less than its reserve.

    Args:
        n_ctx: The decoder's positions (448).
        sot_length: Length of the start-of-transcript sequence (3 for multilingual models:
            ``<|startoftranscript|>``, language, task; 1 for English-only ones).
        without_timestamps: Whether ``<|notimestamps|>`` is in the prompt.
        prefix_tokens: Tokens of the prefix (0 without one).
        max_new_tokens: The request's cap on tokens per window, if any.

    Raises:
        InvalidOptionError: naming ``prefix`` (or ``max_new_tokens`` when it alone is too
            large) with the largest value that fits.
    """
    base = sot_length + (1 if without_timestamps else 0)
    prefix = prefix_tokens + (1 if prefix_tokens and not without_timestamps else 0)
    reserve = decoder_reserve(n_ctx, max_new_tokens)
    if base + prefix + reserve <= n_ctx:
        return
    if max_new_tokens is not None and base + max_new_tokens > n_ctx:
        raise InvalidOptionError(
            f"max_new_tokens={max_new_tokens} does not fit in Whisper's {n_ctx}-token context "
            f"next to the prompt's {base} special tokens; use at most {n_ctx - base}.",
            param="max_new_tokens",
        )
    room = n_ctx - reserve - base - (0 if without_timestamps else 1)
    keeps = f"max_new_tokens={max_new_tokens}" if max_new_tokens else f"{reserve} tokens"
    raise InvalidOptionError(
        f"The prefix is {prefix_tokens} tokens long; at most {max(room, 0)} fit in Whisper's "
        f"{n_ctx}-token context while the decoder keeps {keeps} for the transcript. "
        "Shorten the prefix (or lower max_new_tokens).",
        param="prefix",
    )

"""Token estimates and the split of a long text into parts that fit an LLM's context.

Token counts are estimated from characters, without the LLM's tokenizer (whisperd does not
know which model answers): an ASCII character counts a quarter of a token (English averages
about 4 characters per token in GPT and Llama vocabularies) and any other character a whole
one (CJK text is about one token per character; accented letters are over-counted, which errs
on the safe side).
"""

from __future__ import annotations

import math
import re
from typing import Final

__all__ = ["estimate_tokens", "split_text"]

_SENTENCE_END: Final = re.compile(r"(?<=[.!?。！？…])\s+")
"""Where a sentence ends: after its final punctuation, at the whitespace that follows."""


def estimate_tokens(text: str) -> int:
    """Estimated tokens of ``text``: a quarter per ASCII character, one per other character,
    rounded up."""
    ascii_chars = sum(1 for char in text if char.isascii())
    return math.ceil(ascii_chars / 4) + (len(text) - ascii_chars)


def split_text(text: str, max_tokens: int) -> list[str]:
    """Cut ``text`` into consecutive parts of at most ``max_tokens`` estimated tokens each.

    Parts end at sentence ends where they can, else between words; a single word longer than
    the budget is cut inside. Whitespace between parts is dropped; nothing else is lost.

    Args:
        text: The text (a transcript).
        max_tokens: The budget of one part, at least 1.

    Returns:
        The parts in order; ``[]`` for blank text.
    """
    parts: list[str] = []
    current = ""
    for piece in _pieces(text.strip(), max_tokens):
        joined = f"{current} {piece}" if current else piece
        if current and estimate_tokens(joined) > max_tokens:
            parts.append(current)
            joined = piece
        current = joined
    if current:
        parts.append(current)
    return parts


def _pieces(text: str, max_tokens: int) -> list[str]:
    """Sentences of ``text``, each cut into words (or parts of words) where over budget."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        if estimate_tokens(sentence) <= max_tokens:
            pieces.append(sentence)
            continue
        for word in sentence.split():
            pieces.extend(_cut_word(word, max_tokens))
    return [piece for piece in pieces if piece]


def _cut_word(word: str, max_tokens: int) -> list[str]:
    """``word`` whole if it fits the budget, else cut into pieces that do."""
    cuts: list[str] = []
    current = ""
    for char in word:
        if current and estimate_tokens(current + char) > max_tokens:
            cuts.append(current)
            current = ""
        current += char
    return [*cuts, current] if current else cuts

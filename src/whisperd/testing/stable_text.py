"""What "a final never contradicts the stable text sent before it" means, word by word."""

from __future__ import annotations

import string

__all__ = ["extends_stable"]


def extends_stable(text: str, stable: str) -> bool:
    """Whether ``text`` (a later partial's or the final's) begins with the words of ``stable``
    (the stable text sent before it). The last stable word may gain trailing punctuation
    ("dark" then "dark,"): the words were forced as the decode's prefix, and the decoder may go
    on with a comma or a full stop; any other change (a word retracted, or continued: "6" then
    "6th") contradicts the stable text."""
    words, held = text.split(), stable.split()
    if not held:
        return True
    if words[: len(held) - 1] != held[:-1] or len(words) < len(held):
        return False
    last, shown = words[len(held) - 1], held[-1]
    return last.startswith(shown) and all(c in string.punctuation for c in last[len(shown) :])

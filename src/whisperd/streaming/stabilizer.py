"""LocalAgreement-2: a partial's words are committed once two consecutive decodes agree.

The rule is whisper_streaming's (Machacek et al. 2023), with one guard: the newest decode's last
word is never committed, since the audio may end inside it ("Re" of "Really").
"""

from __future__ import annotations


def _common_prefix(a: list[str], b: list[str]) -> int:
    count = 0
    while count < min(len(a), len(b)) and a[count] == b[count]:
        count += 1
    return count


class LocalAgreement:
    """Commits the longest common word prefix of consecutive partial decodes; never retracts."""

    def __init__(self) -> None:
        """Start an utterance with nothing committed."""
        self.committed: list[str] = []
        self._previous: list[str] = []

    def update(self, words: list[str]) -> tuple[str, str]:
        """Take a new decode of the whole utterance; return (stable text, unstable text).

        A decode that does not start with the committed words (the decoder ignored its forced
        prefix) commits nothing and shows nothing unstable; committed words stay.
        """
        done = len(self.committed)
        tail = words[done:] if words[:done] == self.committed else []
        previous = self._previous[done:] if self._previous[:done] == self.committed else []
        agreed = min(_common_prefix(tail, previous), max(len(tail) - 1, 0))
        self.committed.extend(tail[:agreed])
        self._previous = list(words)
        return " ".join(self.committed), " ".join(tail[agreed:])

    @property
    def prefix(self) -> str:
        """The committed text, to force as the decoder prefix of the next partial."""
        return " ".join(self.committed)

    def reset(self) -> None:
        """Forget the utterance (after its final)."""
        self.committed = []
        self._previous = []

"""LocalAgreement-2 with guards: which words of a partial are stable (never change again).

The rule is whisper_streaming's (Machacek et al. 2023): a word is committed once two consecutive
decodes of the growing utterance agree on it. Committed words are forced as the prefix of every
later decode of the utterance, its final included, so they cannot be contradicted; a wrong
committed word is therefore a word lost. Partials are greedy decodes of audio that stops
mid-sentence, so three guards keep their errors out:

- the newest decode's last :data:`HELD_BACK_WORDS` words are never committed: the audio may end
  inside the last word ("Re" of "Really"), and the words before it are guessed with little
  right context (greedy partials get "tell me the" where "tell me my way" follows);
- a decode that shows Whisper's signs of a hallucination (see :func:`doubtful`) commits nothing
  and is not agreed with: on short audio, greedy decoding often repeats the prompt;
- no more words are committed than the audio can hold (:data:`MOST_WORDS_PER_SECOND`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from whisperd.engine.base import Transcript

HELD_BACK_WORDS = 4
"""Words at the end of the newest decode that are never committed (about 1.3 s of speech).

More words held back: stable text comes later and fewer greedy guesses are forced into finals.
``bench/stream_policies.py`` measures stream WER per setting against the batch route
(docs/benchmarks.md)."""
MOST_WORDS_PER_SECOND = 4.0
"""Fast speech (about 6 syllables per second); more words than this from a stretch of audio
are a hallucination, not speech."""
LOG_PROB_THRESHOLD = -1.0
"""openai-whisper's ``logprob_threshold``: a decode with a lower mean token log probability
failed."""
COMPRESSION_RATIO_THRESHOLD = 2.4
"""openai-whisper's ``compression_ratio_threshold``: more compressible text is repetition."""
NO_SPEECH_THRESHOLD = 0.6
"""openai-whisper's ``no_speech_threshold``."""


def doubtful(transcript: Transcript) -> bool:
    """Whether a decode fails openai-whisper's own quality checks (the ones that trigger its
    temperature fallback): low mean log probability, repetitive text, or silence decoded as
    words."""
    return any(
        segment.avg_logprob < LOG_PROB_THRESHOLD
        or segment.compression_ratio > COMPRESSION_RATIO_THRESHOLD
        or segment.no_speech_prob > NO_SPEECH_THRESHOLD
        for segment in transcript.segments
    )


def _common_prefix(a: list[str], b: list[str]) -> int:
    count = 0
    while count < min(len(a), len(b)) and a[count] == b[count]:
        count += 1
    return count


class LocalAgreement:
    """Commits the longest common word prefix of consecutive trusted decodes; never retracts."""

    def __init__(self) -> None:
        """Start an utterance with nothing committed."""
        self.committed: list[str] = []
        self._previous: list[str] = []

    def update(
        self, words: list[str], *, trusted: bool = True, heard_s: float = 30.0
    ) -> tuple[str, str]:
        """Take a new decode of the whole utterance; return (stable text, unstable text).

        Args:
            words: The decode's words, the committed prefix first.
            trusted: False for a decode that looks hallucinated: it commits nothing and the
                next decode is not compared with it.
            heard_s: Seconds of audio the decode covered; at most
                :data:`MOST_WORDS_PER_SECOND` words per second are ever committed.

        A decode that does not start with the committed words (the decoder ignored its forced
        prefix) commits nothing and shows nothing unstable; committed words stay.
        """
        done = len(self.committed)
        tail = words[done:] if words[:done] == self.committed else []
        if not trusted:
            self._previous = []
            return " ".join(self.committed), " ".join(tail)
        previous = self._previous[done:] if self._previous[:done] == self.committed else []
        room = max(int(heard_s * MOST_WORDS_PER_SECOND) - done, 0)
        agreed = min(_common_prefix(tail, previous), max(len(tail) - HELD_BACK_WORDS, 0), room)
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

"""Per-token log-probabilities of a transcript, from Whisper's word-alignment pass.

Neither CTranslate2's ``generate`` nor faster-whisper's loop gives a decoded token's own
log-probability (only each window's sum, as ``avg_logprob``). The word-alignment pass does:
for every window, CTranslate2's ``align`` (and the PyTorch engine's) runs the decoder over the
window's text tokens once more and returns each token's probability
(``WhisperAlignmentResult.text_token_probs``), the numbers faster-whisper averages into each
word's ``probability``. :class:`AlignmentRecorder` keeps them as faster-whisper's loop asks for
alignments, and :class:`TokenLogprobReader` hands each segment the natural logarithm of its
text tokens' probabilities, with each token's text and UTF-8 bytes (OpenAI's ``logprobs``
entries: ``token``, ``logprob``, ``bytes``).

So a token's ``logprob`` is ``ln p(token | audio, the window's previous text tokens)`` with the
decoder prompted by the start-of-transcript sequence and no timestamp tokens: a teacher-forced
score of the token that was decoded, at temperature 1, not the sampling score of the decoding
step (which also saw the timestamp tokens and the previous window's prompt). Timestamp and
other special tokens get no entry. Recording needs word alignment, so asking for logprobs turns
on word timestamps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from whisperd.engine.base import TokenLogprob

__all__ = ["AlignmentRecorder", "TokenLogprobReader", "tail_logprobs", "token_bytes"]


def _gpt2_byte_decoder() -> Mapping[str, int]:
    """GPT-2's byte-level alphabet (``bytes_to_unicode``) reversed: character to byte.

    Whisper's tokenizer is GPT-2's byte-level BPE: every byte is written as one printable
    character, the printable ASCII and Latin-1 bytes as themselves, the others shifted to 256+.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("\xa1"), ord("\xac") + 1),
        *range(ord("\xae"), ord("\xff") + 1),
    ]
    characters = list(printable)
    shifted = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            characters.append(256 + shifted)
            shifted += 1
    return MappingProxyType({chr(c): b for b, c in zip(printable, characters, strict=True)})


_BYTE_OF: Mapping[str, int] = _gpt2_byte_decoder()


def token_bytes(piece: str) -> bytes:
    """The bytes a byte-level BPE token stands for (``"Ġhello"`` -> ``b" hello"``).

    A piece with a character outside the byte-level alphabet (a tokenizer that is not byte
    level) is taken as text and encoded in UTF-8.
    """
    if all(character in _BYTE_OF for character in piece):
        return bytes(_BYTE_OF[character] for character in piece)
    return piece.encode()


class AlignmentRecorder:
    """Stands in for a model inside faster-whisper's loop and keeps every alignment's text
    tokens with their probabilities; every call goes to the model unchanged."""

    def __init__(self, model: Any) -> None:
        """Record the alignments ``model`` makes."""
        self._model = model
        self.aligned: list[tuple[tuple[int, ...], tuple[float, ...]]] = []
        """Each aligned sequence's text tokens and their probabilities, in call order."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def align(
        self,
        features: Any,
        start_sequence: list[int],
        text_tokens: list[list[int]],
        num_frames: Any,
        median_filter_width: int = 7,
    ) -> Any:
        """The model's alignment, its token probabilities kept on the way."""
        results = self._model.align(
            features, start_sequence, text_tokens, num_frames, median_filter_width
        )
        for tokens, result in zip(text_tokens, results, strict=False):
            probabilities = tuple(float(p) for p in result.text_token_probs)[: len(tokens)]
            self.aligned.append((tuple(int(t) for t in tokens), probabilities))
        return results


class TokenLogprobReader:
    """Gives each decoded segment, in order, the log-probabilities of its text tokens."""

    def __init__(self, recorder: AlignmentRecorder, tokenizer: Any) -> None:
        """Read ``recorder``'s alignments; ``tokenizer`` is the model's ``tokenizers.Tokenizer``
        (its ``<|endoftext|>`` and every id above are special tokens)."""
        self._recorder = recorder
        self._tokenizer = tokenizer
        self._eot = int(tokenizer.token_to_id("<|endoftext|>"))
        self._tokens: list[int] = []
        self._probabilities: list[float] = []
        self._read = 0
        self._cursor = 0

    def segment(self, tokens: Sequence[int]) -> tuple[TokenLogprob, ...] | None:
        """The logprobs of a segment's text tokens (``tokens`` may hold special tokens).

        Segments must be asked for in decoding order, each after its window was aligned.

        Returns:
            One entry per text token, or ``None`` when no alignment holds the segment's tokens
            (a segment decoded without word alignment).
        """
        text = [int(token) for token in tokens if token < self._eot]
        self._take_new()
        start = self._find(text)
        if start is None:
            return None
        self._cursor = start + len(text)
        return tuple(
            self._entry(token, probability)
            for token, probability in zip(text, self._probabilities[start:], strict=False)
        )

    def _take_new(self) -> None:
        for tokens, probabilities in self._recorder.aligned[self._read :]:
            count = min(len(tokens), len(probabilities))
            self._tokens.extend(tokens[:count])
            self._probabilities.extend(probabilities[:count])
        self._read = len(self._recorder.aligned)

    def _find(self, text: list[int]) -> int | None:
        """Where ``text`` next occurs in the aligned tokens, at or after the cursor."""
        width = len(text)
        for start in range(self._cursor, len(self._tokens) - width + 1):
            if self._tokens[start : start + width] == text:
                return start
        return None

    def _entry(self, token: int, probability: float) -> TokenLogprob:
        piece = self._tokenizer.id_to_token(token) or ""
        raw = token_bytes(piece)
        logprob = math.log(probability) if probability > 0 else -math.inf
        return TokenLogprob(
            token=raw.decode("utf-8", errors="replace"), logprob=logprob, bytes=tuple(raw)
        )


def tail_logprobs(entries: Sequence[TokenLogprob], text: str) -> tuple[TokenLogprob, ...] | None:
    """The last entries whose bytes spell ``text`` (the end of a transcript), leading
    whitespace aside (a transcript is trimmed; its first token keeps Whisper's space).

    Words are made of whole tokens, so the tokens of a transcript's last words can be found
    from their text alone (what a stream keeps of a decode, or sends as its last delta).

    Returns:
        Those entries (``()`` for blank ``text``), or ``None`` when no run of whole tokens at
        the end spells ``text``.
    """
    wanted = text.encode().lstrip()
    taken = b""
    start = len(entries)
    while len(taken.lstrip()) < len(wanted) and start > 0:
        start -= 1
        taken = bytes(entries[start].bytes) + taken
    return tuple(entries[start:]) if taken.lstrip() == wanted else None

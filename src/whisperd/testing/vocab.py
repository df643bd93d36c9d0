"""A Whisper-layout vocabulary and ``tokenizer.json`` for random-weight test models.

The layout follows a real multilingual checkpoint: byte-level BPE text tokens first (with the
empty token that marks a multilingual vocabulary), then ``<|endoftext|>``,
``<|startoftranscript|>``, the language tokens, the task and prompt tokens, ``<|notimestamps|>``
and the 1501 timestamp tokens at the very end, where CTranslate2 and faster-whisper expect them.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from whisperd.languages import LANGUAGES

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
N_TIMESTAMPS = 1501


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table used by byte-level BPE."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += list(range(ord("®"), ord("ÿ") + 1))
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return dict(sorted(table.items()))


def make_words(count: int, seed: int) -> list[str]:
    """Return ``count`` distinct pronounceable two-syllable words, deterministically."""
    syllables = [c + v for c in _CONSONANTS for v in _VOWELS]
    pool = sorted({a + b for a in syllables for b in syllables})
    random.Random(seed).shuffle(pool)  # noqa: S311 - test data, not security
    if count > len(pool):
        raise ValueError(f"at most {len(pool)} words can be made")
    return pool[:count]


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Token strings in id order, the BPE merges, and where the special tokens sit."""

    tokens: tuple[str, ...]
    merges: tuple[tuple[str, str], ...]
    n_text: int
    """Number of ordinary (BPE) tokens; ``<|endoftext|>`` has this id."""
    languages: tuple[str, ...]

    def id(self, token: str) -> int:
        """Return the id of ``token``."""
        return self.tokens.index(token)

    def word_id(self, word: str) -> int:
        """Return the id of the single token that spells ``" " + word``."""
        return self.id("Ġ" + word)

    @property
    def specials(self) -> tuple[str, ...]:
        """The special tokens, in id order (timestamps included)."""
        return self.tokens[self.n_text :]


def build_vocabulary(
    words: list[str],
    *,
    size: int,
    multilingual: bool = True,
    languages: tuple[str, ...] = tuple(LANGUAGES),
) -> Vocabulary:
    """Build a vocabulary where each word of ``words`` is one token (with a leading space).

    Filler tokens pad the text part so that the whole vocabulary has ``size`` tokens, which
    keeps the embedding and output projection at the size of a real checkpoint. Without
    ``multilingual`` the empty token is left out, which makes an English-only model.
    """
    tokens = list(_bytes_to_unicode().values())
    present = set(tokens)
    merges: list[tuple[str, str]] = []
    for word in words:
        spelled = "Ġ" + word
        for end in range(2, len(spelled) + 1):
            piece = spelled[:end]
            if piece not in present:
                merges.append((spelled[: end - 1], spelled[end - 1]))
                tokens.append(piece)
                present.add(piece)
    if multilingual:
        tokens.append("")  # A real multilingual vocabulary has it; CTranslate2 looks for it.
    specials = [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *(f"<|{code}|>" for code in languages),
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nospeech|>",
        "<|notimestamps|>",
        *(f"<|{i * 0.02:.2f}|>" for i in range(N_TIMESTAMPS)),
    ]
    filler = size - len(tokens) - len(specials)
    if filler < 0:
        raise ValueError(f"vocabulary size {size} is too small for {len(words)} words")
    tokens.extend(f"fill{i}" for i in range(filler))
    n_text = len(tokens)
    tokens.extend(specials)
    return Vocabulary(tuple(tokens), tuple(merges), n_text, tuple(languages))


def tokenizer_json(vocab: Vocabulary) -> str:
    """Serialize ``vocab`` as a Hugging Face ``tokenizer.json`` (byte-level BPE)."""
    text_vocab = {token: i for i, token in enumerate(vocab.tokens[: vocab.n_text])}
    added = [
        {
            "id": vocab.n_text + offset,
            "content": token,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for offset, token in enumerate(vocab.specials)
    ]
    document = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "",
            "fuse_unk": False,
            "vocab": text_vocab,
            "merges": [f"{a} {b}" for a, b in vocab.merges],
        },
    }
    return json.dumps(document, ensure_ascii=False)


def write_tokenizer(vocab: Vocabulary, directory: Path) -> None:
    """Write ``tokenizer.json`` into ``directory``."""
    (directory / "tokenizer.json").write_text(tokenizer_json(vocab), encoding="utf-8")

"""The keywords of a ``generate`` call and how a prompt is laid out, as CTranslate2 reads them."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from whisperd.engine.pytorch.rules import Vocab


@dataclass(frozen=True, slots=True)
class GenerateOptions:
    """Decoding options of one ``generate`` call (CTranslate2's names and defaults)."""

    beam_size: int = 1
    patience: float = 1.0
    num_hypotheses: int = 1
    length_penalty: float = 1.0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    max_length: int = 448
    return_scores: bool = False
    return_logits_vocab: bool = False
    return_no_speech_prob: bool = False
    max_initial_timestamp_index: int = 50
    suppress_blank: bool = True
    suppress_tokens: tuple[int, ...] = (-1,)
    sampling_topk: int = 1
    sampling_temperature: float = 1.0

    @classmethod
    def parse(cls, keywords: dict[str, Any]) -> GenerateOptions:
        """Options from ``generate``'s keywords.

        Raises:
            ValueError: on an unknown keyword or a value out of range.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(keywords) - known)
        if unknown:
            raise ValueError(f"generate() got unexpected options {unknown}")
        values = dict(keywords)
        if "suppress_tokens" in values:
            values["suppress_tokens"] = tuple(int(t) for t in values["suppress_tokens"] or ())
        options = cls(**values)
        options.validate()
        return options

    def validate(self) -> None:
        """Raises ValueError naming the first option out of range."""
        if self.beam_size < 1 or self.num_hypotheses < 1:
            raise ValueError("beam_size and num_hypotheses must be at least 1")
        if self.patience <= 0 or self.repetition_penalty <= 0:
            raise ValueError("patience and repetition_penalty must be positive")
        if self.sampling_topk < 0 or self.no_repeat_ngram_size < 0 or self.max_length < 1:
            raise ValueError("sampling_topk, no_repeat_ngram_size and max_length out of range")
        if self.sampling_temperature < 0:
            raise ValueError("sampling_temperature must not be negative")

    @property
    def sampling(self) -> bool:
        """Random sampling: beam size 1, a top-k other than 1 and a temperature above 0
        (otherwise the best token is taken and the temperature is ignored)."""
        return self.beam_size == 1 and self.sampling_topk != 1 and self.sampling_temperature > 0

    @property
    def rows(self) -> int:
        """Decoder rows one prompt occupies: its beams, or its sampled hypotheses."""
        if self.beam_size > 1:
            return self.beam_size
        return self.num_hypotheses if self.sampling else 1

    @property
    def max_finished(self) -> int:
        """Finished beams that end a beam search (``beam_size * patience``, rounded)."""
        return max(1, math.floor(self.beam_size * self.patience + 0.5))


@dataclass(frozen=True, slots=True)
class PromptPlan:
    """How one prompt is decoded.

    The tokens up to the task tokens (``<|startoftranscript|>``, language, task,
    ``<|notimestamps|>``) are the context fed to the decoder; whatever follows them is a forced
    prefix, produced as the first steps; then tokens are sampled.
    """

    context: tuple[int, ...]
    prefix: tuple[int, ...]
    sot_index: int
    timestamps: bool
    max_steps: int
    """Most tokens generated (the prefix included)."""


def plan_prompt(
    prompt: Sequence[int], vocab: Vocab, max_length: int, n_text_ctx: int
) -> PromptPlan:
    """Split ``prompt`` as CTranslate2's Whisper decoding does.

    Raises:
        ValueError: if the prompt has no ``<|startoftranscript|>`` or is too long.
    """
    tokens = [int(t) for t in prompt]
    if vocab.sot not in tokens:
        raise ValueError("a Whisper prompt must contain <|startoftranscript|>")
    sot_index = tokens.index(vocab.sot)
    end = sot_index
    while end < len(tokens) and vocab.sot <= tokens[end] <= vocab.no_timestamps:
        end += 1
    max_steps = min(max_length // 2, max_length - (end - 1))
    if max_length > n_text_ctx or len(tokens) >= n_text_ctx or max_steps < 1:
        raise ValueError(
            f"the prompt ({len(tokens)} tokens) and max_length ({max_length}) must fit the "
            f"decoder's {n_text_ctx} positions"
        )
    return PromptPlan(
        context=tuple(tokens[:end]),
        prefix=tuple(tokens[end:]),
        sot_index=sot_index,
        timestamps=tokens[end - 1] != vocab.no_timestamps,
        max_steps=max_steps,
    )

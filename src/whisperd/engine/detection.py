"""Spoken-language detection results, and detection restricted to candidate languages.

Whisper detects a language from the first token it predicts after ``<|startoftranscript|>``:
one encoder pass of a 30 s window, then a probability for every language token (CTranslate2's
``detect_language``, faster-whisper's ``WhisperModel.detect_language``). OpenAI's
``languages[]`` (``gpt-transcribe``) names the languages the audio may be in; here the
detection keeps only those candidates and renormalises their probabilities to sum to 1, so the
most probable candidate wins even when another language scores higher overall, and the
probability reported is the candidate's share among the candidates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["CandidateLanguages", "LanguageDetection", "LanguageProbability", "restrict"]


@dataclass(frozen=True, slots=True)
class LanguageProbability:
    """One language and how probable it is (0-1)."""

    language: str
    """Whisper's code for it (``en``, ``haw``, ``yue``)."""
    probability: float


@dataclass(frozen=True, slots=True)
class LanguageDetection:
    """The language detected in audio, and every language considered, most probable first."""

    language: str
    """Whisper's code of the detected language."""
    probability: float
    """Its probability (among the candidates, when there were candidates)."""
    candidates: tuple[LanguageProbability, ...]
    """Every language considered, most probable first: all of the model's languages, or the
    candidates asked for."""
    duration: float = 0.0
    """Seconds of audio the detection was asked about."""
    model: str = ""
    """Name of the model that detected it."""

    @classmethod
    def certain(cls, language: str, *, duration: float = 0.0, model: str = "") -> LanguageDetection:
        """The detection of a model that knows one language (English-only models), or of
        audio with nothing to hear: that language with probability 1."""
        return cls(language, 1.0, (LanguageProbability(language, 1.0),), duration, model)


def restrict(
    probabilities: Iterable[tuple[str, float]], candidates: Sequence[str]
) -> list[tuple[str, float]]:
    """Keep the ``candidates`` of ``(language, probability)`` pairs, renormalised, best first.

    Args:
        probabilities: Every language the model scored, as codes or as CTranslate2's tokens
            (``<|en|>``); each keeps its spelling.
        candidates: Whisper language codes.

    Returns:
        The candidates' pairs, their probabilities divided by their sum (left as they are if
        they sum to 0), most probable first; empty if no candidate was scored.
    """
    wanted = frozenset(candidates)
    kept = [(name, float(p)) for name, p in probabilities if _code(name) in wanted]
    total = sum(p for _, p in kept)
    if total > 0:
        kept = [(name, p / total) for name, p in kept]
    return sorted(kept, key=lambda pair: pair[1], reverse=True)


def _code(name: str) -> str:
    """``en`` for CTranslate2's token ``<|en|>``; a code stays as it is."""
    return name[2:-2] if name.startswith("<|") and name.endswith("|>") else name


class CandidateLanguages:
    """Stands in for a model inside faster-whisper's decoding loop so that every language
    detection it makes (the first window's, and each window's with ``multilingual``) only
    considers ``candidates``; every other call goes to the model unchanged."""

    def __init__(self, model: Any, candidates: Sequence[str]) -> None:
        """Restrict ``model``'s ``detect_language`` to ``candidates`` (Whisper codes)."""
        self._model = model
        self._candidates = tuple(candidates)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def detect_language(self, features: Any) -> list[list[tuple[str, float]]]:
        """Per batch item, the candidates' ``(token, probability)`` pairs, best first.

        A candidate the model does not know is left out; if none is known, the model's own
        ranking is kept (the options check refuses such candidates before decoding starts).
        """
        results = self._model.detect_language(features)
        restricted = []
        for ranking in results:
            kept = restrict(ranking, self._candidates)
            restricted.append(kept or list(ranking))
        return restricted

"""The catalogue of models whisperd knows by name, their aliases, and how weights are stored."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = [
    "CTRANSLATE2",
    "DEFAULT_MODEL",
    "FORMATS",
    "HUGGINGFACE",
    "KNOWN_MODELS",
    "MODEL_FILES",
    "KnownModel",
    "ModelFormat",
    "known_model",
    "known_model_by_repo_id",
]

DEFAULT_MODEL = "large-v3-turbo"
"""The model used when none is named."""


@dataclass(frozen=True, slots=True)
class ModelFormat:
    """A way Whisper weights are stored on disk, and how to recognise a complete copy."""

    name: str
    description: str
    """How messages name a directory of this format."""
    patterns: tuple[str, ...]
    """Files of a Hub repository that are downloaded (the rest is skipped)."""
    weights: tuple[str, ...]
    """A complete copy holds ``config.json`` and at least one of these."""
    hint: str
    """What a local directory of this format must hold."""

    def complete(self, path: Path) -> bool:
        """Whether ``path`` holds a usable model of this format."""
        return (path / "config.json").is_file() and any((path / f).is_file() for f in self.weights)

    @property
    def local_alternative(self) -> str:
        """The last resort error messages offer."""
        return f"pass a local {self.description}"


CTRANSLATE2 = ModelFormat(
    name="ctranslate2",
    description="CTranslate2 model directory",
    patterns=(
        "config.json",
        "preprocessor_config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.*",
    ),
    weights=("model.bin",),
    hint=(
        "a converted Whisper model needs model.bin and config.json plus tokenizer.json and "
        "preprocessor_config.json (as written by ct2-transformers-converter)"
    ),
)
HUGGINGFACE = ModelFormat(
    name="huggingface",
    description="Hugging Face Whisper checkpoint directory",
    patterns=(
        "config.json",
        "generation_config.json",
        "preprocessor_config.json",
        "tokenizer.json",
        "model.safetensors",
        "model.safetensors.index.json",
        "model-*.safetensors",
    ),
    weights=("model.safetensors", "model.safetensors.index.json"),
    hint=(
        "a Whisper checkpoint needs config.json and model.safetensors plus tokenizer.json and "
        "preprocessor_config.json (as in the openai/whisper-* repositories)"
    ),
)
FORMATS: Mapping[str, ModelFormat] = MappingProxyType(
    {fmt.name: fmt for fmt in (CTRANSLATE2, HUGGINGFACE)}
)
"""Model formats by name: ``ctranslate2`` for the CTranslate2 engine, ``huggingface`` for
the PyTorch engine."""

MODEL_FILES = CTRANSLATE2.patterns
"""Files of a CTranslate2 Whisper checkpoint that are downloaded (the rest of a repo is skipped)."""


@dataclass(frozen=True, slots=True)
class KnownModel:
    """A model whisperd knows by name.

    Attributes:
        name: Canonical name, e.g. ``large-v3-turbo``.
        repo_id: Hugging Face repo id of the CTranslate2 conversion.
        aliases: Other names that select this model.
        english_only: True for the ``.en`` models.
        supports_translation: Whether the model can translate to English. False for English-only
            and distilled models (distillation dropped the translate task); True for turbo, which
            translates, if less well than large-v3.
        hf_repo_id: Hugging Face repo id of the original checkpoint (safetensors), which the
            PyTorch engine loads.
    """

    name: str
    repo_id: str
    aliases: tuple[str, ...]
    english_only: bool
    supports_translation: bool
    hf_repo_id: str

    def repo_for(self, fmt: ModelFormat) -> str:
        """The repository holding this model in ``fmt``."""
        return self.hf_repo_id if fmt is HUGGINGFACE else self.repo_id


def _original(name: str) -> str:
    """The Hugging Face repo id of the original checkpoint of a known model."""
    if name.startswith("distil-"):
        return "distil-whisper/" + name
    return "openai/whisper-" + {"large-v1": "large"}.get(name, name)


def _known(name: str, repo_id: str, *aliases: str) -> KnownModel:
    """A table entry, with the flags and original checkpoint its name implies."""
    english_only = name.endswith(".en")
    distilled = name.startswith("distil-")
    return KnownModel(
        name=name,
        repo_id=repo_id,
        aliases=aliases,
        english_only=english_only,
        supports_translation=not (english_only or distilled),
        hf_repo_id=_original(name),
    )


_SYSTRAN = "Systran/faster-whisper-"
_SYSTRAN_DISTIL = "Systran/faster-distil-whisper-"

KNOWN_MODELS: Mapping[str, KnownModel] = MappingProxyType(
    {
        model.name: model
        for model in (
            _known("tiny.en", _SYSTRAN + "tiny.en"),
            _known("tiny", _SYSTRAN + "tiny"),
            _known("base.en", _SYSTRAN + "base.en"),
            _known("base", _SYSTRAN + "base"),
            _known("small.en", _SYSTRAN + "small.en"),
            _known("small", _SYSTRAN + "small"),
            _known("medium.en", _SYSTRAN + "medium.en"),
            _known("medium", _SYSTRAN + "medium"),
            _known("large-v1", _SYSTRAN + "large-v1"),
            _known("large-v2", _SYSTRAN + "large-v2"),
            _known("large-v3", _SYSTRAN + "large-v3", "large"),
            _known("distil-large-v2", _SYSTRAN_DISTIL + "large-v2"),
            _known("distil-medium.en", _SYSTRAN_DISTIL + "medium.en", "distil-whisper-medium.en"),
            _known("distil-small.en", _SYSTRAN_DISTIL + "small.en", "distil-whisper-small.en"),
            _known("distil-large-v3", _SYSTRAN_DISTIL + "large-v3", "distil-whisper-large-v3"),
            _known("distil-large-v3.5", "distil-whisper/distil-large-v3.5-ct2"),
            _known(
                "large-v3-turbo",
                "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
                "turbo",
                "whisper-1",
                "whisper-large-v3-turbo",
            ),
        )
    }
)
"""Every known model by canonical name, in faster-whisper's order."""

_BY_NAME: Mapping[str, KnownModel] = MappingProxyType(
    {
        name.lower(): model
        for model in KNOWN_MODELS.values()
        for name in (model.name, *model.aliases)
    }
)
_BY_REPO_ID: Mapping[str, KnownModel] = MappingProxyType(
    {
        repo.lower(): model
        for model in KNOWN_MODELS.values()
        for repo in (model.repo_id, model.hf_repo_id)
    }
)


def known_model(name: str) -> KnownModel | None:
    """Look up a known model by canonical name or alias (case-insensitive).

    Args:
        name: A model name such as ``large-v3``, ``turbo`` or ``whisper-1``.

    Returns:
        The known model, or None if the name is not in the table.
    """
    return _BY_NAME.get(name.strip().lower())


def known_model_by_repo_id(repo_id: str) -> KnownModel | None:
    """Look up a known model by one of its Hugging Face repo ids (case-insensitive).

    Args:
        repo_id: The repo id of a CTranslate2 conversion or of an original checkpoint.

    Returns:
        The known model, or None if no table entry lives in that repository.
    """
    return _BY_REPO_ID.get(repo_id.lower())

"""The model catalogue served by ``/v1/models``: known models, the default and its aliases."""

from __future__ import annotations

from typing import TYPE_CHECKING

from whisperd.engine.catalogue import KNOWN_MODELS, known_model
from whisperd.engine.hub import list_models
from whisperd.languages import LANGUAGES
from whisperd.schemas.openai import ModelCapabilities, ModelObject, request_schema

if TYPE_CHECKING:
    from whisperd.config import Settings

DEFAULT_ALIASES = ("whisper-1", "whisper-large-v3-turbo", "openai/whisper-large-v3-turbo")
"""OpenAI-style ids that always mean the server's default model."""


def _capabilities(translation: bool) -> ModelCapabilities:
    languages = list(LANGUAGES) if translation else ["en"]
    return ModelCapabilities(translation=translation, languages=languages)


def model_entries(settings: Settings, created: int) -> list[ModelObject]:
    """Every id a request may name. Blocking (inspects the model cache); run it in a thread."""
    parameters = request_schema()
    default = known_model(settings.model)
    default_translation = default.supports_translation if default is not None else True
    entries = []
    for listing in list_models(models_dir=settings.models_dir):
        is_default = default is not None and default.name == listing.name
        entries.append(
            ModelObject(
                id=listing.name,
                created=created,
                downloaded=listing.present,
                default=is_default,
                capabilities=_capabilities(listing.supports_translation),
                parameters=parameters,
            )
        )
    if default is None:  # a Hub repo id or a local directory
        entries.insert(
            0,
            ModelObject(
                id=settings.model,
                created=created,
                downloaded=True,
                default=True,
                capabilities=_capabilities(True),
                parameters=parameters,
            ),
        )
    for alias in DEFAULT_ALIASES:
        entries.append(
            ModelObject(
                id=alias,
                created=created,
                downloaded=any(e.default and e.downloaded for e in entries),
                default=True,
                capabilities=_capabilities(default_translation),
                parameters=parameters,
            )
        )
    return entries


def _canonical(model_id: str) -> str | None:
    """The table name behind an alias or a known repo id, if any."""
    known = known_model(model_id)
    if known is not None:
        return known.name
    for model in KNOWN_MODELS.values():
        if model.repo_id.lower() == model_id.lower():
            return model.name
    return None


def find_entry(entries: list[ModelObject], model_id: str) -> ModelObject | None:
    """The entry for ``model_id``: an id, an alias or a known repo id (shown under that id)."""
    for entry in entries:
        if entry.id == model_id:
            return entry
    canonical = _canonical(model_id)
    for entry in entries:
        if entry.id == canonical:
            return entry.model_copy(update={"id": model_id})
    return None

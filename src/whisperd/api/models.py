"""The model catalogue served by ``/v1/models``: known models, the default and its aliases.

Capabilities (translation, languages) come from the model itself once it is loaded: an
English-only model says ``["en"]`` and no translation, whatever its name. Before that, a known
model's table entry tells them; a Hub repo or a directory outside the table claims nothing
(no translation, no languages) until it is loaded. A default model whose last load failed is
not listed, nor are its aliases. Models the allow-list refuses (``allowed_models``) are not
listed. Each entry says whether its model is ``loaded`` now (on any device and compute type).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from whisperd.engine.allowed import ModelAllowList
from whisperd.engine.catalogue import KNOWN_MODELS, known_model
from whisperd.engine.hub import list_models, local_copy
from whisperd.errors import UnknownModelError
from whisperd.languages import LANGUAGES
from whisperd.schemas.openai import ModelCapabilities, ModelObject, request_schema

if TYPE_CHECKING:
    from typing import Any

    from whisperd.config import Settings
    from whisperd.engine.base import ModelInfo
    from whisperd.engine.catalogue import ModelFormat
    from whisperd.errors import ModelError
    from whisperd.service import TranscriptionService

DEFAULT_ALIASES = ("whisper-1", "whisper-large-v3-turbo", "openai/whisper-large-v3-turbo")
"""OpenAI-style ids that always mean the server's default model."""


@dataclass(frozen=True, slots=True)
class ServedModels:
    """What the service knows of its models when a listing is asked for.

    Attributes:
        default: The default model, once loaded.
        default_failure: Why the last attempt to load the default model failed, if it did.
        loaded: Every loaded model.
        fmt: The format the engine loads (which repositories and cached copies count).
    """

    default: ModelInfo | None
    default_failure: ModelError | None
    loaded: tuple[ModelInfo, ...]
    fmt: ModelFormat

    @classmethod
    def of(cls, service: TranscriptionService) -> ServedModels:
        """Read ``service`` now; quick, for the event loop."""
        return cls(
            default=service.default_info(),
            default_failure=service.default_failure,
            loaded=tuple(service.models.loaded()),
            fmt=service.models.fmt,
        )


def _capabilities(info: ModelInfo | None, known_translation: bool | None) -> ModelCapabilities:
    """From the loaded model if there is one, else from the table (None: not in the table)."""
    if info is not None:
        return ModelCapabilities(
            translation=info.supports_translation, languages=list(info.languages)
        )
    if known_translation is None:
        return ModelCapabilities(translation=False, languages=[])
    languages = list(LANGUAGES) if known_translation else ["en"]
    return ModelCapabilities(translation=known_translation, languages=languages)


def model_entries(settings: Settings, created: int, served: ServedModels) -> list[ModelObject]:
    """Every id a request may name (the allow-list's, ``allowed_models``). Blocking (inspects
    the model cache); run it in a thread."""
    common: dict[str, Any] = {"created": created, "parameters": request_schema()}
    default = known_model(settings.model)
    allowed = ModelAllowList(tuple(settings.allowed_models), settings.model)
    loaded = {info.name: info for info in served.loaded}
    entries = []
    for listing in list_models(models_dir=settings.models_dir, fmt=served.fmt):
        is_default = default is not None and default.name == listing.name
        if is_default and served.default_failure is not None:
            continue
        if not is_default and not allowed.allows(listing.name):
            continue
        info = (served.default if is_default else None) or loaded.get(listing.name)
        entries.append(
            ModelObject(
                id=listing.name,
                downloaded=listing.present or info is not None,
                default=is_default,
                loaded=info is not None,
                capabilities=_capabilities(info, listing.supports_translation),
                **common,
            )
        )
    if default is None and served.default_failure is None:  # a Hub repo id or a directory
        entry = _outside_entry(settings, served, common)
        if entry is not None:
            entries.insert(0, entry)
    chosen = next((entry for entry in entries if entry.default), None)
    if chosen is not None:
        entries.extend(chosen.model_copy(update={"id": alias}) for alias in DEFAULT_ALIASES)
    return entries


def _outside_entry(
    settings: Settings, served: ServedModels, common: dict[str, Any]
) -> ModelObject | None:
    """The entry of a default model outside the table; None if the name selects no model."""
    if served.default is not None:
        downloaded = True
    else:
        try:
            path = local_copy(settings.model, models_dir=settings.models_dir, fmt=served.fmt)
        except UnknownModelError:
            return None
        downloaded = path is not None
    known = None if served.default is not None else _table_translation(settings.model)
    return ModelObject(
        id=settings.model,
        downloaded=downloaded,
        default=True,
        loaded=served.default is not None,
        capabilities=_capabilities(served.default, known),
        **common,
    )


def _table_translation(model_id: str) -> bool | None:
    """Whether the table's model behind ``model_id`` translates; None if it is not a table
    model."""
    canonical = _canonical(model_id)
    return KNOWN_MODELS[canonical].supports_translation if canonical is not None else None


def _canonical(model_id: str) -> str | None:
    """The table name behind an alias or a known repo id, if any."""
    known = known_model(model_id)
    if known is not None:
        return known.name
    for model in KNOWN_MODELS.values():
        if model_id.lower() in (model.repo_id.lower(), model.hf_repo_id.lower()):
            return model.name
    return None


def find_entry(entries: list[ModelObject], model_id: str) -> ModelObject | None:
    """The entry for ``model_id``: an id, an alias or a known repo id (shown under that id)."""
    for entry in entries:
        if entry.id == model_id:
            return entry
    if model_id in DEFAULT_ALIASES:  # the server's default, whatever the table says of them
        return None
    canonical = _canonical(model_id)
    for entry in entries:
        if entry.id == canonical:
            return entry.model_copy(update={"id": model_id})
    return None


def missing_model(model_id: str, settings: Settings, served: ServedModels) -> ModelError:
    """The error for an id :func:`find_entry` did not find.

    Returns:
        The default model's failure for an id of the default model whose load failed (a
        server fault, 503), else an :class:`UnknownModelError` (404).
    """
    failure = served.default_failure
    is_default = model_id in (*DEFAULT_ALIASES, settings.model) or (
        _canonical(model_id) is not None and _canonical(model_id) == _canonical(settings.model)
    )
    if failure is not None and is_default:
        return failure
    return UnknownModelError(f"The model '{model_id}' does not exist.")

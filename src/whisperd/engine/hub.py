"""Models from the Hugging Face Hub: resolving a name to a local directory, the cache, and
what to tell the user when the Hub, the cache or offline mode stands in the way.

:func:`resolve_model` turns what a user typed (a name, an alias, a Hugging Face repo id or a local
model directory) into a local directory, downloading it through ``huggingface_hub`` into the
standard Hub cache when needed; :func:`list_models` reports what the cache holds without touching
the network.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import huggingface_hub
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    IncompleteSnapshotError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
)

# Public API; the package re-exports it lazily, so mypy sees no explicit export.
from huggingface_hub.utils import validate_repo_id  # type: ignore[attr-defined]
from huggingface_hub.utils.tqdm import tqdm as hf_tqdm

from whisperd.engine.catalogue import (
    CTRANSLATE2,
    KNOWN_MODELS,
    KnownModel,
    ModelFormat,
    known_model,
    known_model_by_repo_id,
)
from whisperd.errors import ModelUnavailableError, UnknownModelError

__all__ = [
    "ModelListing",
    "ResolvedModel",
    "check_model",
    "list_models",
    "local_copy",
    "resolve_model",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """A model found on local disk, ready to load.

    Attributes:
        name: Canonical name for a known model, the repo id for another Hub model, or the
            directory for a local model.
        path: Local directory holding ``model.bin`` and its companions.
        repo_id: The Hugging Face repo id it came from, or None for a local directory.
        known: The table entry when the model is a known one, else None.
    """

    name: str
    path: Path
    repo_id: str | None
    known: KnownModel | None


@dataclass(frozen=True, slots=True)
class _HubRequest:
    """What one download needs, and what its error messages cite."""

    label: str
    repo_id: str
    cache_root: Path
    endpoint: str
    fmt: ModelFormat

    @property
    def cache_dir(self) -> Path:
        """The repo's folder inside the Hub cache (``models--org--name``)."""
        return self.cache_root / ("models--" + self.repo_id.replace("/", "--"))

    @property
    def subject(self) -> str:
        """How messages name the model: ``'tiny' (Systran/faster-whisper-tiny)``."""
        if self.label == self.repo_id:
            return f"'{self.label}'"
        return f"'{self.label}' ({self.repo_id})"


def resolve_model(
    name: str,
    *,
    models_dir: Path | None,
    offline: bool,
    endpoint: str | None = None,
    progress: bool = True,
    fmt: ModelFormat = CTRANSLATE2,
) -> ResolvedModel:
    """Find or download a model and return its local directory. Blocking.

    In order: an existing directory is used as is (it must be a complete model of ``fmt``); a
    known name or alias selects its Hub repo in ``fmt``; ``org/name`` is taken as a Hub repo id.
    Hub models are downloaded into the Hugging Face cache (``models_dir`` when set) or,
    offline, taken from it.

    Args:
        name: A known model name or alias, a Hugging Face repo id, or a local directory.
        models_dir: Hub cache directory to use instead of the default Hugging Face cache.
        offline: Never use the network; the model must already be in the cache.
        endpoint: Hub URL to use instead of the default (``HF_ENDPOINT`` or huggingface.co).
        progress: Show huggingface_hub's download progress bars.
        fmt: The format the engine loads (CTranslate2 or a Hugging Face checkpoint).

    Returns:
        The resolved model.

    Raises:
        UnknownModelError: if the name is no known model, repo id or model directory.
        ModelUnavailableError: if the model cannot be downloaded or is missing while offline.
    """
    local = _local_model(name, fmt)
    if local is not None:
        return local
    known, repo_id = _repository(name, fmt)
    request = _HubRequest(
        label=known.name if known is not None else repo_id,
        repo_id=repo_id,
        cache_root=models_dir if models_dir is not None else Path(hf_constants.HF_HUB_CACHE),
        endpoint=endpoint or hf_constants.ENDPOINT,
        fmt=fmt,
    )
    path = _snapshot(request, offline=offline, endpoint=endpoint, progress=progress)
    return ResolvedModel(name=request.label, path=path, repo_id=repo_id, known=known)


def check_model(
    name: str, *, models_dir: Path | None, offline: bool, fmt: ModelFormat = CTRANSLATE2
) -> None:
    """Refuse, without the network, a model that surely cannot be had. Blocking, but quick.

    The name must select a model (a known name, a repo id, or a complete model directory);
    offline (the setting or ``HF_HUB_OFFLINE``), a Hub model must also be in the cache. A model
    that is still to be downloaded passes: only the download can tell whether it fails.

    Args:
        name: What :func:`resolve_model` accepts.
        models_dir: Hub cache directory instead of the default Hugging Face cache.
        offline: Never use the network.
        fmt: The format the engine loads.

    Raises:
        UnknownModelError: if the name is no known model, repo id or model directory.
        ModelUnavailableError: if, offline, the model is not in the cache.
    """
    if _local_model(name, fmt) is not None:
        return
    _repository(name, fmt)
    if offline or hf_constants.is_offline_mode():
        resolve_model(name, models_dir=models_dir, offline=True, progress=False, fmt=fmt)


def local_copy(
    name: str, *, models_dir: Path | None, fmt: ModelFormat = CTRANSLATE2
) -> Path | None:
    """The complete local copy of a model (its directory, or its cached snapshot). No network.

    Args:
        name: What :func:`resolve_model` accepts.
        models_dir: Hub cache directory instead of the default Hugging Face cache.
        fmt: The format the engine loads.

    Returns:
        The directory, or None when the model is not on local disk.

    Raises:
        UnknownModelError: if the name is no known model, repo id or model directory.
    """
    local = _local_model(name, fmt)
    if local is not None:
        return local.path
    _, repo_id = _repository(name, fmt)
    cache_root = models_dir if models_dir is not None else Path(hf_constants.HF_HUB_CACHE)
    return _cached_snapshot(repo_id, cache_root, fmt)


def _repository(name: str, fmt: ModelFormat) -> tuple[KnownModel | None, str]:
    """The known model (if any) and Hub repo id that a name which is no path selects.

    Raises:
        UnknownModelError: if the name is neither a known model nor an ``org/name`` repo id.
    """
    known = known_model(name)
    repo_id = known.repo_for(fmt) if known is not None else _as_repo_id(name)
    if repo_id is None:
        raise UnknownModelError(_unknown_message(name, fmt))
    return known or known_model_by_repo_id(repo_id), repo_id


def _local_model(name: str, fmt: ModelFormat) -> ResolvedModel | None:
    """The model directory ``name`` names, None when it names no path at all."""
    if not name.strip():
        raise UnknownModelError(_unknown_message(name, fmt))
    path = Path(name).expanduser()
    if path.is_dir():
        if not fmt.complete(path):
            weights = " or ".join(fmt.weights)
            raise UnknownModelError(
                f"Model directory '{path}' is not a {fmt.description}: it has no config.json "
                f"with {weights}, and {fmt.hint}."
            )
        path = path.resolve()
        return ResolvedModel(name=str(path), path=path, repo_id=None, known=None)
    if path.exists():
        raise UnknownModelError(
            f"Model path '{path}' is a file, not a {fmt.description}; pass the directory that "
            f"contains {fmt.weights[0]}."
        )
    if _looks_like_path(name):
        raise UnknownModelError(
            f"Model directory '{path}' does not exist; pass an existing {fmt.description}, "
            "a known model name or a Hugging Face repo id."
        )
    return None


def _looks_like_path(name: str) -> bool:
    """True for names no repo id or model name can have (absolute, ``./``, ``~``, ``\\``)."""
    return Path(name).is_absolute() or name.startswith((".", "~")) or "\\" in name


def _as_repo_id(name: str) -> str | None:
    """``name`` when it is an ``org/name`` repo id by huggingface_hub's own rules, else None."""
    # The Hub's validator also takes a bare "name" (and, through a Unicode ``\w``, non-ASCII
    # letters); whisperd reads those as model names or paths, so it asks for ASCII org/name.
    if name.count("/") != 1 or not name.isascii():
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def _unknown_message(name: str, fmt: ModelFormat) -> str:
    """Why ``name`` selects no model, and what to pass instead."""
    names = ", ".join(KNOWN_MODELS)
    example = KNOWN_MODELS["small"].repo_for(fmt)
    return (
        f"Unknown model '{name}': it is neither a known model name, a Hugging Face repo id "
        f"(org/name) nor an existing directory, so use one of {names}, pass a Hub repo id such "
        f"as '{example}', or {fmt.local_alternative}."
    )


# --------------------------------------------------------------------------------------------
# Download


class _SilentTqdm(hf_tqdm):
    """huggingface_hub's progress bar, always disabled (no global switch is flipped)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]  # untyped upstream


def _snapshot(request: _HubRequest, *, offline: bool, endpoint: str | None, progress: bool) -> Path:
    """Download the repo of ``request`` into the cache (or find it there, offline)."""
    logger.info(
        "Resolving model %s from %s",
        request.repo_id,
        "the local cache" if offline else request.endpoint,
    )
    try:
        folder = huggingface_hub.snapshot_download(
            request.repo_id,
            cache_dir=request.cache_root,
            local_files_only=offline,
            allow_patterns=list(request.fmt.patterns),
            endpoint=endpoint,
            tqdm_class=None if progress else _SilentTqdm,
        )
    except (LocalEntryNotFoundError, HfHubHTTPError, httpx2.TransportError, OSError) as error:
        raise _unavailable(request, error, offline=offline) from error
    path = Path(folder)
    if not request.fmt.complete(path):
        raise ModelUnavailableError(_incomplete_message(request, path, offline=offline))
    logger.info("Model %s is at %s", request.repo_id, path)
    return path


def _unavailable(request: _HubRequest, error: Exception, *, offline: bool) -> ModelUnavailableError:
    """Turn a huggingface_hub failure into one sentence saying what happened and what to do."""
    if isinstance(error, IncompleteSnapshotError):
        return ModelUnavailableError(
            _incomplete_message(request, Path(error.snapshot_path), offline=offline)
        )
    if isinstance(error, LocalEntryNotFoundError):
        cause = error.__cause__
        if offline:
            return ModelUnavailableError(_offline_message(request, "offline mode is on"))
        if isinstance(cause, OfflineModeIsEnabled):
            return ModelUnavailableError(_offline_message(request, "HF_HUB_OFFLINE is set"))
        if isinstance(cause, HfHubHTTPError):
            return ModelUnavailableError(_http_message(request, cause))
        return ModelUnavailableError(_unreachable_message(request, cause or error))
    if isinstance(error, GatedRepoError):
        return ModelUnavailableError(
            f"Model {request.subject} is not available: the Hugging Face repository is gated, so "
            f"request access at https://huggingface.co/{request.repo_id} and log in with "
            f"'hf auth login', or {request.fmt.local_alternative}."
        )
    if isinstance(error, RepositoryNotFoundError):
        return ModelUnavailableError(
            f"Model {request.subject} is not available: the Hugging Face Hub has no repository "
            f"'{request.repo_id}' or it is private, so check the repo id (log in with "
            f"'hf auth login' if it is private) or {request.fmt.local_alternative}."
        )
    if isinstance(error, HfHubHTTPError):
        return ModelUnavailableError(_http_message(request, error))
    if isinstance(error, httpx2.TransportError):
        return ModelUnavailableError(_unreachable_message(request, error))
    return ModelUnavailableError(
        f"Model {request.subject} could not be downloaded into {request.cache_root} "
        f"({type(error).__name__}: {_first_line(error)}), so check that the directory is "
        "writable with free space and that the Hub is reachable, or "
        f"{request.fmt.local_alternative}."
    )


def _offline_message(request: _HubRequest, switch: str) -> str:
    return (
        f"Model {request.subject} is not in the local cache at {request.cache_dir} and {switch}, "
        "so download it once with network access (turn offline mode off for one run) or "
        f"{request.fmt.local_alternative}."
    )


def _unreachable_message(request: _HubRequest, cause: BaseException) -> str:
    return (
        f"Model {request.subject} is not in the local cache at {request.cache_dir} and the "
        f"Hugging Face Hub at {request.endpoint} could not be reached "
        f"({type(cause).__name__}: {_first_line(cause)}), so check the network, or turn on "
        f"offline mode with a cached copy, or {request.fmt.local_alternative}."
    )


def _http_message(request: _HubRequest, error: HfHubHTTPError) -> str:
    return (
        f"Model {request.subject} could not be downloaded: the Hugging Face Hub at "
        f"{request.endpoint} answered HTTP {error.response.status_code}, so try again later or "
        f"{request.fmt.local_alternative}."
    )


def _incomplete_message(request: _HubRequest, snapshot: Path, *, offline: bool) -> str:
    why = "offline mode is on" if offline else "the download did not complete"
    return (
        f"Model {request.subject} has an incomplete copy in the local cache at {snapshot} and "
        f"{why}, so download it again with network access or {request.fmt.local_alternative}."
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no details"


# --------------------------------------------------------------------------------------------
# Listing


@dataclass(frozen=True, slots=True)
class ModelListing:
    """One row of ``whisperd models``.

    Attributes:
        name: Canonical model name.
        aliases: Other names that select the model.
        repo_id: Hugging Face repo id.
        english_only: True for the ``.en`` models.
        supports_translation: Whether the model can translate to English.
        path: The cached snapshot directory, or None if the model is not in the cache.
    """

    name: str
    aliases: tuple[str, ...]
    repo_id: str
    english_only: bool
    supports_translation: bool
    path: Path | None

    @property
    def present(self) -> bool:
        """Whether the model is in the local cache."""
        return self.path is not None


def list_models(*, models_dir: Path | None, fmt: ModelFormat = CTRANSLATE2) -> list[ModelListing]:
    """List the known models and whether each is in the local cache. No network access.

    Args:
        models_dir: Hub cache directory to inspect instead of the default Hugging Face cache.
        fmt: The format whose repositories are listed and looked for.

    Returns:
        One listing per known model, in table order.
    """
    cache_root = models_dir if models_dir is not None else Path(hf_constants.HF_HUB_CACHE)
    return [
        ModelListing(
            name=model.name,
            aliases=model.aliases,
            repo_id=model.repo_for(fmt),
            english_only=model.english_only,
            supports_translation=model.supports_translation,
            path=_cached_snapshot(model.repo_for(fmt), cache_root, fmt),
        )
        for model in KNOWN_MODELS.values()
    ]


def _cached_snapshot(repo_id: str, cache_root: Path, fmt: ModelFormat) -> Path | None:
    """The complete cached snapshot of ``repo_id``, without touching the network."""
    if not cache_root.is_dir():
        return None
    found = huggingface_hub.try_to_load_from_cache(repo_id, "config.json", cache_dir=cache_root)
    if not isinstance(found, str):
        return None
    snapshot = Path(found).parent
    return snapshot if fmt.complete(snapshot) else None

"""Model names, downloads and the set of loaded engines.

Three things live here:

* the read-only table of known models (every faster-whisper name plus whisperd's aliases);
* :func:`resolve_model`, which turns what a user typed (a name, an alias, a Hugging Face repo id
  or a local CTranslate2 directory) into a local directory, downloading it through
  ``huggingface_hub`` into the standard Hub cache when needed, and :func:`list_models`, which
  reports what the cache holds without touching the network;
* :class:`ModelManager`, which loads each model once per device and compute type and hands the
  same engine to every caller. It is created by the app, never as a module global.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Generic, TypeAlias, TypeVar

import httpx2
import huggingface_hub
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    IncompleteSnapshotError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
)
from huggingface_hub.utils.tqdm import tqdm as hf_tqdm

from whisperd.engine.base import Engine, ModelInfo
from whisperd.errors import ModelUnavailableError, UnknownModelError

logger = logging.getLogger(__name__)

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


# --------------------------------------------------------------------------------------------
# Known models


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
    if name.startswith("distil-"):
        return "distil-whisper/" + name
    return "openai/whisper-" + {"large-v1": "large"}.get(name, name)


def _known(name: str, repo_id: str, *aliases: str) -> KnownModel:
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


# --------------------------------------------------------------------------------------------
# Resolution


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
    if not name.strip():
        raise UnknownModelError(_unknown_message(name, fmt))
    local = _local_model(name, fmt)
    if local is not None:
        return local
    known = known_model(name)
    repo_id = known.repo_for(fmt) if known is not None else _as_repo_id(name)
    if repo_id is None:
        raise UnknownModelError(_unknown_message(name, fmt))
    if known is None:
        known = _BY_REPO_ID.get(repo_id.lower())
    request = _HubRequest(
        label=known.name if known is not None else repo_id,
        repo_id=repo_id,
        cache_root=models_dir if models_dir is not None else Path(hf_constants.HF_HUB_CACHE),
        endpoint=endpoint or hf_constants.ENDPOINT,
        fmt=fmt,
    )
    path = _snapshot(request, offline=offline, endpoint=endpoint, progress=progress)
    return ResolvedModel(name=request.label, path=path, repo_id=repo_id, known=known)


def _local_model(name: str, fmt: ModelFormat) -> ResolvedModel | None:
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


_REPO_PART = r"[A-Za-z0-9_](?:[\w.-]{0,94}[A-Za-z0-9_])?"
_REPO_ID = re.compile(rf"(?!.*(?:--|\.\.))(?!.*\.git$){_REPO_PART}/{_REPO_PART}", re.ASCII)
"""``org/name`` as the Hub accepts it (huggingface_hub's ``validate_repo_id`` rules)."""


def _as_repo_id(name: str) -> str | None:
    return name if _REPO_ID.fullmatch(name) else None


def _unknown_message(name: str, fmt: ModelFormat) -> str:
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
    if not cache_root.is_dir():
        return None
    found = huggingface_hub.try_to_load_from_cache(repo_id, "config.json", cache_dir=cache_root)
    if not isinstance(found, str):
        return None
    snapshot = Path(found).parent
    return snapshot if fmt.complete(snapshot) else None


# --------------------------------------------------------------------------------------------
# Loaded engines

Loader: TypeAlias = Callable[[ResolvedModel, str, str], Engine]
"""Loads a resolved model on a device with a compute type. Blocking."""

_EngineKey: TypeAlias = tuple[Path, str, str]
_K = TypeVar("_K", bound=Hashable)


class _KeyedLocks(Generic[_K]):
    """One lock per key, created on demand and dropped when nobody holds or awaits it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[_K, tuple[threading.Lock, int]] = {}

    @contextlib.contextmanager
    def hold(self, key: _K) -> Iterator[None]:
        """Hold the lock of ``key`` for the duration of the ``with`` block."""
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


@dataclass(frozen=True, slots=True)
class _Loaded:
    resolved: ResolvedModel
    engine: Engine


class ModelManager:
    """Loads models on first use and hands the same engine to every later caller.

    Engines are keyed by (model directory, device, compute type). Loading the same key from many
    threads at once loads it once; different keys load concurrently. :meth:`get` blocks while it
    downloads and loads, so callers run it in a worker thread.
    """

    def __init__(
        self,
        loader: Loader,
        *,
        models_dir: Path | None = None,
        offline: bool = False,
        endpoint: str | None = None,
        progress: bool = False,
        fmt: ModelFormat = CTRANSLATE2,
    ) -> None:
        """Create an empty manager.

        Args:
            loader: Builds an engine from a resolved model, a device and a compute type.
            models_dir: Hub cache directory instead of the default Hugging Face cache.
            offline: Never use the network; models must already be cached or local.
            endpoint: Hub URL instead of the default.
            progress: Show huggingface_hub's download progress bars (off for servers).
            fmt: The model format the loader's engine reads.
        """
        self._loader = loader
        self.fmt = fmt
        self._models_dir = models_dir
        self._offline = offline
        self._endpoint = endpoint
        self._progress = progress
        self._lock = threading.Lock()
        self._resolved: dict[str, ResolvedModel] = {}
        self._engines: dict[_EngineKey, _Loaded] = {}
        self._resolve_locks: _KeyedLocks[str] = _KeyedLocks()
        self._load_locks: _KeyedLocks[_EngineKey] = _KeyedLocks()
        self._closed = False

    def get(self, name: str, *, device: str, compute_type: str) -> Engine:
        """Return the engine for a model, resolving, downloading and loading it on first use.

        Args:
            name: Anything :func:`resolve_model` accepts.
            device: Device to load on (``cpu``, ``cuda``, ``auto``).
            compute_type: CTranslate2 compute type (``int8``, ``float16``, ``auto``, ...).

        Returns:
            The loaded engine, shared with every other caller of the same key.

        Raises:
            UnknownModelError: if the name is no known model, repo id or model directory.
            ModelUnavailableError: if the model cannot be had, or the manager is closed.
        """
        resolved = self._resolve(name)
        key = (resolved.path, device, compute_type)
        loaded = self._lookup(key)
        if loaded is not None:
            return loaded
        with self._load_locks.hold(key):
            loaded = self._lookup(key)
            if loaded is not None:
                return loaded
            logger.info("Loading model %s on %s (%s)", resolved.name, device, compute_type)
            engine = self._loader(resolved, device, compute_type)
            with self._lock:
                if not self._closed:
                    self._engines[key] = _Loaded(resolved, engine)
                    return engine
        engine.close()
        raise _closed_error()

    def loaded(self) -> list[ModelInfo]:
        """Describe every loaded engine, in load order."""
        with self._lock:
            entries = list(self._engines.values())
        return [entry.engine.info for entry in entries]

    def unload(self, name: str) -> int:
        """Close every loaded engine of a model, on all devices and compute types.

        Args:
            name: A name, alias, repo id or directory the model was or could be asked for.

        Returns:
            How many engines were closed (0 if the model was not loaded).
        """
        with self._lock:
            keys = [key for key, entry in self._engines.items() if self._matches(entry, name)]
            entries = [self._engines.pop(key) for key in keys]
        _close_all(entries)
        logger.info("Unloaded %d engine(s) for model %s", len(entries), name)
        return len(entries)

    def close(self) -> None:
        """Close every engine; later :meth:`get` calls fail. Safe to call twice."""
        with self._lock:
            self._closed = True
            entries = list(self._engines.values())
            self._engines.clear()
        _close_all(entries)

    def _resolve(self, name: str) -> ResolvedModel:
        resolved = self._remembered(name)
        if resolved is not None:
            return resolved
        with self._resolve_locks.hold(name):
            resolved = self._remembered(name)
            if resolved is None:
                resolved = resolve_model(
                    name,
                    models_dir=self._models_dir,
                    offline=self._offline,
                    endpoint=self._endpoint,
                    progress=self._progress,
                    fmt=self.fmt,
                )
                with self._lock:
                    self._resolved[name] = resolved
        return resolved

    def _remembered(self, name: str) -> ResolvedModel | None:
        with self._lock:
            if self._closed:
                raise _closed_error()
            return self._resolved.get(name)

    def _lookup(self, key: _EngineKey) -> Engine | None:
        with self._lock:
            if self._closed:
                raise _closed_error()
            entry = self._engines.get(key)
        return entry.engine if entry is not None else None

    def _matches(self, entry: _Loaded, name: str) -> bool:
        """Whether ``name`` designates the model of ``entry`` (caller holds the lock)."""
        remembered = self._resolved.get(name)
        if remembered is not None:
            return remembered.path == entry.resolved.path
        known = known_model(name)
        if known is not None:
            return known == entry.resolved.known
        if name in (entry.resolved.name, entry.resolved.repo_id):
            return True
        return Path(name).expanduser().resolve() == entry.resolved.path


def _close_all(entries: list[_Loaded]) -> None:
    """Close every engine, even when some fail; a failure is raised once all were tried."""
    with contextlib.ExitStack() as stack:
        for entry in entries:
            stack.callback(entry.engine.close)


def _closed_error() -> ModelUnavailableError:
    return ModelUnavailableError("The model manager is closed because the server is shutting down.")

"""The set of loaded engines: each model loaded once per device and compute type, and shared.

:class:`ModelManager` is created by the app, never as a module global.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeAlias, TypeVar

from whisperd.engine.base import Engine, ModelInfo
from whisperd.engine.catalogue import CTRANSLATE2, ModelFormat, known_model
from whisperd.engine.hub import ResolvedModel, resolve_model
from whisperd.errors import ModelUnavailableError

__all__ = ["Hardware", "Loader", "ModelManager"]

logger = logging.getLogger(__name__)

Loader: TypeAlias = Callable[[ResolvedModel, str, str], Engine]
"""Loads a resolved model on a device with a compute type. Blocking."""

Hardware: TypeAlias = Callable[[str, str], tuple[str, str]]
"""Maps a device and compute type (either may be ``auto``) to the pair the loader really runs
(:func:`~whisperd.engine.selection.concrete_hardware`). Blocking."""

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
    """A loaded engine and the model it was loaded from."""

    resolved: ResolvedModel
    engine: Engine


class ModelManager:
    """Loads models on first use and hands the same engine to every later caller.

    Engines are keyed by (model directory, device, compute type), where the device and compute
    type are the concrete ones ``hardware`` says the loader runs: ``auto`` never enters a key,
    so a request for ``auto`` and one for what ``auto`` picks share one engine. Loading the same
    key from many threads at once loads it once; different keys load concurrently. :meth:`get`
    blocks while it downloads and loads, so callers run it in a worker thread.
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
        hardware: Hardware | None = None,
    ) -> None:
        """Create an empty manager.

        Args:
            loader: Builds an engine from a resolved model, a device and a compute type.
            models_dir: Hub cache directory instead of the default Hugging Face cache.
            offline: Never use the network; models must already be cached or local.
            endpoint: Hub URL instead of the default.
            progress: Show huggingface_hub's download progress bars (off for servers).
            fmt: The model format the loader's engine reads.
            hardware: Resolves ``auto`` device and compute type before they key an engine
                (default: keys use the values as given).
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
        self._hardware = hardware
        self._concrete: dict[tuple[str, str], tuple[str, str]] = {}
        """Each device and compute type asked for, and the pair ``hardware`` resolved it to."""
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
            The loaded engine, shared with every other caller of the same model on the same
            concrete device and compute type.

        Raises:
            UnknownModelError: if the name is no known model, repo id or model directory.
            ModelUnavailableError: if the model cannot be had, or the manager is closed.
        """
        resolved = self._resolve(name)
        device, compute_type = self._concrete_hardware(device, compute_type)
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

    def peek(self, name: str, *, device: str, compute_type: str) -> Engine | None:
        """The engine :meth:`get` would return, if it is loaded; never resolves or loads.

        Quick (a look-up under a lock): safe to call on the event loop. A device and compute
        type never asked of :meth:`get` are not resolved here (that may block), so they find
        nothing.
        """
        with self._lock:
            resolved = self._resolved.get(name)
            concrete = self._concrete.get((device, compute_type))
            if resolved is None or concrete is None:
                return None
            entry = self._engines.get((resolved.path, *concrete))
        return entry.engine if entry is not None else None

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

    def _concrete_hardware(self, device: str, compute_type: str) -> tuple[str, str]:
        """The concrete pair for ``device`` and ``compute_type``, remembered for :meth:`peek`."""
        if self._hardware is None:
            concrete = (device, compute_type)
        else:
            with self._lock:
                known = self._concrete.get((device, compute_type))
            concrete = known or self._hardware(device, compute_type)
        with self._lock:
            self._concrete[(device, compute_type)] = concrete
        return concrete

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
    """The error every call gets once the manager is closed."""
    return ModelUnavailableError("The model manager is closed because the server is shutting down.")

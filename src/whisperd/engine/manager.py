"""The set of loaded engines: each model loaded once per device and compute type, shared, and
unloaded when asked, when idle too long, or to make room.

:class:`ModelManager` is created by the app, never as a module global. Its lifecycle rules:

- A caller that uses an engine holds a :class:`~whisperd.engine.lifecycle.ModelLease`
  (:meth:`ModelManager.acquire`); an engine is never closed while held.
- :meth:`ModelManager.unload` takes an engine out of service at once: the next request for the
  model loads a fresh copy, and the old one closes when its last holder leaves.
- With ``ttl``, an engine nobody has held for ``ttl`` seconds is closed; with ``max_loaded``,
  loading one more engine first closes the least recently used idle one. Pinned models (the
  server's default) are exempt from both.
- A request for a model whose engine is being closed waits for the close, then loads it again.

Closing runs on the thread that asked for it (an unload, a load making room) or on the
manager's own upkeep thread (idle engines, engines whose last holder left), never on the
thread that releases a lease, so releasing is safe on the event loop.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path
from typing import Generic, TypeAlias, TypeVar

from whisperd.engine.base import Engine, ModelInfo
from whisperd.engine.catalogue import CTRANSLATE2, ModelFormat, known_model
from whisperd.engine.hub import ResolvedModel, resolve_model
from whisperd.engine.lifecycle import (
    EngineKey,
    LoadedEngine,
    LoadedModel,
    ModelLease,
    model_files_bytes,
)
from whisperd.errors import ModelUnavailableError

__all__ = ["Hardware", "Loader", "ModelManager"]

logger = logging.getLogger(__name__)

Loader: TypeAlias = Callable[[ResolvedModel, str, str], Engine]
"""Loads a resolved model on a device with a compute type. Blocking."""

Hardware: TypeAlias = Callable[[str, str], tuple[str, str]]
"""Maps a device and compute type (either may be ``auto``) to the pair the loader really runs
(:func:`~whisperd.engine.selection.concrete_hardware`). Blocking."""

_EngineKey: TypeAlias = EngineKey
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


class ModelManager:
    """Loads models on first use, hands the same engine to every later caller, and unloads.

    Engines are keyed by (model directory, device, compute type), where the device and compute
    type are the concrete ones ``hardware`` says the loader runs: ``auto`` never enters a key,
    so a request for ``auto`` and one for what ``auto`` picks share one engine. Loading the same
    key from many threads at once loads it once; different keys load concurrently.
    :meth:`acquire` and :meth:`get` block while they download and load, so callers run them in
    a worker thread.
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
        ttl: float | None = None,
        max_loaded: int = 0,
        pinned: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
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
            ttl: Seconds an engine may stay unheld before it is closed; None: never.
            max_loaded: Most engines loaded at once (least recently used idle ones close
                first); 0: no limit.
            pinned: Models (any name :meth:`unload` accepts) never closed for idleness or to
                make room.
            clock: Monotonic seconds, for idle times.
        """
        self._loader = loader
        self.fmt = fmt
        self._models_dir = models_dir
        self._offline = offline
        self._endpoint = endpoint
        self._progress = progress
        self._ttl = ttl
        self._max_loaded = max_loaded
        self._pinned = tuple(pinned)
        self._clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        """Notified when an engine is released, closed, or the manager closes."""
        self._resolved: dict[str, ResolvedModel] = {}
        self._engines: dict[_EngineKey, LoadedEngine] = {}
        self._retiring: list[LoadedEngine] = []
        """Engines unloaded while held: closed once their last holder leaves."""
        self._closing: dict[_EngineKey, int] = {}
        """Keys whose engines are being closed (and how many): a load of one waits."""
        self._hardware = hardware
        self._concrete: dict[tuple[str, str], tuple[str, str]] = {}
        """Each device and compute type asked for, and the pair ``hardware`` resolved it to."""
        self._resolve_locks: _KeyedLocks[str] = _KeyedLocks()
        self._load_locks: _KeyedLocks[_EngineKey] = _KeyedLocks()
        self._upkeep_thread: threading.Thread | None = None
        self._closed = False

    def acquire(self, name: str, *, device: str, compute_type: str) -> ModelLease:
        """Hold the engine of a model, resolving, downloading and loading it on first use.

        Args:
            name: Anything :func:`resolve_model` accepts.
            device: Device to load on (``cpu``, ``cuda``, ``auto``).
            compute_type: CTranslate2 compute type (``int8``, ``float16``, ``auto``, ...).

        Returns:
            A lease on the engine shared with every other caller of the same model on the same
            concrete device and compute type; the engine stays loaded until it is released.

        Raises:
            UnknownModelError: if the name is no known model, repo id or model directory.
            ModelUnavailableError: if the model cannot be had, or the manager is closed.
        """
        resolved = self._resolve(name)
        device, compute_type = self._concrete_hardware(device, compute_type)
        key = (resolved.path, device, compute_type)
        lease = self._hold(key)
        if lease is not None:
            return lease
        with self._load_locks.hold(key):
            with self._changed:
                self._changed.wait_for(lambda: key not in self._closing or self._closed)
            lease = self._hold(key)
            if lease is not None:
                return lease
            with self._lock:
                room = self._take_room(1)
                self._mark_closing(room)
                if len(self._engines) >= self._max_loaded > 0:
                    logger.warning(
                        "Loading a model over the limit of %d loaded: every other one is in use",
                        self._max_loaded,
                    )
            self._close_now(room, "least recently used, to make room")
            logger.info("Loading model %s on %s (%s)", resolved.name, device, compute_type)
            engine = self._loader(resolved, device, compute_type)
            memory = _files_bytes(resolved.path)
            with self._lock:
                if not self._closed:
                    entry = LoadedEngine(key, resolved, engine, memory, idle_since=self._clock())
                    self._engines[key] = entry
                    entry.users = 1
                    return ModelLease(entry, self._release)
        engine.close()
        raise _closed_error()

    def get(self, name: str, *, device: str, compute_type: str) -> Engine:
        """The engine of a model, loaded on first use as :meth:`acquire` does, but not held.

        For pinned models and callers that only look at the engine: an unheld engine may be
        unloaded at any time (idle, unloaded, evicted), so work on it holds a lease instead.

        Raises:
            UnknownModelError, ModelUnavailableError: as :meth:`acquire`.
        """
        lease = self.acquire(name, device=device, compute_type=compute_type)
        lease.release()
        return lease.engine

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
        """Describe every engine in service (not those unloading), in load order."""
        with self._lock:
            entries = list(self._engines.values())
        return [entry.engine.info for entry in entries]

    def models(self) -> list[LoadedModel]:
        """Every engine in memory with its use, memory and expiry, in load order (engines
        unloading while held included). Quick: safe to call on the event loop."""
        with self._lock:
            entries = sorted([*self._engines.values(), *self._retiring], key=_loaded_order)
            return [entry.record(pinned=self._is_pinned(entry), ttl=self._ttl) for entry in entries]

    def unload(self, name: str) -> int:
        """Take every engine of a model out of service, on all devices and compute types.

        Idle engines are closed before this returns; a held one is closed by the manager's
        upkeep thread once its last holder releases it. Either way, the next request for the
        model loads it again. Pinned models are unloaded too: this is an explicit request.

        Args:
            name: A name, alias, repo id or directory the model was or could be asked for.

        Returns:
            How many engines were taken out of service (0 if the model was not loaded).
        """
        with self._lock:
            keys = [key for key, entry in self._engines.items() if self._matches(entry, name)]
            entries = [self._engines.pop(key) for key in keys]
            idle = [entry for entry in entries if entry.users == 0]
            for entry in entries:
                if entry.users > 0:
                    entry.retiring = True
                    self._retiring.append(entry)
            self._mark_closing(idle)
            if len(idle) < len(entries):
                self._wake()
        self._close_now(idle, "asked")
        logger.info("Unloaded %d engine(s) for model %s", len(entries), name)
        return len(entries)

    def close(self) -> None:
        """Close every engine; later calls fail. Safe to call twice."""
        with self._lock:
            self._closed = True
            entries = [*self._engines.values(), *self._retiring]
            self._engines.clear()
            self._retiring.clear()
            self._changed.notify_all()
        _close_all(entries)

    def _hold(self, key: _EngineKey) -> ModelLease | None:
        """A lease on the loaded engine of ``key``, if there is one."""
        with self._lock:
            if self._closed:
                raise _closed_error()
            entry = self._engines.get(key)
            if entry is None:
                return None
            entry.users += 1
        return ModelLease(entry, self._release)

    def _release(self, entry: LoadedEngine) -> None:
        """A lease's end: quick; closing, if due, is left to the upkeep thread."""
        with self._lock:
            entry.users -= 1
            if entry.users == 0:
                entry.idle_since = self._clock()
                entry.last_used_at = time.time()
                self._wake()

    def _wake(self) -> None:
        """Have the upkeep thread look again (caller holds the lock); start it the first time
        it has something to do (a TTL, a limit, or an engine waiting for its last holder)."""
        if self._closed:
            return
        if self._upkeep_thread is None:
            if self._ttl is None and self._max_loaded <= 0 and not self._retiring:
                return
            self._upkeep_thread = threading.Thread(
                target=self._upkeep, name="whisperd-model-upkeep", daemon=True
            )
            self._upkeep_thread.start()
        self._changed.notify_all()

    def _upkeep(self) -> None:
        """Close engines as they become due, until the manager closes."""
        while True:
            with self._changed:
                if self._closed:
                    return
                now = self._clock()
                due = self._take_due(now)
                if not due:
                    self._changed.wait(self._next_expiry(now))
                    continue
            for reason, entries in due.items():
                self._close_now(entries, reason)

    def _take_due(self, now: float) -> dict[str, list[LoadedEngine]]:
        """Take out every engine due to close, by reason, marked closing (caller holds the
        lock): unloaded ones nobody holds now, idle ones past the TTL, then the least recently
        used idle ones while more than ``max_loaded`` are loaded."""
        due: dict[str, list[LoadedEngine]] = {}
        left = [entry for entry in self._retiring if entry.users == 0]
        if left:
            self._retiring = [entry for entry in self._retiring if entry.users > 0]
            due["asked, once its last request ended"] = left
        if self._ttl is not None:
            expired = [entry for entry in self._evictable() if now - entry.idle_since >= self._ttl]
            for entry in expired:
                del self._engines[entry.key]
            if expired:
                due[f"idle for {self._ttl:g} s"] = expired
        excess = self._take_room(0)
        if excess:
            due["least recently used, over the limit"] = excess
        for entries in due.values():
            self._mark_closing(entries)
        return due

    def _next_expiry(self, now: float) -> float | None:
        """Seconds until the next idle engine passes the TTL (caller holds the lock)."""
        if self._ttl is None:
            return None
        times = [entry.idle_since + self._ttl - now for entry in self._evictable()]
        return max(0.0, min(times)) if times else None

    def _evictable(self) -> list[LoadedEngine]:
        """Engines nobody holds that may close for idleness or room, least recently used
        first (caller holds the lock)."""
        idle = [
            entry
            for entry in self._engines.values()
            if entry.users == 0 and not self._is_pinned(entry)
        ]
        return sorted(idle, key=lambda entry: entry.idle_since)

    def _take_room(self, extra: int) -> list[LoadedEngine]:
        """Take out the least recently used idle engines until ``extra`` more fit under
        ``max_loaded``, or none is left to take (caller holds the lock and marks them)."""
        if self._max_loaded <= 0:
            return []
        taken = []
        for entry in self._evictable():
            if len(self._engines) + extra <= self._max_loaded:
                break
            del self._engines[entry.key]
            taken.append(entry)
        return taken

    def _mark_closing(self, entries: list[LoadedEngine]) -> None:
        """Count ``entries`` as closing, so loads of their keys wait (caller holds the lock)."""
        for entry in entries:
            self._closing[entry.key] = self._closing.get(entry.key, 0) + 1

    def _close_now(self, entries: list[LoadedEngine], reason: str) -> None:
        """Close engines marked closing, then let loads of their keys go on. A failure to close
        is logged: the engine is out of service either way."""
        if not entries:
            return
        try:
            for entry in entries:
                info = entry.engine.info
                logger.info(
                    "Unloading model %s on %s (%s): %s",
                    info.name,
                    info.device,
                    info.compute_type,
                    reason,
                )
            _close_all(entries)
        except Exception:
            logger.exception("A model failed to close")
        finally:
            with self._lock:
                for entry in entries:
                    remaining = self._closing.get(entry.key, 0) - 1
                    if remaining > 0:
                        self._closing[entry.key] = remaining
                    else:
                        self._closing.pop(entry.key, None)
                self._changed.notify_all()

    def _is_pinned(self, entry: LoadedEngine) -> bool:
        """Whether ``entry`` is of a pinned model (caller holds the lock)."""
        return any(self._matches(entry, name) for name in self._pinned)

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

    def _matches(self, entry: LoadedEngine, name: str) -> bool:
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


def _loaded_order(entry: LoadedEngine) -> float:
    return entry.loaded_at


def _files_bytes(path: Path) -> int:
    """:func:`model_files_bytes`, 0 if the directory cannot be read."""
    try:
        return model_files_bytes(path)
    except OSError:
        return 0


def _close_all(entries: list[LoadedEngine]) -> None:
    """Close every engine, even when some fail; a failure is raised once all were tried."""
    with contextlib.ExitStack() as stack:
        for entry in entries:
            stack.callback(entry.engine.close)


def _closed_error() -> ModelUnavailableError:
    """The error every call gets once the manager is closed."""
    return ModelUnavailableError("The model manager is closed because the server is shutting down.")

"""The life of a loaded model: who holds it, when it was last used, what it weighs, when it goes.

:class:`ModelManager <whisperd.engine.manager.ModelManager>` keeps one :class:`LoadedEngine`
per engine it loaded. A request or stream holds a :class:`ModelLease` while it uses the
engine: an engine with holders is never closed (an unload asked meanwhile waits for the last
one to leave), and an engine's idle time, for ``model_ttl`` and the least-recently-used order
of ``max_loaded_models``, counts from the moment its last holder left.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Callable

    from whisperd.engine.base import Engine, ModelInfo
    from whisperd.engine.hub import ResolvedModel

__all__ = [
    "EngineKey",
    "LoadedEngine",
    "LoadedModel",
    "MemorySource",
    "ModelLease",
    "model_files_bytes",
]

EngineKey: TypeAlias = tuple[Path, str, str]
"""What an engine is loaded for: its model directory, concrete device and compute type."""

MemorySource: TypeAlias = Literal["model_files"]
"""How a model's memory is estimated: ``model_files``, the bytes of its files on disk (the
weights as stored; an engine that converts them at load, e.g. float16 weights run as int8,
holds less, and activations and caches are not counted)."""


def model_files_bytes(path: Path) -> int:
    """Bytes of every file under a model directory (Hub cache links followed). Blocking.

    Returns:
        The total size; 0 for a path that holds no readable files.
    """
    if path.is_file():
        return path.stat().st_size
    total = 0
    for item in path.rglob("*"):
        try:
            if item.is_file():
                total += item.stat().st_size
        except OSError:  # a dangling link of a half-deleted cache: it weighs nothing
            continue
    return total


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """One loaded engine as the model listings show it.

    Attributes:
        info: Its model's name, path, device and compute type.
        memory_bytes: Its estimated memory, in bytes (see ``memory_source``).
        memory_source: How ``memory_bytes`` was estimated (:data:`MemorySource`).
        loaded_at: When it was loaded, in Unix seconds.
        last_used_at: When a request or stream last let it go (or it was loaded), Unix seconds.
        in_use: Requests and streams holding it now.
        pinned: Never unloaded for idleness or to make room (the server's default model).
        unloading: An unload was asked; it closes once ``in_use`` falls to 0, and a new request
            for the model loads a fresh copy.
        expires_at: When it will be unloaded for idleness if nobody uses it (Unix seconds);
            None if it never will.
    """

    info: ModelInfo
    memory_bytes: int
    memory_source: MemorySource
    loaded_at: float
    last_used_at: float
    in_use: int
    pinned: bool
    unloading: bool
    expires_at: float | None


@dataclass(eq=False, slots=True)
class LoadedEngine:
    """A loaded engine and its bookkeeping; mutable, only under its manager's lock.

    Times are ``clock()`` seconds (monotonic) apart from ``loaded_at`` and ``last_used_at``
    shown to users, which are wall-clock Unix seconds.
    """

    key: EngineKey
    resolved: ResolvedModel
    engine: Engine
    memory_bytes: int
    loaded_at: float = field(default_factory=time.time)
    last_used_at: float = field(default_factory=time.time)
    idle_since: float = 0.0
    users: int = 0
    retiring: bool = False

    def record(self, *, pinned: bool, ttl: float | None) -> LoadedModel:
        """This engine as listings show it, with the idle time ``ttl`` (None: never)."""
        expires = None
        if ttl is not None and not pinned and not self.retiring and self.users == 0:
            expires = self.last_used_at + ttl
        return LoadedModel(
            info=self.engine.info,
            memory_bytes=self.memory_bytes,
            memory_source="model_files",
            loaded_at=self.loaded_at,
            last_used_at=self.last_used_at,
            in_use=self.users,
            pinned=pinned,
            unloading=self.retiring,
            expires_at=expires,
        )


class ModelLease:
    """One holder's use of a loaded engine: the engine stays loaded until :meth:`release`.

    Quick and safe to release from the event loop: an engine that must close then is closed
    by its manager's own thread.
    """

    def __init__(self, entry: LoadedEngine, release: Callable[[LoadedEngine], None]) -> None:
        """Hold ``entry`` (its users were counted by the caller); ``release`` gives it back."""
        self._entry = entry
        self._release = release
        self._lock = threading.Lock()
        self._released = False

    @property
    def engine(self) -> Engine:
        """The held engine."""
        return self._entry.engine

    def release(self) -> None:
        """Let the engine go (idempotent): its idle time starts once nobody holds it."""
        with self._lock:
            if self._released:
                return
            self._released = True
        self._release(self._entry)

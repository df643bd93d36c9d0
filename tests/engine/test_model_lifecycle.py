"""The model lifecycle of the ModelManager: leases, idle unloading, the limit on loaded engines
(least recently used first), pinned models, unloads that wait for holders, and loads that wait
for a close in progress.

Engines are fakes over placeholder model directories; nothing touches the network.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from waiting import joined, wait_until
from whisperd.engine.hub import ResolvedModel
from whisperd.engine.lifecycle import model_files_bytes
from whisperd.engine.manager import ModelManager
from whisperd.testing import FakeEngine, fake_loader
from whisperd.testing.fake import fake_info


class Loads:
    """A loader of fake engines that keeps every engine it built, in order."""

    def __init__(self) -> None:
        self.engines: list[FakeEngine] = []
        self._load = fake_loader()

    def __call__(self, resolved: ResolvedModel, device: str, compute_type: str) -> FakeEngine:
        engine = self._load(resolved, device, compute_type)
        assert isinstance(engine, FakeEngine)
        self.engines.append(engine)
        return engine

    def of(self, path: Path) -> list[FakeEngine]:
        """The engines built for the model in ``path``, in order."""
        return [engine for engine in self.engines if engine.info.path == str(path)]


@pytest.fixture
def dirs(tmp_path: Path, make_model_dir: Callable[[Path], Path]) -> list[Path]:
    """Three model directories: a, b and c."""
    return [make_model_dir(tmp_path / name) for name in ("a", "b", "c")]


def _use(manager: ModelManager, path: Path) -> FakeEngine:
    """Load (if need be) and use the model in ``path`` once; return its engine."""
    lease = manager.acquire(str(path), device="cpu", compute_type="int8")
    lease.release()
    assert isinstance(lease.engine, FakeEngine)
    return lease.engine


def _loaded(manager: ModelManager) -> list[str]:
    return [Path(info.path).name for info in manager.loaded()]


def test_an_idle_model_unloads_after_its_ttl_and_reloads_on_demand(dirs: list[Path]) -> None:
    loads = Loads()
    manager = ModelManager(loads, ttl=0.05)
    try:
        first = _use(manager, dirs[0])
        wait_until(lambda: first.closed, "the idle model was not unloaded")
        assert manager.loaded() == []
        again = _use(manager, dirs[0])
        assert again is not first
        assert not again.closed
        assert len(loads.of(dirs[0])) == 2
    finally:
        manager.close()


def test_a_held_model_and_a_pinned_model_never_expire(dirs: list[Path]) -> None:
    loads = Loads()
    manager = ModelManager(loads, ttl=0.0, pinned=(str(dirs[2]),))
    try:
        held = manager.acquire(str(dirs[0]), device="cpu", compute_type="int8")
        pinned = _use(manager, dirs[2])
        idle = _use(manager, dirs[1])
        # The upkeep closes every engine due in one pass: the idle one's close shows the
        # pass that passed over the others.
        wait_until(lambda: idle.closed, "the idle model was not unloaded")
        assert not pinned.closed
        assert held.engine is loads.of(dirs[0])[0]
        assert not loads.of(dirs[0])[0].closed
        assert sorted(_loaded(manager)) == ["a", "c"]
        records = {Path(r.info.path).name: r for r in manager.models()}
        assert records["a"].in_use == 1
        assert records["a"].expires_at is None
        assert records["c"].pinned
        assert records["c"].expires_at is None
        held.release()
        wait_until(lambda: loads.of(dirs[0])[0].closed, "the released model was not unloaded")
        assert _loaded(manager) == ["c"]
    finally:
        manager.close()


def test_loading_over_the_limit_unloads_the_least_recently_used(dirs: list[Path]) -> None:
    loads = Loads()
    manager = ModelManager(loads, max_loaded=2)
    try:
        a = _use(manager, dirs[0])
        b = _use(manager, dirs[1])
        assert _use(manager, dirs[0]) is a  # a is now more recent than b
        c = _use(manager, dirs[2])
        assert b.closed
        assert not a.closed
        assert not c.closed
        assert sorted(_loaded(manager)) == ["a", "c"]
    finally:
        manager.close()


def test_the_limit_never_unloads_a_model_in_use(dirs: list[Path]) -> None:
    loads = Loads()
    manager = ModelManager(loads, max_loaded=1)
    try:
        held = manager.acquire(str(dirs[0]), device="cpu", compute_type="int8")
        extra = manager.acquire(str(dirs[1]), device="cpu", compute_type="int8")
        assert sorted(_loaded(manager)) == ["a", "b"]  # over the limit: both are in use
        extra.release()
        wait_until(lambda: loads.of(dirs[1])[0].closed, "the excess model was not unloaded")
        assert not loads.of(dirs[0])[0].closed
        held.release()
        assert _loaded(manager) == ["a"]
    finally:
        manager.close()


def test_an_unload_waits_for_the_holders_and_a_new_request_loads_a_fresh_copy(
    dirs: list[Path],
) -> None:
    loads = Loads()
    manager = ModelManager(loads)
    try:
        held = manager.acquire(str(dirs[0]), device="cpu", compute_type="int8")
        assert manager.unload(str(dirs[0])) == 1
        old = loads.of(dirs[0])[0]
        assert not old.closed  # a request still uses it
        assert manager.loaded() == []
        assert [(r.unloading, r.in_use) for r in manager.models()] == [(True, 1)]
        fresh = _use(manager, dirs[0])
        assert fresh is not old
        held.release()
        wait_until(lambda: old.closed, "the unloaded model was not closed after its last use")
        assert not fresh.closed
        assert [r.unloading for r in manager.models()] == [False]
    finally:
        manager.close()


class _SlowClose(FakeEngine):
    """A fake engine whose close waits for ``gate``; it records what happens in ``events``."""

    def __init__(self, info: object, gate: threading.Event, events: list[str]) -> None:
        super().__init__(info)  # type: ignore[arg-type]
        self._close_gate = gate
        self._events = events

    def close(self) -> None:
        self._events.append("close begins")
        assert self._close_gate.wait(timeout=60)
        self._events.append("close ends")
        super().close()


def test_a_request_for_a_model_being_closed_waits_then_reloads(dirs: list[Path]) -> None:
    gate = threading.Event()
    events: list[str] = []

    def load(resolved: ResolvedModel, device: str, compute_type: str) -> FakeEngine:
        events.append("load")
        return _SlowClose(fake_info(resolved, device, compute_type), gate, events)

    manager = ModelManager(load)
    try:
        _use(manager, dirs[0])
        unloading = threading.Thread(target=manager.unload, args=(str(dirs[0]),))
        unloading.start()
        wait_until(lambda: "close begins" in events, "the unload did not start closing")
        reload = threading.Thread(target=_use, args=(manager, dirs[0]))
        reload.start()
        reload.join(timeout=0.2)
        assert reload.is_alive(), "the new request did not wait for the close"
        gate.set()
        joined(unloading)
        joined(reload)
        assert events == ["load", "close begins", "close ends", "load"]
        assert len(manager.loaded()) == 1
    finally:
        gate.set()
        manager.close()


def test_listing_shows_memory_and_last_use(dirs: list[Path]) -> None:
    manager = ModelManager(Loads(), ttl=300.0)
    try:
        _use(manager, dirs[0])
        (record,) = manager.models()
        assert record.memory_bytes == model_files_bytes(dirs[0]) > 0
        assert record.memory_source == "model_files"
        assert record.loaded_at <= record.last_used_at
        assert record.expires_at == pytest.approx(record.last_used_at + 300.0)
        assert (record.in_use, record.pinned, record.unloading) == (0, False, False)
    finally:
        manager.close()


def test_model_files_bytes_follows_hub_cache_links(
    tmp_path: Path, add_to_cache: Callable[[Path, str], Path]
) -> None:
    snapshot = add_to_cache(tmp_path / "hub", "Systran/faster-whisper-tiny")
    sizes = [path.resolve().stat().st_size for path in snapshot.iterdir()]
    assert any(path.is_symlink() for path in snapshot.iterdir())
    assert model_files_bytes(snapshot) == sum(sizes) > 0


def test_releasing_twice_counts_once(dirs: list[Path]) -> None:
    manager = ModelManager(Loads())
    try:
        first = manager.acquire(str(dirs[0]), device="cpu", compute_type="int8")
        second = manager.acquire(str(dirs[0]), device="cpu", compute_type="int8")
        first.release()
        first.release()
        assert [r.in_use for r in manager.models()] == [1]
        second.release()
        assert [r.in_use for r in manager.models()] == [0]
    finally:
        manager.close()

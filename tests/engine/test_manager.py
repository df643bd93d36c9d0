"""Tests of the ModelManager: engines loaded once per key, concurrency, unloading, closing.

Models come from a fake Hugging Face cache or local directories; no test touches the network.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import pytest

from whisperd.engine.base import ModelInfo, Transcript
from whisperd.engine.catalogue import KNOWN_MODELS
from whisperd.engine.hub import ResolvedModel
from whisperd.engine.manager import ModelManager
from whisperd.errors import ModelUnavailableError, UnknownModelError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from whisperd.engine.base import SegmentCallback
    from whisperd.engine.options import TranscribeOptions

TINY_REPO = "Systran/faster-whisper-tiny"


class FakeEngine:
    """Stands in for a loaded model."""

    def __init__(self, resolved: ResolvedModel, device: str, compute_type: str) -> None:
        self._info = ModelInfo(
            name=resolved.name,
            path=str(resolved.path),
            multilingual=True,
            languages=("en",),
            device=device,
            compute_type=compute_type,
        )
        self.closed = False

    @property
    def info(self) -> ModelInfo:
        return self._info

    def check(self, options: TranscribeOptions) -> None:
        pass

    def transcribe(
        self,
        audio: npt.NDArray[np.float32],
        options: TranscribeOptions,
        on_segment: SegmentCallback | None = None,
    ) -> Transcript:
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True


class CountingLoader:
    """Builds FakeEngines, counting calls; optionally slow, to widen race windows."""

    delay: ClassVar[float] = 0.05

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, resolved: ResolvedModel, device: str, compute_type: str) -> FakeEngine:
        with self._lock:
            self.calls.append((resolved.name, device, compute_type))
        time.sleep(self.delay)
        return FakeEngine(resolved, device, compute_type)


def test_manager_reuses_engines(cache: Path) -> None:
    loader = CountingLoader()
    manager = ModelManager(loader, models_dir=cache, offline=True)
    first = manager.get("tiny", device="cpu", compute_type="int8")
    assert manager.get("tiny", device="cpu", compute_type="int8") is first
    assert manager.get(TINY_REPO, device="cpu", compute_type="int8") is first
    assert loader.calls == [("tiny", "cpu", "int8")]
    assert [info.name for info in manager.loaded()] == ["tiny"]


def test_manager_loads_once_from_many_threads(cache: Path) -> None:
    loader = CountingLoader()
    manager = ModelManager(loader, models_dir=cache, offline=True)
    barrier = threading.Barrier(8)

    def get(_: int) -> object:
        barrier.wait()
        return manager.get("tiny", device="cpu", compute_type="int8")

    with ThreadPoolExecutor(max_workers=8) as pool:
        engines = list(pool.map(get, range(8)))
    assert len(loader.calls) == 1
    assert all(engine is engines[0] for engine in engines)


def test_manager_keys_by_device_and_compute_type(
    tmp_path: Path, make_model_dir: Callable[[Path], Path]
) -> None:
    model_dir = make_model_dir(tmp_path / "model")
    loader = CountingLoader()
    manager = ModelManager(loader)
    keys = [("cpu", "int8"), ("cpu", "float32"), ("cuda", "int8")]
    engines = {
        (device, compute_type): manager.get(
            str(model_dir), device=device, compute_type=compute_type
        )
        for device, compute_type in keys
    }
    assert len({id(engine) for engine in engines.values()}) == 3
    assert len(loader.calls) == 3
    assert {(info.device, info.compute_type) for info in manager.loaded()} == set(engines)


def test_manager_loads_different_models_concurrently(
    tmp_path: Path, make_model_dir: Callable[[Path], Path]
) -> None:
    first_dir = make_model_dir(tmp_path / "first")
    second_dir = make_model_dir(tmp_path / "second")
    second_started = threading.Event()

    def loader(resolved: ResolvedModel, device: str, compute_type: str) -> FakeEngine:
        if resolved.path == first_dir:
            # Completes only if the second model loads while this one is still loading.
            assert second_started.wait(timeout=10)
        else:
            second_started.set()
        return FakeEngine(resolved, device, compute_type)

    manager = ModelManager(loader)
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(manager.get, str(first_dir), device="cpu", compute_type="int8")
        second = pool.submit(manager.get, str(second_dir), device="cpu", compute_type="int8")
        assert first.result(timeout=20).info.path == str(first_dir)
        assert second.result(timeout=20).info.path == str(second_dir)


def test_manager_retries_after_a_failed_load(
    tmp_path: Path, make_model_dir: Callable[[Path], Path]
) -> None:
    model_dir = make_model_dir(tmp_path / "model")
    attempts: list[int] = []

    def flaky(resolved: ResolvedModel, device: str, compute_type: str) -> FakeEngine:
        attempts.append(1)
        if len(attempts) == 1:
            raise ModelUnavailableError("first load fails")
        return FakeEngine(resolved, device, compute_type)

    manager = ModelManager(flaky)
    with pytest.raises(ModelUnavailableError, match="first load fails"):
        manager.get(str(model_dir), device="cpu", compute_type="int8")
    assert manager.loaded() == []
    manager.get(str(model_dir), device="cpu", compute_type="int8")
    assert len(attempts) == 2


def test_manager_unload_by_alias(tmp_path: Path, add_to_cache: Callable[[Path, str], Path]) -> None:
    cache = tmp_path / "hub"
    add_to_cache(cache, KNOWN_MODELS["large-v3-turbo"].repo_id)
    add_to_cache(cache, TINY_REPO)
    manager = ModelManager(CountingLoader(), models_dir=cache, offline=True)
    turbo_cpu = manager.get("large-v3-turbo", device="cpu", compute_type="int8")
    turbo_cuda = manager.get("large-v3-turbo", device="cuda", compute_type="float16")
    tiny = manager.get("tiny", device="cpu", compute_type="int8")
    assert manager.unload("whisper-1") == 2
    assert isinstance(turbo_cpu, FakeEngine)
    assert isinstance(turbo_cuda, FakeEngine)
    assert isinstance(tiny, FakeEngine)
    assert turbo_cpu.closed
    assert turbo_cuda.closed
    assert not tiny.closed
    assert [info.name for info in manager.loaded()] == ["tiny"]
    assert manager.unload("whisper-1") == 0


def test_manager_close_closes_every_engine(
    tmp_path: Path, make_model_dir: Callable[[Path], Path]
) -> None:
    first_dir = make_model_dir(tmp_path / "first")
    second_dir = make_model_dir(tmp_path / "second")
    manager = ModelManager(CountingLoader())
    engines = [
        manager.get(str(first_dir), device="cpu", compute_type="int8"),
        manager.get(str(second_dir), device="cpu", compute_type="int8"),
        manager.get(str(second_dir), device="cuda", compute_type="float16"),
    ]
    manager.close()
    assert all(isinstance(engine, FakeEngine) and engine.closed for engine in engines)
    assert manager.loaded() == []
    with pytest.raises(ModelUnavailableError, match="closed"):
        manager.get(str(first_dir), device="cpu", compute_type="int8")
    manager.close()


def test_manager_errors_pass_through(tmp_path: Path) -> None:
    manager = ModelManager(CountingLoader(), models_dir=tmp_path, offline=True)
    with pytest.raises(UnknownModelError):
        manager.get("nope", device="cpu", compute_type="int8")
    with pytest.raises(ModelUnavailableError, match="offline mode is on"):
        manager.get("tiny", device="cpu", compute_type="int8")


def test_peek_sees_only_what_is_loaded_and_never_loads(cache: Path) -> None:
    loader = CountingLoader()
    manager = ModelManager(loader, models_dir=cache, offline=True)
    assert manager.peek("tiny", device="cpu", compute_type="int8") is None
    engine = manager.get("tiny", device="cpu", compute_type="int8")
    assert manager.peek("tiny", device="cpu", compute_type="int8") is engine
    assert manager.peek("tiny", device="cpu", compute_type="float32") is None
    assert manager.peek("no-such-model", device="cpu", compute_type="int8") is None
    assert len(loader.calls) == 1

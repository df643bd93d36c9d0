"""Tests of the model table, model resolution, the cache listing and the ModelManager.

No test touches the network: Hub models come from a fake Hugging Face cache laid out as
huggingface_hub writes it, and failures are provoked against closed or stub local ports.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import pytest
from huggingface_hub import constants as hf_constants

from whisperd.engine.base import ModelInfo, Transcript
from whisperd.engine.registry import (
    DEFAULT_MODEL,
    KNOWN_MODELS,
    ModelManager,
    ResolvedModel,
    known_model,
    list_models,
    resolve_model,
)
from whisperd.errors import ModelUnavailableError, UnknownModelError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from whisperd.engine.base import SegmentCallback
    from whisperd.engine.options import TranscribeOptions

TINY_REPO = "Systran/faster-whisper-tiny"
MODEL_FILES = (
    "model.bin",
    "config.json",
    "tokenizer.json",
    "preprocessor_config.json",
    "vocabulary.json",
)


def add_to_cache(cache: Path, repo_id: str) -> Path:
    """Lay out a model as huggingface_hub's cache does and return its snapshot directory.

    ``models--{org}--{name}/blobs/<sha256>`` hold the bytes, ``snapshots/<commit>/<file>`` are
    relative symlinks to them, and ``refs/main`` holds the commit hash (no trailing newline).
    """
    repo_dir = cache / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    snapshot = repo_dir / "snapshots" / commit
    (repo_dir / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for filename in MODEL_FILES:
        content = f"{repo_id}/{filename}".encode()
        blob = repo_dir / "blobs" / hashlib.sha256(content).hexdigest()
        blob.write_bytes(content)
        (snapshot / filename).symlink_to(Path("..", "..", "blobs", blob.name))
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    return snapshot


def make_model_dir(path: Path) -> Path:
    """A local CTranslate2 model directory (contents are placeholders)."""
    path.mkdir(parents=True)
    for filename in MODEL_FILES:
        (path / filename).write_text("{}")
    return path


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """A Hub cache holding only tiny."""
    root = tmp_path / "hub"
    add_to_cache(root, TINY_REPO)
    return root


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def stub_hub() -> Iterator[StubHub]:
    """A local stand-in for the Hugging Face Hub, served from a thread."""
    hub = StubHub()
    thread = threading.Thread(
        target=hub.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield hub
    finally:
        hub.server.shutdown()
        hub.server.server_close()
        thread.join()


class StubHub:
    """Serves one repo the way the Hub does, or fails every request the way the Hub does."""

    commit = "c" * 40

    def __init__(self) -> None:
        self.repo_id = TINY_REPO
        self.files = {name: f"{name} bytes".encode() for name in (*MODEL_FILES, "README.md")}
        self.failure: tuple[int, str] | None = None
        """(status, X-Error-Code) to answer every request with, instead of serving the repo."""
        self.requests: list[str] = []
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._reply(send_body=True)

            def do_HEAD(self) -> None:
                self._reply(send_body=False)

            def _reply(self, *, send_body: bool) -> None:
                hub.requests.append(self.path)
                status, headers, body = hub.answer(self.path.partition("?")[0])
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                if send_body:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        if self.failure is not None:
            status, error_code = self.failure
            return status, {"X-Error-Code": error_code} if error_code else {}, b"{}"
        if path == f"/api/models/{self.repo_id}/revision/main":
            return self._json({"id": self.repo_id, "sha": self.commit})
        if path == f"/api/models/{self.repo_id}/tree/{self.commit}":
            return self._json(
                [
                    {"type": "file", "path": name, "size": len(content), "oid": _sha1(content)}
                    for name, content in self.files.items()
                ]
            )
        name = path.removeprefix(f"/{self.repo_id}/resolve/{self.commit}/")
        if name in self.files:
            content = self.files[name]
            return 200, {"X-Repo-Commit": self.commit, "ETag": f'"{_sha1(content)}"'}, content
        return 404, {}, b"{}"

    @staticmethod
    def _json(data: object) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "application/json"}, json.dumps(data).encode()


def _sha1(content: bytes) -> str:
    return hashlib.sha1(content).hexdigest()


# --------------------------------------------------------------------------------------------
# The table


def test_every_faster_whisper_name_is_known_with_its_repo_id() -> None:
    # Parity check against faster-whisper's own table; only tests read it.
    from faster_whisper.utils import _MODELS

    for name, repo_id in _MODELS.items():
        model = known_model(name)
        assert model is not None, name
        assert model.repo_id == repo_id, name


def test_default_model_is_turbo() -> None:
    assert DEFAULT_MODEL == "large-v3-turbo"
    assert DEFAULT_MODEL in KNOWN_MODELS


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("turbo", "large-v3-turbo"),
        ("whisper-1", "large-v3-turbo"),
        ("whisper-large-v3-turbo", "large-v3-turbo"),
        ("large", "large-v3"),
        ("distil-whisper-large-v3", "distil-large-v3"),
        ("distil-whisper-medium.en", "distil-medium.en"),
        ("distil-whisper-small.en", "distil-small.en"),
        ("Large-V3", "large-v3"),
    ],
)
def test_aliases(alias: str, canonical: str) -> None:
    model = known_model(alias)
    assert model is not None
    assert model.name == canonical
    assert model is KNOWN_MODELS[canonical]


def test_aliases_are_not_canonical_names() -> None:
    aliases = [alias for model in KNOWN_MODELS.values() for alias in model.aliases]
    assert len(aliases) == len(set(aliases))
    assert not set(aliases) & set(KNOWN_MODELS)


@pytest.mark.parametrize(
    ("name", "english_only", "translates"),
    [
        ("tiny", False, True),
        ("tiny.en", True, False),
        ("medium.en", True, False),
        ("large-v3", False, True),
        ("large-v3-turbo", False, True),
        ("distil-large-v3", False, False),
        ("distil-large-v3.5", False, False),
        ("distil-small.en", True, False),
    ],
)
def test_capability_flags(name: str, english_only: bool, translates: bool) -> None:
    model = KNOWN_MODELS[name]
    assert model.english_only is english_only
    assert model.supports_translation is translates


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        KNOWN_MODELS["mine"] = KNOWN_MODELS["tiny"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        KNOWN_MODELS["tiny"].repo_id = "x/y"  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# Resolution from the cache


@pytest.mark.parametrize("name", ["tiny", "TINY", TINY_REPO])
def test_resolves_cached_model_offline(cache: Path, name: str) -> None:
    resolved = resolve_model(name, models_dir=cache, offline=True)
    snapshot = next((cache / "models--Systran--faster-whisper-tiny" / "snapshots").iterdir())
    assert resolved == ResolvedModel(
        name="tiny", path=snapshot, repo_id=TINY_REPO, known=KNOWN_MODELS["tiny"]
    )
    assert (resolved.path / "model.bin").is_file()


def test_resolves_alias_offline(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    add_to_cache(cache, KNOWN_MODELS["large-v3-turbo"].repo_id)
    resolved = resolve_model("whisper-1", models_dir=cache, offline=True)
    assert resolved.name == "large-v3-turbo"
    assert resolved.known is KNOWN_MODELS["large-v3-turbo"]


def test_resolves_unknown_repo_id_offline(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    snapshot = add_to_cache(cache, "someone/whisper-ct2")
    resolved = resolve_model("someone/whisper-ct2", models_dir=cache, offline=True)
    assert resolved == ResolvedModel(
        name="someone/whisper-ct2", path=snapshot, repo_id="someone/whisper-ct2", known=None
    )


def test_offline_and_not_cached(cache: Path) -> None:
    with pytest.raises(ModelUnavailableError) as caught:
        resolve_model("small", models_dir=cache, offline=True)
    message = str(caught.value)
    assert "'small' (Systran/faster-whisper-small)" in message
    assert str(cache / "models--Systran--faster-whisper-small") in message
    assert "offline mode is on" in message
    assert "local CTranslate2 model directory" in message
    assert message.count(". ") == 0
    assert message.endswith(".")


def test_offline_with_missing_cache_dir(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="offline mode is on"):
        resolve_model("tiny", models_dir=tmp_path / "absent", offline=True)


def test_cached_snapshot_without_model_bin_is_incomplete(cache: Path) -> None:
    snapshot = next((cache / "models--Systran--faster-whisper-tiny" / "snapshots").iterdir())
    (snapshot / "model.bin").unlink()
    with pytest.raises(ModelUnavailableError, match="incomplete copy") as caught:
        resolve_model("tiny", models_dir=cache, offline=True)
    assert str(snapshot) in str(caught.value)


# --------------------------------------------------------------------------------------------
# Resolution against an unreachable or failing Hub


@pytest.mark.timeout(30)
@pytest.mark.skipif(hf_constants.HF_HUB_OFFLINE, reason="HF_HUB_OFFLINE is set")
def test_unreachable_hub_fails_fast(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError) as caught:
        resolve_model("tiny", models_dir=tmp_path, offline=False, endpoint=endpoint)
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert f"the Hugging Face Hub at {endpoint} could not be reached" in message
    assert "ConnectError" in message
    assert "offline mode" in message
    assert str(tmp_path / "models--Systran--faster-whisper-tiny") in message


@pytest.mark.timeout(30)
@pytest.mark.skipif(hf_constants.HF_HUB_OFFLINE, reason="HF_HUB_OFFLINE is set")
def test_unreachable_hub_falls_back_to_cache(cache: Path) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    resolved = resolve_model("tiny", models_dir=cache, offline=False, endpoint=endpoint)
    assert (resolved.path / "model.bin").is_file()


@pytest.mark.timeout(30)
@pytest.mark.skipif(hf_constants.HF_HUB_OFFLINE, reason="HF_HUB_OFFLINE is set")
@pytest.mark.parametrize(
    ("status", "error_code", "expected"),
    [
        (404, "RepoNotFound", "has no repository 'someone/missing' or it is private"),
        (403, "GatedRepo", "the Hugging Face repository is gated"),
        (503, "", "answered HTTP 503"),
    ],
)
def test_hub_errors(
    stub_hub: StubHub, tmp_path: Path, status: int, error_code: str, expected: str
) -> None:
    stub_hub.failure = (status, error_code)
    with pytest.raises(ModelUnavailableError, match=expected) as caught:
        resolve_model(
            "someone/missing", models_dir=tmp_path, offline=False, endpoint=stub_hub.endpoint
        )
    assert "'someone/missing'" in str(caught.value)


@pytest.mark.timeout(60)
@pytest.mark.skipif(hf_constants.HF_HUB_OFFLINE, reason="HF_HUB_OFFLINE is set")
@pytest.mark.parametrize("progress", [True, False])
def test_downloads_into_the_hub_cache(
    stub_hub: StubHub,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    progress: bool,
) -> None:
    monkeypatch.setenv("TQDM_POSITION", "-1")  # huggingface_hub then draws bars even off a TTY
    resolved = resolve_model(
        "tiny", models_dir=tmp_path, offline=False, endpoint=stub_hub.endpoint, progress=progress
    )
    snapshot = tmp_path / "models--Systran--faster-whisper-tiny" / "snapshots" / stub_hub.commit
    assert resolved.path == snapshot
    assert sorted(path.name for path in snapshot.iterdir()) == sorted(MODEL_FILES)
    assert (snapshot / "model.bin").read_bytes() == stub_hub.files["model.bin"]
    assert ("Fetching" in capfd.readouterr().err) is progress
    assert resolve_model("tiny", models_dir=tmp_path, offline=True) == resolved
    assert [listing.present for listing in list_models(models_dir=tmp_path)].count(True) == 1


@pytest.mark.timeout(60)
@pytest.mark.skipif(hf_constants.HF_HUB_OFFLINE, reason="HF_HUB_OFFLINE is set")
def test_unwritable_cache(stub_hub: StubHub, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(ModelUnavailableError, match="could not be downloaded into") as caught:
        resolve_model("tiny", models_dir=not_a_dir, offline=False, endpoint=stub_hub.endpoint)
    assert "writable" in str(caught.value)


# --------------------------------------------------------------------------------------------
# Unknown names and local directories


@pytest.mark.parametrize("name", ["tiny-v9", "a/b/c", "org--x/name", "-org/name", ""])
def test_unknown_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnknownModelError) as caught:
        resolve_model(name, models_dir=tmp_path, offline=True)
    message = str(caught.value)
    assert message.startswith(f"Unknown model '{name}': ")
    for known in ("tiny", "large-v3-turbo", "distil-large-v3.5"):
        assert known in message
    assert "repo id" in message
    assert "directory" in message
    assert caught.value.param == "model"


def test_local_directory_is_used_as_is(tmp_path: Path) -> None:
    model_dir = make_model_dir(tmp_path / "my-model")
    resolved = resolve_model(str(model_dir), models_dir=None, offline=True)
    assert resolved == ResolvedModel(name=str(model_dir), path=model_dir, repo_id=None, known=None)


def test_local_directory_wins_over_a_repo_shaped_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_model_dir(tmp_path / "org" / "name")
    monkeypatch.chdir(tmp_path)
    resolved = resolve_model("org/name", models_dir=None, offline=True)
    assert resolved.path == tmp_path / "org" / "name"
    assert resolved.repo_id is None


def test_directory_without_model_bin(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(UnknownModelError, match="not a CTranslate2 model directory") as caught:
        resolve_model(str(tmp_path), models_dir=None, offline=True)
    message = str(caught.value)
    assert str(tmp_path) in message
    for needed in ("model.bin", "config.json", "tokenizer.json"):
        assert needed in message


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(UnknownModelError, match="does not exist"):
        resolve_model(str(tmp_path / "nope"), models_dir=None, offline=True)


def test_file_instead_of_directory(tmp_path: Path) -> None:
    model_bin = tmp_path / "model.bin"
    model_bin.write_bytes(b"")
    with pytest.raises(UnknownModelError, match="is a file"):
        resolve_model(str(model_bin), models_dir=None, offline=True)


# --------------------------------------------------------------------------------------------
# Listing


def test_list_models_reports_the_cache(cache: Path) -> None:
    listings = {listing.name: listing for listing in list_models(models_dir=cache)}
    assert list(listings) == list(KNOWN_MODELS)
    tiny = listings["tiny"]
    assert tiny.present
    assert tiny.path is not None
    assert (tiny.path / "model.bin").is_file()
    assert tiny.repo_id == TINY_REPO
    assert not any(listing.present for name, listing in listings.items() if name != "tiny")
    turbo = listings["large-v3-turbo"]
    assert turbo.aliases == ("turbo", "whisper-1", "whisper-large-v3-turbo")
    assert turbo.supports_translation
    assert not listings["distil-large-v3"].supports_translation


def test_list_models_without_cache_dir(tmp_path: Path) -> None:
    listings = list_models(models_dir=tmp_path / "absent")
    assert len(listings) == len(KNOWN_MODELS)
    assert not any(listing.present for listing in listings)
    assert not (tmp_path / "absent").exists()


# --------------------------------------------------------------------------------------------
# ModelManager


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


def test_manager_keys_by_device_and_compute_type(tmp_path: Path) -> None:
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


def test_manager_loads_different_models_concurrently(tmp_path: Path) -> None:
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


def test_manager_retries_after_a_failed_load(tmp_path: Path) -> None:
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


def test_manager_unload_by_alias(tmp_path: Path) -> None:
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


def test_manager_close_closes_every_engine(tmp_path: Path) -> None:
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

"""Tests of model resolution through the Hugging Face Hub, the cache, and the cache listing.

No test touches the network: Hub models come from a fake Hugging Face cache laid out as
huggingface_hub writes it, and failures are provoked against closed or stub local ports.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from huggingface_hub import constants as hf_constants

from whisperd.engine.catalogue import KNOWN_MODELS
from whisperd.engine.hub import (
    ResolvedModel,
    check_model,
    list_models,
    local_copy,
    resolve_model,
)
from whisperd.errors import ModelUnavailableError, UnknownModelError

TINY_REPO = "Systran/faster-whisper-tiny"
MODEL_FILES = (
    "model.bin",
    "config.json",
    "tokenizer.json",
    "preprocessor_config.json",
    "vocabulary.json",
)


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
# Resolution from the cache


@pytest.mark.parametrize("name", ["tiny", "TINY", TINY_REPO])
def test_resolves_cached_model_offline(cache: Path, name: str) -> None:
    resolved = resolve_model(name, models_dir=cache, offline=True)
    snapshot = next((cache / "models--Systran--faster-whisper-tiny" / "snapshots").iterdir())
    assert resolved == ResolvedModel(
        name="tiny", path=snapshot, repo_id=TINY_REPO, known=KNOWN_MODELS["tiny"]
    )
    assert (resolved.path / "model.bin").is_file()


def test_resolves_alias_offline(tmp_path: Path, add_to_cache: Callable[[Path, str], Path]) -> None:
    cache = tmp_path / "hub"
    add_to_cache(cache, KNOWN_MODELS["large-v3-turbo"].repo_id)
    resolved = resolve_model("whisper-1", models_dir=cache, offline=True)
    assert resolved.name == "large-v3-turbo"
    assert resolved.known is KNOWN_MODELS["large-v3-turbo"]


def test_resolves_unknown_repo_id_offline(
    tmp_path: Path, add_to_cache: Callable[[Path, str], Path]
) -> None:
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


def test_local_directory_is_used_as_is(
    tmp_path: Path, make_model_dir: Callable[[Path], Path]
) -> None:
    model_dir = make_model_dir(tmp_path / "my-model")
    resolved = resolve_model(str(model_dir), models_dir=None, offline=True)
    assert resolved == ResolvedModel(name=str(model_dir), path=model_dir, repo_id=None, known=None)


def test_local_directory_wins_over_a_repo_shaped_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_model_dir: Callable[[Path], Path]
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
# The quick check before a server listens, and the local copy a listing reports


def test_check_model_refuses_names_that_select_nothing_without_the_network(
    tmp_path: Path,
) -> None:
    for name in ("bogus", "", str(tmp_path / "missing")):
        with pytest.raises(UnknownModelError):
            check_model(name, models_dir=tmp_path, offline=False)


def test_check_model_lets_a_download_pass_online_and_wants_the_cache_offline(
    cache: Path, tmp_path: Path, make_model_dir: Callable[[Path], Path]
) -> None:
    check_model("small", models_dir=tmp_path / "empty", offline=False)  # downloaded later
    check_model("tiny", models_dir=cache, offline=True)
    check_model(str(make_model_dir(tmp_path / "dir")), models_dir=None, offline=True)
    with pytest.raises(ModelUnavailableError, match="offline mode is on"):
        check_model("small", models_dir=cache, offline=True)


def test_local_copy_is_the_directory_or_the_cached_snapshot(
    cache: Path, tmp_path: Path, make_model_dir: Callable[[Path], Path]
) -> None:
    model_dir = make_model_dir(tmp_path / "dir")
    assert local_copy(str(model_dir), models_dir=None) == model_dir
    snapshot = local_copy("tiny", models_dir=cache)
    assert snapshot is not None
    assert (snapshot / "model.bin").is_file()
    assert local_copy("small", models_dir=cache) is None
    with pytest.raises(UnknownModelError):
        local_copy("bogus", models_dir=cache)

"""Model stores for the catalogue, Hub and manager tests, with no network.

A Hub cache is laid out as huggingface_hub writes it; a local model directory holds placeholder
files. The helpers are fixtures that return functions, so test modules need not import them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

TINY_REPO = "Systran/faster-whisper-tiny"
MODEL_FILES = (
    "model.bin",
    "config.json",
    "tokenizer.json",
    "preprocessor_config.json",
    "vocabulary.json",
)


def _add_to_cache(cache: Path, repo_id: str) -> Path:
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


def _make_model_dir(path: Path) -> Path:
    """A local CTranslate2 model directory (contents are placeholders)."""
    path.mkdir(parents=True)
    for filename in MODEL_FILES:
        (path / filename).write_text("{}")
    return path


@pytest.fixture(name="add_to_cache")
def add_to_cache_fixture() -> Callable[[Path, str], Path]:
    """Lays out a model in a Hub cache and returns its snapshot directory."""
    return _add_to_cache


@pytest.fixture(name="make_model_dir")
def make_model_dir_fixture() -> Callable[[Path], Path]:
    """Creates a local CTranslate2 model directory (contents are placeholders)."""
    return _make_model_dir


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """A Hub cache holding only tiny."""
    root = tmp_path / "hub"
    _add_to_cache(root, TINY_REPO)
    return root

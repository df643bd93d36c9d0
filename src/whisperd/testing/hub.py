"""A Hugging Face Hub cache on disk, filled from a local model, for offline tests."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def hub_cache(root: Path, model: Path, repo_ids: list[str]) -> Path:
    """A Hugging Face cache at ``root`` where each repo id holds the files of ``model``."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    for repo_id in repo_ids:
        repo = root / ("models--" + repo_id.replace("/", "--"))
        snapshot = repo / "snapshots" / revision
        snapshot.mkdir(parents=True)
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(revision)
        for file in model.iterdir():
            os.link(file, snapshot / file.name)
    return root

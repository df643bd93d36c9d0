"""Fixtures of the jobs tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from job_servers import serve_jobs

from whisperd.config import Settings
from whisperd.testing import ScriptedModel


@pytest.fixture
def job_server(scripted_model: ScriptedModel, tmp_path: Path) -> Callable[..., Any]:
    """``with job_server(gate=None, **settings) as server:`` a fresh fake-engine server whose
    data directory is the test's own."""

    def make(gate: threading.Event | None = None, **overrides: Any) -> Any:
        values: dict[str, Any] = {
            "model": str(scripted_model.path),
            "device": "cpu",
            "compute_type": "int8",
            "offline": True,
            "data_dir": tmp_path / "data",
        }
        values.update(overrides)
        return serve_jobs(Settings(_env_file=None, **values), gate)

    return make

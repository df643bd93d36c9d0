"""``whisperd models loaded|load|unload --server URL`` against a running (fake-engine) server."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from whisperd.cli import cli
from whisperd.config import Settings
from whisperd.testing import ScriptedModel
from whisperd.testing.hub import hub_cache


@pytest.fixture(scope="module")
def cache(scripted_model: ScriptedModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    repos = ["Systran/faster-whisper-tiny", "Systran/faster-whisper-base"]
    return hub_cache(tmp_path_factory.mktemp("hub"), scripted_model.path, repos)


def _run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), terminal_width=200)


def test_load_list_and_unload_on_a_server(
    serve_fake: Callable[..., Any],
    settings_for: Callable[..., Settings],
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WHISPERD_API_KEY", "sesame")
    settings = settings_for(model="tiny", models_dir=cache, api_keys=["sesame"], model_ttl=600.0)
    with serve_fake(settings) as server:
        loaded = _run("models", "load", "base", "--server", server.url)
        listed = _run("models", "loaded", "--server", server.url)
        unloaded = _run("models", "unload", "Systran/faster-whisper-base", "--server", server.url)
        after = _run("models", "loaded", "--server", server.url)
        again = _run("models", "unload", "base", "--server", server.url)
        refused = _run("models", "load", "/srv/elsewhere", "--server", server.url)
        wrong_key = _run("models", "loaded", "--server", server.url, "--api-key", "nope")
    assert loaded.exit_code == 0, loaded.output
    assert loaded.output.strip() == "loaded base on cpu (int8)"
    assert listed.exit_code == 0, listed.output
    rows = [line for line in listed.output.splitlines() if "cpu" in line]
    assert [row.split()[1] for row in rows] == ["tiny", "base"]
    assert "pinned" in rows[0]
    assert re.search(r"\bin \d+ s\b", rows[1])  # when it unloads if idle (the TTL)
    assert unloaded.exit_code == 0, unloaded.output
    assert unloaded.output.strip() == "unloaded Systran/faster-whisper-base (1 engine(s))"
    assert "base" not in after.output
    assert again.exit_code == 2
    assert "The model 'base' is not loaded. (HTTP 404)" in again.output
    assert refused.exit_code == 2
    assert "WHISPERD_ALLOWED_MODELS" in refused.output
    assert wrong_key.exit_code == 2
    assert "HTTP 401" in wrong_key.output


def test_an_unreachable_server_is_a_clear_error() -> None:
    result = _run("models", "loaded", "--server", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "Cannot reach the server at http://127.0.0.1:9" in result.output

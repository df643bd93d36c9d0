"""``whisperd serve`` with a default model it cannot have: one clear line and exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from whisperd.cli import cli


def _serve(*args: str) -> Result:
    return CliRunner().invoke(cli, ["serve", "--port", "0", *args], catch_exceptions=False)


def _one_error_line(result: Result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: "), result.output
    return lines[0]


def test_a_model_name_that_selects_nothing_stops_before_listening() -> None:
    result = _serve("--model", "bogus")
    assert result.exit_code == 2
    assert "Unknown model 'bogus'" in _one_error_line(result)


def test_a_missing_model_directory_stops_before_listening(tmp_path: Path) -> None:
    result = _serve("--model", str(tmp_path / "missing"))
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert str(tmp_path / "missing") in line
    assert "does not exist" in line


def test_an_uncached_model_offline_stops_before_listening(tmp_path: Path) -> None:
    result = _serve("--model", "tiny", "--offline", "--models-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "offline mode is on" in _one_error_line(result)


def test_lazy_loading_still_refuses_a_name_that_selects_nothing() -> None:
    result = _serve("--model", "bogus", "--no-preload-model")
    assert result.exit_code == 2
    assert "Unknown model 'bogus'" in _one_error_line(result)


@pytest.fixture
def broken_model(tmp_path: Path) -> Path:
    """A directory laid out like a CTranslate2 model whose weights are not a model."""
    path = tmp_path / "broken"
    path.mkdir()
    (path / "config.json").write_text("{}")
    (path / "model.bin").write_bytes(b"not a model")
    return path


def test_a_model_that_fails_to_load_after_the_server_listens_stops_it(
    broken_model: Path,
) -> None:
    command = [sys.executable, "-m", "whisperd", "serve", "--model", str(broken_model)]
    done = subprocess.run(
        [*command, "--port", "0", "--engine", "ctranslate2", "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert any("Uvicorn running on" in line for line in lines), done.stderr
    logged = [line for line in lines if " ERROR " in line and "is not available" in line]
    assert len(logged) == 1, done.stderr
    assert lines[-1].startswith(f"error: The default model '{broken_model}' is not available")
    assert "could not be loaded" in lines[-1]

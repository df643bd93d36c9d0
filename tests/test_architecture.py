"""Rules of the codebase that tests can check: light imports, layering, no module state."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "whisperd"
HEAVY = ("faster_whisper", "ctranslate2", "torch", "onnxruntime")


@pytest.mark.parametrize("module", ["whisperd", "whisperd.cli", "whisperd.service", "whisperd.app"])
def test_importing_loads_no_model_library(module: str) -> None:
    code = f"import sys, {module}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "testing" not in p.parts)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_the_engine_imports_faster_whisper_and_ctranslate2() -> None:
    for path in _modules():
        if path.name in ("whisper.py", "ct2_batch.py", "vad.py") and path.parent.name == "engine":
            continue
        heavy = {name for name in _imports(path) if name.split(".")[0] in HEAVY[:2]}
        assert not heavy, f"{path} imports {heavy}"


def test_layers_below_the_api_know_nothing_of_http() -> None:
    lower = ("engine", "audio", "scheduler")
    for path in _modules():
        if path.parent.name in lower or path.name in ("service.py", "batch.py"):
            web = {n for n in _imports(path) if n.split(".")[0] in ("fastapi", "starlette")}
            assert not web, f"{path} imports {web}"


def test_no_module_reads_the_environment_but_config() -> None:
    for path in _modules():
        if path.name == "config.py":
            continue
        assert "os.environ" not in path.read_text(), path
        assert "getenv" not in path.read_text(), path

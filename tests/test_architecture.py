"""Rules of the codebase that tests can check: light imports, layering, no module state."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "whisperd"
HEAVY = ("faster_whisper", "ctranslate2", "torch", "onnxruntime")


@pytest.mark.parametrize(
    "module", ["whisperd", "whisperd.cli", "whisperd.service", "whisperd.jobs", "whisperd.app"]
)
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
        engine_side = ("whisper.py", "batched.py", "ct2_batch.py", "vad.py")
        if path.name in engine_side and path.parent.name == "engine":
            continue
        heavy = {name for name in _imports(path) if name.split(".")[0] in HEAVY[:2]}
        assert not heavy, f"{path} imports {heavy}"


LAYERS: tuple[frozenset[str], ...] = (
    frozenset(
        {
            "__main__",
            "cli",
            "cli_options",
            "cli_settings",
            "cli_config",
            "cli_models",
            "cli_progress",
            "cli_interrupts",
            "cli_output",
            "cli_remote",
            "cli_remote_client",
            "cli_logs",
            "cli_ask",
            "cli_language",
            "cli_speakers",
            "batch",
            "ray_serve",
        }
    ),
    frozenset({"app"}),
    frozenset({"api", "web"}),
    frozenset({"schemas"}),
    frozenset({"service", "jobs"}),
    frozenset({"streaming", "audio", "diarization"}),
    frozenset({"engine"}),
    frozenset({"scheduler"}),
)
"""whisperd's layers, top first (docs/architecture.md): a module imports only from its own
layer and the layers below it, and from the shared leaves."""
LEAVES = frozenset({"whisperd", "config", "errors", "languages"})
"""Importable from every layer; they import no other part of whisperd."""


def _unit(path: Path) -> str:
    relative = path.relative_to(SRC)
    if len(relative.parts) > 1:
        return relative.parts[0]
    return "whisperd" if relative.stem == "__init__" else relative.stem


def _whisperd_units(path: Path) -> set[str]:
    units = set()
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] == "whisperd":
            units.add(parts[1] if len(parts) > 1 else "whisperd")
    return units


def _layer(unit: str) -> int:
    return next(index for index, layer in enumerate(LAYERS) if unit in layer)


def test_every_module_belongs_to_a_layer_or_is_a_leaf() -> None:
    for path in _modules():
        unit = _unit(path)
        assert unit in LEAVES or any(unit in layer for layer in LAYERS), (
            f"{path}: {unit} is in no layer of tests/test_architecture.py and docs/architecture.md"
        )


def test_imports_only_point_down_the_layers() -> None:
    for path in _modules():
        unit = _unit(path)
        imported = _whisperd_units(path) - {unit}
        if unit in LEAVES:
            assert imported <= {"whisperd"}, f"{path}: the leaf {unit} imports {imported}"
            continue
        for other in imported - LEAVES:
            assert _layer(other) >= _layer(unit), f"{path} ({unit}) imports {other}, a layer above"


def test_layers_below_the_api_know_nothing_of_http() -> None:
    lower = set().union(*LAYERS[4:])
    for path in _modules():
        if _unit(path) in lower:
            web = {n for n in _imports(path) if n.split(".")[0] in ("fastapi", "starlette")}
            assert not web, f"{path} imports {web}"


def test_no_module_reads_the_environment_but_config() -> None:
    for path in _modules():
        if path.name == "config.py":
            continue
        assert "os.environ" not in path.read_text(), path
        assert "getenv" not in path.read_text(), path

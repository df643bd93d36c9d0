"""Choosing the engine for ``auto`` without keeping PyTorch resident in a CTranslate2 server."""

from __future__ import annotations

import subprocess
import sys

import pytest

from whisperd.engine import selection

CHOSEN_AND_LOADED = """
import sys
from whisperd.engine.selection import choose_engine
print(choose_engine("auto", "auto"), "torch" in sys.modules)
"""


def test_auto_choice_leaves_torch_out_of_a_ctranslate2_process() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHOSEN_AND_LOADED],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    engine, torch_loaded = done.stdout.split()
    if engine == "ctranslate2":
        assert torch_loaded == "False", done.stderr
    else:
        assert engine == "torch"


@pytest.mark.skipif(not selection.torch_installed(), reason="PyTorch is not installed")
def test_torch_cuda_gives_pytorchs_own_answer() -> None:
    import torch

    assert selection._torch_cuda() is torch.cuda.is_available()


def test_torch_cuda_is_false_when_the_check_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selection, "_TORCH_SEES_CUDA", "import sys; sys.exit(3)")
    assert selection._torch_cuda() is False

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
    monkeypatch.setattr(selection, "_cuda_driver_loadable", lambda: True)
    monkeypatch.setattr(selection, "_TORCH_SEES_CUDA", "import sys; sys.exit(3)")
    assert selection._torch_cuda() is False


def test_torch_cuda_answers_what_the_child_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selection, "_cuda_driver_loadable", lambda: True)
    monkeypatch.setattr(selection, "_TORCH_SEES_CUDA", "import sys; sys.exit(0)")
    assert selection._torch_cuda() is True


def test_no_cuda_driver_means_no_torch_child(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("PyTorch was asked although no CUDA driver loads")

    monkeypatch.setattr(selection, "_cuda_driver_loadable", lambda: False)
    monkeypatch.setattr(subprocess, "run", never)
    assert selection._torch_cuda() is False


def test_a_library_that_does_not_load_is_no_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        selection, "_CUDA_DRIVER_LIBRARIES", {sys.platform: "libwhisperd-no-such-driver.so.1"}
    )
    assert selection._cuda_driver_loadable() is False

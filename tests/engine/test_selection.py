"""Choosing the engine for ``auto`` without keeping PyTorch resident in a CTranslate2 process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from whisperd.engine import selection

CHOSEN_AND_LOADED = """
import sys
from whisperd.engine.selection import choose_engine
print(choose_engine("auto", "auto"), "torch" in sys.modules)
"""


@pytest.mark.skipif(selection._gpu_driver_present(), reason="this machine has a GPU driver")
def test_auto_choice_leaves_torch_out_of_a_machine_without_gpu_driver() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHOSEN_AND_LOADED],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert done.stdout.split() == ["ctranslate2", "False"], done.stderr


@pytest.mark.skipif(not selection.torch_installed(), reason="PyTorch is not installed")
def test_with_a_driver_pytorch_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(selection, "_gpu_driver_present", lambda: True)
    assert selection._torch_cuda() is torch.cuda.is_available()


def test_without_a_driver_pytorch_is_not_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selection, "_gpu_driver_present", lambda: False)
    monkeypatch.setitem(sys.modules, "torch", None)  # importing it would raise
    assert selection._torch_cuda() is False


def test_a_driver_file_is_a_driver(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    device = tmp_path / "nvidiactl"
    device.touch()
    monkeypatch.setattr(selection, "_GPU_DRIVER_FILES", (str(device),))
    assert selection._gpu_driver_present() is True


def test_no_file_and_no_library_is_no_driver(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(selection, "_GPU_DRIVER_FILES", (str(tmp_path / "nvidiactl"),))
    monkeypatch.setattr(
        selection, "_CUDA_DRIVER_LIBRARIES", {sys.platform: "libwhisperd-no-such-driver.so.1"}
    )
    assert selection._gpu_driver_present() is False

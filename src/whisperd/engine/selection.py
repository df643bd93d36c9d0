"""Which inference engine runs the models: CTranslate2 or PyTorch."""

from __future__ import annotations

import ctypes
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from whisperd.errors import ModelUnavailableError

ENGINE_FORMATS: Mapping[str, str] = MappingProxyType(
    {"ctranslate2": "ctranslate2", "torch": "huggingface"}
)
"""The model format each engine loads."""

_GPU_DRIVER_FILES = ("/dev/nvidiactl", "/proc/driver/nvidia/version", "/dev/dxg", "/dev/kfd")
"""Files a GPU driver PyTorch can use puts on Linux: NVIDIA's device node and version file,
WSL2's GPU device, AMD ROCm's compute device (PyTorch's ROCm build answers through
``torch.cuda``)."""
_CUDA_DRIVER_LIBRARIES: Mapping[str, str] = MappingProxyType(
    {"linux": "libcuda.so.1", "win32": "nvcuda.dll"}
)
"""The NVIDIA driver's CUDA library, by ``sys.platform``."""


def torch_installed() -> bool:
    """Whether PyTorch can be imported (the ``gpu`` extra), without importing it."""
    return importlib.util.find_spec("torch") is not None


def _gpu_driver_present() -> bool:
    """Whether this machine has a GPU driver PyTorch could use: one of
    :data:`_GPU_DRIVER_FILES` exists, or the NVIDIA driver's CUDA library loads from the
    library path. Without one PyTorch sees no GPU; macOS never has one (no CUDA builds).
    Systems other than Linux, Windows and macOS are taken to have one (PyTorch decides)."""
    if any(Path(name).exists() for name in _GPU_DRIVER_FILES):
        return True
    if sys.platform == "darwin":
        return False
    library = _CUDA_DRIVER_LIBRARIES.get(sys.platform)
    if library is None:
        return True
    try:
        ctypes.CDLL(library)
    except OSError:
        return False
    return True


def _torch_cuda() -> bool:
    """Whether PyTorch sees a CUDA (or ROCm) device. Without a GPU driver, no, and PyTorch is
    not imported: it would stay resident (about 180 MiB) in a process that then runs
    CTranslate2 on the CPU. With one, PyTorch is imported and asked (blocking: a second or two
    the first time); where CTranslate2 sees no GPU, it is then almost always the engine."""
    if not _gpu_driver_present():
        return False
    import torch

    return bool(torch.cuda.is_available())


def _ctranslate2_cuda() -> bool:
    from whisperd.engine.whisper import resolve_device

    return resolve_device("auto") == "cuda"


def choose_engine(engine: str, device: str) -> str:
    """The engine to use for the ``engine`` setting on ``device``.

    ``auto`` picks ``torch`` only where it is the one way to use a GPU: the device is not
    pinned to the CPU, CTranslate2 sees no CUDA device (its wheels need CUDA 12 libraries) and
    PyTorch does. Everything else runs on CTranslate2.

    Raises:
        ModelUnavailableError: if ``torch`` is asked for and PyTorch is not installed.
    """
    if engine == "torch":
        if not torch_installed():
            raise ModelUnavailableError(
                "The torch engine needs PyTorch: install it with pip install 'whisperd[gpu]' "
                "or choose engine ctranslate2."
            )
        return "torch"
    if engine != "auto" or device == "cpu" or not torch_installed():
        return "ctranslate2"
    if _ctranslate2_cuda() or not _torch_cuda():
        return "ctranslate2"
    return "torch"


def concrete_hardware(engine: str, device: str, compute_type: str) -> tuple[str, str]:
    """The device and compute type ``engine`` really runs for settings that may say ``auto``.

    Models are keyed by this answer (:class:`~whisperd.engine.manager.ModelManager`), so a
    request for ``auto`` and one for the device ``auto`` picks share one loaded model.
    CTranslate2: ``auto`` is CUDA when it sees a GPU, else the CPU; compute type ``auto`` (or
    ``default``) is float16 on CUDA and int8 on the CPU; other compute types are kept (the
    engine refuses those the device lacks). PyTorch: the device PyTorch picks, and the
    floating-point type it runs (:func:`~whisperd.engine.pytorch.engine.torch_compute_type`).
    Blocking (imports the engine's library on first use).

    Raises:
        ModelUnavailableError: if the torch engine is asked for CUDA it does not see.
    """
    if engine == "torch":
        from whisperd.engine.pytorch.engine import torch_compute_type, torch_device

        place = torch_device(device)
        return place.type, torch_compute_type(compute_type, place)
    from whisperd.engine.whisper import resolve_compute_type, resolve_device

    device = resolve_device(device)
    if compute_type in ("auto", "default"):
        compute_type = resolve_compute_type(compute_type, device)
    return device, compute_type

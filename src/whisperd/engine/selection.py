"""Which inference engine runs the models: CTranslate2 or PyTorch."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from types import MappingProxyType

from whisperd.errors import ModelUnavailableError

ENGINE_FORMATS: Mapping[str, str] = MappingProxyType(
    {"ctranslate2": "ctranslate2", "torch": "huggingface"}
)
"""The model format each engine loads."""


def torch_installed() -> bool:
    """Whether PyTorch can be imported (the ``gpu`` extra), without importing it."""
    return importlib.util.find_spec("torch") is not None


def _torch_cuda() -> bool:
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

"""Wire models of the loaded-models API (``/v1/loaded_models``): what is in memory, and unloads.

Not part of OpenAI's API (whose ``/v1/models`` lists what may be asked for, and stays as
OpenAI shapes it); shaped like it: a ``list`` object of items with an ``id`` and an
``object`` type. Times are Unix seconds; memory is bytes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class LoadedModelObject(BaseModel):
    """One loaded engine: a model on one device and compute type."""

    id: str
    """The model's name: a catalogue name, a Hugging Face repo id or a directory."""
    object: Literal["loaded_model"] = "loaded_model"
    path: str
    """The directory its weights were loaded from."""
    device: str
    """Where it runs (``cpu``, ``cuda``)."""
    compute_type: str
    """The weight and activation type it runs (``int8``, ``float16``, ...)."""
    memory_bytes: int
    """Its estimated memory, in bytes, as ``memory_source`` says."""
    memory_source: Literal["model_files"]
    """``model_files``: the size of its files on disk (weights as stored; a load that
    converts them, e.g. float16 run as int8, holds less; activations are not counted)."""
    loaded_at: int
    """When it was loaded (Unix seconds)."""
    last_used_at: int
    """When the last request or stream using it ended, or when it was loaded (Unix seconds)."""
    in_use: int
    """Requests and streams using it now."""
    pinned: bool
    """The server's default model: never unloaded for idleness or to make room."""
    unloading: bool
    """An unload was asked while requests used it: it goes when the last one ends, and a
    new request for the model loads a fresh copy."""
    expires_at: int | None
    """When it is unloaded for idleness if nobody uses it meanwhile (``WHISPERD_MODEL_TTL``);
    null if it never is."""


class LoadedModelList(BaseModel):
    """Every loaded engine, in load order."""

    object: Literal["list"] = "list"
    data: list[LoadedModelObject]


class UnloadedModel(BaseModel):
    """The answer to an unload, shaped like OpenAI's deleted-model object."""

    id: str
    """The model id the unload named."""
    object: Literal["loaded_model"] = "loaded_model"
    deleted: Literal[True] = True
    """It is out of service: the next request for it loads it again."""
    engines: int
    """How many engines (devices and compute types) were taken out of service; those in use
    close when their last request or stream ends."""

"""The loaded-models API: list what is in memory, load a model ahead of use, unload one.

``GET /v1/loaded_models``, ``POST`` and ``DELETE /v1/loaded_models/{model}`` (ids with ``/``
may come raw or percent-encoded), behind the API key like every other route. OpenAI's ids of
the default model (``whisper-1``, ...) name the server's default model, as on the
transcription routes. A load obeys the allow-list as a transcription does (404
``model_not_found``) and runs on the server's device and compute type. What the lifecycle does
(idle unloading, the limit on loaded models, unloads that wait for requests in flight) is
:mod:`whisperd.engine.manager`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends

from whisperd.api.deps import ServiceDep, SettingsDep, accepting_work
from whisperd.api.models import DEFAULT_ALIASES
from whisperd.api.responses import openai_errors
from whisperd.errors import UnknownModelError
from whisperd.schemas.models_admin import LoadedModelList, LoadedModelObject, UnloadedModel

if TYPE_CHECKING:
    from whisperd.config import Settings
    from whisperd.engine.lifecycle import LoadedModel

router = APIRouter(prefix="/v1/loaded_models", dependencies=[Depends(accepting_work)])


def _served(model_id: str, settings: Settings) -> str:
    """The model an id names: OpenAI's ids of the default (``whisper-1``, ...) are the
    server's default model, as on the transcription routes."""
    return settings.model if model_id.strip() in DEFAULT_ALIASES else model_id


def _wire(record: LoadedModel) -> LoadedModelObject:
    info = record.info
    return LoadedModelObject(
        id=info.name,
        path=info.path,
        device=info.device,
        compute_type=info.compute_type,
        memory_bytes=record.memory_bytes,
        memory_source=record.memory_source,
        loaded_at=int(record.loaded_at),
        last_used_at=int(record.last_used_at),
        in_use=record.in_use,
        pinned=record.pinned,
        unloading=record.unloading,
        expires_at=None if record.expires_at is None else int(record.expires_at),
    )


@router.get("", responses=openai_errors(401))
async def list_loaded(service: ServiceDep) -> LoadedModelList:
    """Every loaded engine: model, device, compute type, memory, use and expiry."""
    return LoadedModelList(data=[_wire(record) for record in service.models.models()])


@router.post("/{model_id:path}", responses=openai_errors(401, 404, 503))
async def load(model_id: str, service: ServiceDep, settings: SettingsDep) -> LoadedModelObject:
    """Load a model now (a no-op if it is loaded), so its first request does not wait.

    Raises:
        UnknownModelError: no such model, or one the allow-list refuses (404).
        ModelUnavailableError: it cannot be downloaded or loaded (503).
    """
    if not model_id.strip():
        raise UnknownModelError("A model id is needed: POST /v1/loaded_models/{model}.")
    lease = await service.hold_model(_served(model_id, settings))
    try:
        info = lease.engine.info
        held = next(r for r in service.models.models() if r.info is info)
    finally:
        lease.release()
    # Read again once released (in use and expiry without this request), unless it is gone.
    now = next((r for r in service.models.models() if r.info is info), held)
    return _wire(now)


@router.delete("/{model_id:path}", responses=openai_errors(401, 404))
async def unload(model_id: str, service: ServiceDep, settings: SettingsDep) -> UnloadedModel:
    """Unload a model on every device and compute type; requests using it finish first.

    Raises:
        ModelNotLoadedError: it is not loaded (404).
    """
    engines = await service.unload_model(_served(model_id, settings))
    return UnloadedModel(id=model_id, engines=engines)

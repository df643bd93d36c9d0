"""The replica of whisperd's Serve deployment: one app, one service, one model loaded once.

Ray builds the app on the replica (``__serve_build_asgi_app__``): the replica creates its
service and loads the default model first, so Ray routes to it only once it can serve, and a
model that cannot be had fails the replica's start with the model's error (Ray reports it).
Then Ray runs the app's lifespan (the jobs runner, the fetcher, metrics); the replica closes
the service after it, when Ray stops the replica. Ray's health check fails a replica whose
default model failed later.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

from fastapi import FastAPI
from ray import serve

from whisperd.app import create_app
from whisperd.ray_serve.options import replica_settings
from whisperd.ray_serve.replica_metrics import label_metrics
from whisperd.service import TranscriptionService

if TYPE_CHECKING:
    from whisperd.config import Settings

__all__ = ["WhisperdReplica", "replica_name"]

_READY_POLL_S: Final = 0.05


def replica_name() -> str:
    """This replica's id (unique in the cluster, kept for the replica's life)."""
    return str(serve.get_replica_context().replica_tag)


async def _until_ready(service: TranscriptionService) -> None:
    """Load the default model (once; ``preload_model`` off: nothing to wait for).

    Raises:
        ModelError: the default model's failure, if it cannot be had.
    """
    if not service.settings.preload_model:
        return
    service.preload()
    while service.readiness == "loading":  # noqa: ASYNC110 - the service exposes no event
        await asyncio.sleep(_READY_POLL_S)
    failure = service.default_failure
    if service.readiness == "failed" and failure is not None:
        raise failure


@serve.ingress()
class WhisperdReplica:
    """One replica: whisperd's app built from the deployment's settings, named by the replica.

    Args:
        settings: The deployment's settings; each replica adds its name
            (:func:`~whisperd.ray_serve.options.replica_settings`).
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = replica_settings(settings, replica_name())
        self._service: TranscriptionService | None = None

    async def __serve_build_asgi_app__(self) -> FastAPI:
        """Create the service, load the default model, then build the app around them.

        Raises:
            ModelError: if the default model cannot be had (the replica does not start).
        """
        service = await asyncio.to_thread(TranscriptionService.create, self._settings)
        try:
            await _until_ready(service)
        except BaseException:
            await asyncio.to_thread(service.close)
            raise
        self._service = service
        app = create_app(self._settings, service=service)
        assert self._settings.replica_name is not None
        label_metrics(app, self._settings.replica_name)
        return app

    async def check_health(self) -> None:
        """Ray's periodic health check: fails once the default model failed to load.

        Raises:
            ModelError: the default model's failure.
        """
        service = self._service
        if service is not None and service.readiness == "failed":
            failure = service.default_failure
            if failure is not None:
                raise failure

    async def __del__(self) -> None:
        """Close the service once Ray has run the app's lifespan shutdown (Ray awaits it)."""
        service, self._service = self._service, None
        if service is not None:
            await asyncio.to_thread(service.close)

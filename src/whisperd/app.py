"""The ASGI application factory. State lives on the app, built and torn down by the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from whisperd import __version__
from whisperd.service import TranscriptionService

if TYPE_CHECKING:
    from whisperd.config import Settings


def create_app(settings: Settings, *, service: TranscriptionService | None = None) -> FastAPI:
    """Build the app; the lifespan creates the service (unless one is given) and closes it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = service is None
        app.state.settings = settings
        app.state.service = service or TranscriptionService.create(settings)
        try:
            yield
        finally:
            if owned:
                app.state.service.close()

    app = FastAPI(title="whisperd", version=__version__, lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Readiness: 200 once the server accepts work."""
        return {"status": "ok"}

    return app

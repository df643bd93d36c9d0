"""The ASGI application factory. State lives on the app, built and torn down by the lifespan."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from whisperd import __version__
from whisperd.api.errors import install_openai_error_handlers
from whisperd.api.middleware import ApiKeyMiddleware, BodyLimitMiddleware, RequestIdMiddleware
from whisperd.api.openai import router as openai_router
from whisperd.audio.fetch import AudioFetcher, FetchLimits
from whisperd.service import TranscriptionService

if TYPE_CHECKING:
    from whisperd.config import Settings

_MULTIPART_OVERHEAD = 64 * 1024


def _upload_limit(settings: Settings) -> int:
    return int(settings.max_upload_mb * 1024 * 1024)


def create_app(settings: Settings, *, service: TranscriptionService | None = None) -> FastAPI:
    """Build the app; the lifespan creates the service (unless one is given) and closes it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = service is None
        app.state.settings = settings
        app.state.started = int(time.time())
        app.state.service = service or TranscriptionService.create(settings)
        app.state.fetcher = AudioFetcher(
            FetchLimits(max_bytes=_upload_limit(settings)),
            allow_private_networks=settings.allow_private_networks,
        )
        try:
            yield
        finally:
            await app.state.fetcher.aclose()
            if owned:
                app.state.service.close()

    app = FastAPI(
        title="whisperd",
        version=__version__,
        summary="Self-hosted Whisper speech-to-text with OpenAI-compatible APIs.",
        lifespan=lifespan,
    )
    install_openai_error_handlers(app)
    app.include_router(openai_router)

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Readiness: 200 once the server accepts work."""
        return {"status": "ok"}

    # Added innermost first: request ids wrap everything, auth runs before any body is read.
    app.add_middleware(BodyLimitMiddleware, max_bytes=_upload_limit(settings) + _MULTIPART_OVERHEAD)
    app.add_middleware(ApiKeyMiddleware, keys=[key.get_secret_value() for key in settings.api_keys])
    app.add_middleware(RequestIdMiddleware)
    return app

"""The ASGI application factory. State lives on the app, built and torn down by the lifespan."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn
from fastapi import FastAPI, Response

from whisperd import __version__
from whisperd.api.errors import install_error_handlers
from whisperd.api.middleware import (
    DEFAULT_PUBLIC_PATHS,
    ApiKeyMiddleware,
    BodyTimeoutMiddleware,
    RequestIdMiddleware,
)
from whisperd.api.native import raw_router as native_raw_router
from whisperd.api.native import router as native_router
from whisperd.api.openai import router as openai_router
from whisperd.api.openapi import install_openapi
from whisperd.api.realtime import router as realtime_router
from whisperd.api.stream import router as stream_router
from whisperd.audio.fetch import AudioFetcher, FetchLimits
from whisperd.schemas.native import Health
from whisperd.service import TranscriptionService

if TYPE_CHECKING:
    from whisperd.config import Settings

_MULTIPART_OVERHEAD = 64 * 1024
"""Room in a body limit for what wraps the audio: multipart boundaries, headers, form fields."""


def _upload_limit(settings: Settings) -> int:
    return int(settings.max_upload_mb * 1024 * 1024)


def _body_limits(settings: Settings) -> tuple[int, int]:
    """Largest request bodies in bytes: a multipart upload, and base64 audio in a JSON body."""
    upload = _upload_limit(settings)
    return upload + _MULTIPART_OVERHEAD, upload * 4 // 3 + _MULTIPART_OVERHEAD


def create_app(settings: Settings, *, service: TranscriptionService | None = None) -> FastAPI:
    """Build the app; the lifespan creates the service (unless one is given) and closes it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = service is None
        app.state.settings = settings
        app.state.started = int(time.time())
        app.state.started_monotonic = time.monotonic()
        app.state.draining = False
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
    install_error_handlers(app, upload_limit_mb=settings.max_upload_mb)
    # Body limits go on the routes that read bodies, inside the middlewares: an app-wide one
    # would run before the API-key check and answer a keyless oversized request itself.
    multipart, base64_json = _body_limits(settings)
    app.include_router(openai_router, max_body_size=multipart)
    app.include_router(native_router, max_body_size=multipart)
    app.include_router(native_raw_router, max_body_size=base64_json)
    app.include_router(stream_router)
    app.include_router(realtime_router)

    @app.get("/health", responses={503: {"model": Health, "description": "Shutting down."}})
    async def health(response: Response) -> Health:
        """Readiness: 200 while the server accepts work, 503 once it drains to stop."""
        if app.state.draining:
            response.status_code = 503
            return Health(status="shutting_down")
        return Health(status="ok")

    # Added innermost first: request ids wrap everything and auth runs before any body is read.
    keys = [key.get_secret_value() for key in settings.api_keys]
    app.add_middleware(BodyTimeoutMiddleware)
    app.add_middleware(ApiKeyMiddleware, keys=keys, public_paths=DEFAULT_PUBLIC_PATHS)
    app.add_middleware(RequestIdMiddleware)
    install_openapi(app, public_paths=DEFAULT_PUBLIC_PATHS, key_required=bool(keys))
    return app


class DrainingServer(uvicorn.Server):
    """A uvicorn server that flips the app to "draining" the moment it is asked to stop.

    uvicorn tells the app about shutdown only after in-flight requests finished; meanwhile new
    requests on open connections get 503 "Server shutting down" and ``/health`` turns 503, so
    a load balancer stops sending work at once.
    """

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        """Serve ``app`` with ``config``."""
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Mark the app as draining, then let uvicorn stop as usual."""
        self._app.state.draining = True
        super().handle_exit(sig, frame)


def run_server(settings: Settings) -> None:
    """Serve the app on the settings' host and port until interrupted."""
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=30,
    )
    DrainingServer(config, app).run()

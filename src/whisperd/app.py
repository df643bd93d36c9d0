"""The ASGI application factory. State lives on the app, built and torn down by the lifespan."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn
from fastapi import FastAPI, Response
from prometheus_client import CollectorRegistry, start_http_server
from starlette.middleware.cors import CORSMiddleware

from whisperd import __version__
from whisperd.api.draining import Drain, DrainMiddleware
from whisperd.api.errors import install_error_handlers
from whisperd.api.jobs import router as jobs_router
from whisperd.api.language import router as language_router
from whisperd.api.metrics import HttpMetrics, HttpMetricsMiddleware
from whisperd.api.metrics import router as metrics_router
from whisperd.api.middleware import (
    DEFAULT_PUBLIC_PATHS,
    ApiKeyMiddleware,
    BodyTimeoutMiddleware,
    ReplicaHeaderMiddleware,
    RequestIdMiddleware,
)
from whisperd.api.models_admin import router as models_admin_router
from whisperd.api.native import raw_router as native_raw_router
from whisperd.api.native import router as native_router
from whisperd.api.openai import router as openai_router
from whisperd.api.openapi import install_docs, install_openapi
from whisperd.api.realtime import router as realtime_router
from whisperd.api.stream import router as stream_router
from whisperd.audio.fetch import AudioFetcher, FetchLimits
from whisperd.errors import StartupError
from whisperd.jobs import check_jobs, open_jobs
from whisperd.schemas.native import Health
from whisperd.service import TranscriptionService
from whisperd.service.loading import check_default_model
from whisperd.web import install_web, web_paths

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from opentelemetry.sdk.trace import TracerProvider

    from whisperd.config import Settings
    from whisperd.errors import ModelError

logger = logging.getLogger(__name__)

_MULTIPART_OVERHEAD = 64 * 1024
"""Room in a body limit for what wraps the audio: multipart boundaries, headers, form fields."""


def _upload_limit(settings: Settings) -> int:
    return int(settings.max_upload_mb * 1024 * 1024)


def _body_limits(settings: Settings) -> tuple[int, int]:
    """Largest request bodies in bytes: a multipart upload, and base64 audio in a JSON body."""
    upload = _upload_limit(settings)
    return upload + _MULTIPART_OVERHEAD, upload * 4 // 3 + _MULTIPART_OVERHEAD


def create_app(settings: Settings, *, service: TranscriptionService | None = None) -> FastAPI:
    """Build the app; the lifespan creates the service (unless one is given) and closes it.

    With ``preload_model`` on, the lifespan starts loading the default model in the background
    and the server listens at once: ``/health`` answers 503 ``loading`` until the model is
    ready (then 200 ``ok``), or 503 ``failed`` if it cannot be had.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = service is None
        app.state.settings = settings
        app.state.started = int(time.time())
        app.state.started_monotonic = time.monotonic()
        app.state.draining = False
        app.state.service = service or await asyncio.to_thread(
            TranscriptionService.create, settings
        )
        registry.register(app.state.service.metrics)
        if settings.preload_model:
            app.state.service.preload()
        app.state.fetcher = AudioFetcher(
            FetchLimits(max_bytes=_upload_limit(settings)),
            allow_private_networks=settings.allow_private_networks,
        )
        app.state.jobs = None
        try:
            app.state.jobs = await open_jobs(settings, app.state.service)
            yield
        finally:
            if app.state.jobs is not None:
                await app.state.jobs.close()
            await app.state.fetcher.aclose()
            registry.unregister(app.state.service.metrics)
            if owned:
                app.state.service.close()
            if tracer_provider is not None:  # exports the spans still batched
                from whisperd.api.tracing import close_tracing

                await asyncio.to_thread(close_tracing, app, tracer_provider)

    app = FastAPI(
        title="whisperd",
        version=__version__,
        summary="Self-hosted Whisper speech-to-text with OpenAI-compatible APIs.",
        lifespan=lifespan,
        docs_url=None,  # served by install_docs, without a CDN
        redoc_url=None,
    )
    install_error_handlers(app, upload_limit_mb=settings.max_upload_mb)
    # Body limits go on the routes that read bodies, inside the middlewares: an app-wide one
    # would run before the API-key check and answer a keyless oversized request itself.
    multipart, base64_json = _body_limits(settings)
    app.include_router(openai_router, max_body_size=multipart)
    app.include_router(native_router, max_body_size=multipart)
    app.include_router(native_raw_router, max_body_size=base64_json)
    app.include_router(jobs_router, max_body_size=multipart)
    app.include_router(language_router, max_body_size=multipart)
    app.include_router(models_admin_router)
    app.include_router(stream_router)
    app.include_router(realtime_router)
    registry = CollectorRegistry()
    app.state.metrics_registry = registry
    http_metrics = HttpMetrics()
    registry.register(http_metrics)
    if settings.metrics_port is None:
        app.include_router(metrics_router)

    @app.get(
        "/health",
        responses={
            503: {
                "model": Health,
                "description": "Loading the default model, unable to load it, or shutting down.",
            }
        },
    )
    async def health(response: Response) -> Health:
        """Readiness: 200 while the server accepts work; 503 ``loading`` while the default
        model loads, ``failed`` if it cannot be had, ``shutting_down`` once it drains to stop."""
        if app.state.draining:
            response.status_code = 503
            return Health(status="shutting_down")
        readiness = app.state.service.readiness
        if readiness != "ready":
            response.status_code = 503
            return Health(status=readiness)
        return Health(status="ok")

    # Added innermost first: request ids wrap everything, every request is counted and logged
    # (refused ones too), CORS answers preflights and marks every other answer (a 401, a 503
    # included), a draining server refuses new work before anything else runs, and auth runs
    # before any body is read.
    keys = [key.get_secret_value() for key in settings.api_keys]
    app.state.drain = Drain()
    app.add_middleware(BodyTimeoutMiddleware)
    # The web page loads without a key, then asks for one (its API calls send it).
    public_paths = (*DEFAULT_PUBLIC_PATHS, *web_paths())
    app.add_middleware(ApiKeyMiddleware, keys=keys, public_paths=public_paths)
    # A draining server still shows its metrics: the scrapes see the drain through.
    open_paths = (*DEFAULT_PUBLIC_PATHS, "/metrics")
    app.add_middleware(DrainMiddleware, drain=app.state.drain, open_paths=open_paths)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=_CORS_METHODS,
            allow_headers=["*"],
            expose_headers=_CORS_EXPOSED,
            max_age=600,
        )
    app.add_middleware(HttpMetricsMiddleware, metrics=http_metrics, routes=app.routes)
    tracer_provider: TracerProvider | None = None
    if settings.otel_endpoint is not None:  # the otel extra, imported only then
        from whisperd.api.tracing import SpanContextMiddleware, install_tracing

        tracer_provider = install_tracing(app, settings)
        app.add_middleware(SpanContextMiddleware)
    app.state.tracer_provider = tracer_provider
    app.add_middleware(RequestIdMiddleware)
    _name_replica(app, settings)
    install_openapi(app, public_paths=DEFAULT_PUBLIC_PATHS, key_required=bool(keys))
    install_docs(app)
    install_web(app)
    return app


def _name_replica(app: FastAPI, settings: Settings) -> None:
    """With ``replica_name`` set, every answer names it (outermost: refusals too)."""
    if settings.replica_name is not None:
        app.add_middleware(ReplicaHeaderMiddleware, name=settings.replica_name)


_CORS_METHODS = ["GET", "POST", "DELETE"]
"""Methods browser apps may use across origins (every method of the APIs)."""
_CORS_EXPOSED = ["x-request-id", "retry-after", "x-whisperd-replica"]
"""Response headers a browser app may read across origins, besides the CORS-safelisted ones."""

_UVICORN_GRACE_S = 5
"""uvicorn's own bound on closing connections once the drain is over (only a backstop)."""


HTTP_PARSER = "h11"
"""uvicorn's HTTP/1.1 parser, named so that installing an extra that brings httptools (Ray does)
does not change what clients see: httptools answers a request with an unknown method 400 before
the app sees it, h11 passes it on (405, counted under the method ``other`` in /metrics)."""


class DrainingServer(uvicorn.Server):
    """A uvicorn server that drains the app before it stops (:mod:`whisperd.api.draining`).

    On its own, uvicorn closes the listener at the first SIGTERM or SIGINT, cancels the
    requests still running after its timeout (a plain 500 and a logged traceback), and raises
    the signal again once stopped (a non-zero exit). Here the first signal only marks the app
    as draining: the listener stays open, ``/health`` answers 503 ``shutting_down``, new work
    gets 503 in its API's envelope, and the work in flight has ``shutdown_timeout_s`` seconds
    to finish before it is stopped and answered. uvicorn then stops as usual and the process
    exits with 0. A second signal quits at once, with 128 + the signal's number.
    """

    def __init__(self, config: uvicorn.Config, app: FastAPI, *, shutdown_timeout_s: float) -> None:
        """Serve ``app`` with ``config``; drain for at most ``shutdown_timeout_s`` seconds."""
        super().__init__(config)
        self._app = app
        self._timeout_s = shutdown_timeout_s
        self._stop_signal: int | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """First signal: start draining (the main loop does the rest). Second: quit now."""
        if self._stop_signal is not None:
            logger.warning("Second %s: quitting at once", signal.Signals(sig).name)
            sys.stderr.flush()
            os._exit(128 + sig)
        self._stop_signal = sig
        self._app.state.draining = True

    async def on_tick(self, counter: int) -> bool:
        """Stop once drained, once the default model failed to load, or as uvicorn would."""
        if _model_failure(self._app) is not None:
            return True
        if self._app.state.draining:
            drain: Drain = self._app.state.drain
            drain.begin(self._timeout_s)
            if drain.poll():
                return True
        return await super().on_tick(counter)


def _model_failure(app: FastAPI) -> ModelError | None:
    """Why the default model could not be loaded at startup, if it could not."""
    service: TranscriptionService | None = getattr(app.state, "service", None)
    if service is None or service.readiness != "failed":
        return None
    return service.default_failure


def start_metrics_server(app: FastAPI, host: str, port: int) -> WSGIServer:
    """Serve ``app``'s metrics (``GET /metrics``, Prometheus text format) on ``host:port``
    from a thread of their own, without an API key (the ``metrics_port`` setting).

    Returns:
        The server; ``shutdown()`` stops it.

    Raises:
        StartupError: if the port cannot be bound (in use, or not allowed).
    """
    try:
        server, _ = start_http_server(port, addr=host, registry=app.state.metrics_registry)
    except OSError as exc:
        raise StartupError(
            f"Cannot serve /metrics on {host}:{port} (WHISPERD_METRICS_PORT): "
            f"{exc.strerror or exc}. Choose a free port, or unset it to serve /metrics "
            "on the main port."
        ) from exc
    return server


def run_server(settings: Settings) -> None:
    """Serve the app on the settings' host and port until interrupted.

    The default model is checked before the port is opened (quickly, without the network);
    with ``preload_model`` on, a model that then fails to download or load stops the server.

    Raises:
        ModelError: if the default model cannot be had (the CLI exits with 2).
        JobStoreUnavailableError: if jobs are on and their data directory or database cannot
            be used (the CLI exits with 2).
        StartupError: if the metrics port cannot be bound, or tracing is asked for without
            the ``otel`` extra (the CLI exits with 2).
    """
    check_default_model(settings)
    check_jobs(settings)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # keep the process's logging (cli: one format for every line)
        access_log=False,  # whisperd.access logs route templates, not paths and queries
        timeout_graceful_shutdown=_UVICORN_GRACE_S,
        http=HTTP_PARSER,
    )
    metrics = None
    if settings.metrics_port is not None:
        metrics = start_metrics_server(app, settings.host, settings.metrics_port)
    try:
        DrainingServer(config, app, shutdown_timeout_s=settings.shutdown_timeout_s).run()
    finally:
        if metrics is not None:
            metrics.shutdown()
    failure = _model_failure(app)
    if failure is not None:
        raise failure

"""HTTP metrics, the access log line, and the ``/metrics`` route (Prometheus text format).

:class:`HttpMetricsMiddleware` counts every HTTP request by method, route *template* (never the
raw path: ``/v1/jobs/{job_id}``, not one series per job) and status, times it, and writes one
access log line per request with the same bounded fields, so no query string, URL or key ever
reaches the log; the line names the key's fingerprint and, on a ``/v1/jobs/{job_id}`` route,
the job (its ``job_id`` field). A path no route matches is counted as ``unmatched``; a method
outside the standard ones as ``other``. WebSockets are counted by the service (open streams)
instead.

``GET /metrics`` renders the app's own ``CollectorRegistry`` (``app.state.metrics_registry``):
these HTTP metrics and the service's (:mod:`whisperd.service.metrics`). It is not a public
path: with API keys set it needs one, like every route but ``/health`` and the docs.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Final

from fastapi import APIRouter, Request, Response
from prometheus_client import Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from starlette.routing import Match

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from prometheus_client.metrics_core import Metric
    from starlette.routing import BaseRoute
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["UNMATCHED", "HttpMetrics", "HttpMetricsMiddleware", "router"]

access_log = logging.getLogger("whisperd.access")

UNMATCHED: Final = "unmatched"
"""The ``route`` label of a request no route matches (a 404 for an unknown path)."""

_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    float("inf"),
)  # fmt: skip


class HttpMetrics(Collector):
    """The HTTP request counter and latency histogram of one app (registered nowhere until
    the app registers them)."""

    def __init__(self) -> None:
        """Create the instruments (``registry=None``: no global state)."""
        self.requests = Counter(
            "whisperd_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=None,
        )
        self.duration = Histogram(
            "whisperd_http_request_duration_seconds",
            "Seconds from a request's arrival to the end of its response, by method and route.",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=None,
        )

    def collect(self) -> Iterator[Metric]:
        """Both instruments' samples."""
        yield from self.requests.collect()
        yield from self.duration.collect()


class HttpMetricsMiddleware:
    """Count, time and log every HTTP request (see the module's docstring).

    Place it inside the request-id middleware (its log line names the request) and outside
    the API-key check, so refused requests are counted too.

    Args:
        app: The ASGI app to wrap.
        metrics: Where to count.
        routes: The app's routes, to name a request the router never saw (refused before it).
    """

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self._metrics = metrics
        self._routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the wrapped app, then count, time and log the request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500  # what the client sees if the app fails before it answers

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.monotonic() - started
            method = scope["method"] if scope["method"] in _METHODS else "other"
            route = self._route(scope)
            self._metrics.requests.labels(method, route, str(status)).inc()
            self._metrics.duration.labels(method, route).observe(elapsed)
            access_log.info(
                "%s %s %d %.3f s", method, route, status, elapsed, extra=_access_fields(scope)
            )

    def _route(self, scope: Scope) -> str:
        """The template of the route that served (or would have served) the request."""
        route = scope.get("route") or _matching(self._routes, scope)
        path = getattr(route, "path", None)
        return path if isinstance(path, str) and path else UNMATCHED


def _access_fields(scope: Scope) -> dict[str, str] | None:
    """The access line's log fields that only the scope knows once the request was answered:
    the key's fingerprint (set by the key middleware, which runs inside this one) and the job
    id of a ``/v1/jobs/{job_id}`` route (its context variable is set inside the route)."""
    fields = {
        "key_fingerprint": scope.get("state", {}).get("key_fingerprint"),
        "job_id": scope.get("path_params", {}).get("job_id"),
    }
    return {name: value for name, value in fields.items() if isinstance(value, str)} or None


def _matching(routes: Sequence[BaseRoute], scope: Scope) -> BaseRoute | None:
    """The route the router would pick for ``scope`` (fully, or all but the method).

    FastAPI keeps an included router as one route wrapping it (``original_router``), whose
    own match names no route: its routes are searched instead.
    """
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            found = _matching(included.routes, scope)
        elif route.matches(scope)[0] is not Match.NONE:
            found = route
        else:
            found = None
        if found is not None:
            return found
    return None


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """The app's metrics in Prometheus' text format 0.0.4 (every Prometheus reads it)."""
    registry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)

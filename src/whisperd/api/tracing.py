"""OpenTelemetry traces of the server's HTTP requests and WebSockets (the ``otel`` extra).

With ``otel_endpoint`` set, :func:`install_tracing` instruments the app with FastAPI's own
OpenTelemetry instrumentation (``opentelemetry-instrumentation-fastapi``): one ``SERVER`` span
per request or WebSocket, named by method and route *template* (``GET /v1/jobs/{job_id}``,
with ``http.route``), its status, and the ``traceparent`` of an incoming request as its parent
(W3C trace context). Spans go through a batching processor to the collector's OTLP/HTTP
``/v1/traces``, on this app's own ``TracerProvider`` (never the global one), which the
lifespan shuts down (flushing what is left) when the app stops.

:class:`SpanContextMiddleware` adds whisperd's log fields to each span, so a trace and its log
lines can be joined: :data:`REQUEST_ID_ATTRIBUTE`, and as the answer starts
:data:`KEY_FINGERPRINT_ATTRIBUTE` (never the key) and :data:`JOB_ID_ATTRIBUTE` on the job
routes. Each request starts from an empty trace context (:class:`_FreshTraceContext`), so a
keep-alive connection's requests are separate traces. Nothing else is added: no transcript
text, no form fields, no request headers (the headers that carry keys are masked even where
``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*`` asks for headers), and the per-message
``send``/``receive`` spans are left out.

The OpenTelemetry packages are imported only here and only when tracing is on, so a server
without the extra starts as before; with the setting and without the extra,
:func:`install_tracing` raises :class:`~whisperd.errors.StartupError` before the server
listens. :func:`close_tracing` undoes it all when the app stops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from whisperd.errors import StartupError

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from whisperd.config import Settings

__all__ = [
    "JOB_ID_ATTRIBUTE",
    "KEY_FINGERPRINT_ATTRIBUTE",
    "REQUEST_ID_ATTRIBUTE",
    "SpanContextMiddleware",
    "close_tracing",
    "install_tracing",
    "span_exporter",
]

REQUEST_ID_ATTRIBUTE: Final = "whisperd.request_id"
"""The span attribute holding the request's id (its ``x-request-id``, the logs' ``request_id``)."""
KEY_FINGERPRINT_ATTRIBUTE: Final = "whisperd.key_fingerprint"
"""The span attribute holding the API key's fingerprint (the logs' ``key_fingerprint``)."""
JOB_ID_ATTRIBUTE: Final = "whisperd.job_id"
"""The span attribute holding the job id of a ``/v1/jobs/{job_id}`` route (the logs' ``job_id``)."""

TRACES_PATH: Final = "/v1/traces"
"""Where an OTLP/HTTP collector takes spans, below its base URL (the OTLP exporter spec)."""

_EXTRA_HINT: Final = "install the otel extra: pip install 'whisperd[otel]'"
_MASKED_HEADERS: Final = ["authorization", "sec-websocket-protocol", "cookie", "set-cookie"]
"""Headers never recorded as they are (keys, a browser's Realtime key), whatever the
instrumentation's environment variables ask for."""


def _missing(exc: ImportError) -> StartupError:
    """The startup error of tracing asked for without the ``otel`` extra."""
    return StartupError(
        f"Tracing is on (WHISPERD_OTEL_ENDPOINT) but OpenTelemetry is not installed "
        f"(no module {exc.name or exc}): {_EXTRA_HINT}, or unset WHISPERD_OTEL_ENDPOINT."
    )


def span_exporter(settings: Settings) -> SpanExporter:
    """The exporter of the settings' collector: OTLP over HTTP (protobuf) to
    ``otel_endpoint`` + ``/v1/traces``. Its headers, timeout and TLS come from the standard
    ``OTEL_EXPORTER_OTLP_*`` variables, which the exporter reads itself.

    Raises:
        StartupError: if the ``otel`` extra is not installed.
    """
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise _missing(exc) from None
    return OTLPSpanExporter(endpoint=f"{settings.otel_endpoint}{TRACES_PATH}")


def install_tracing(app: FastAPI, settings: Settings) -> TracerProvider:
    """Trace ``app``'s requests and WebSockets to the settings' collector (see the module).

    Call it while building the app, before it serves; add :class:`SpanContextMiddleware`
    inside the request-id middleware. Shut the returned provider down when the app stops.

    Returns:
        The app's tracer provider (``service.name`` from ``otel_service_name``).

    Raises:
        StartupError: if the ``otel`` extra is not installed.
    """
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise _missing(exc) from None
    resource = Resource.create({SERVICE_NAME: settings.otel_service_name})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(span_exporter(settings)))
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        exclude_spans=["receive", "send"],
        http_capture_headers_sanitize_fields=_MASKED_HEADERS,
    )
    # Outside the instrumentation's own middleware, the way it wraps the app itself (the
    # override of an instance's method mypy refuses); uninstrument_app drops it with the rest.
    instrumented = app.build_middleware_stack

    def build_middleware_stack() -> ASGIApp:
        return _FreshTraceContext(instrumented())

    app.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]
    return provider


class _FreshTraceContext:
    """Start every request with no current span, outside the instrumentation.

    uvicorn resumes reading a keep-alive connection from the request task that read the body,
    so the next request's task copies that task's context, span included: its span would be
    an ``INTERNAL`` child of the previous request's, and its ``traceparent`` ignored.
    """

    def __init__(self, app: ASGIApp) -> None:
        from opentelemetry import context  # the otel extra (install_tracing)

        self.app = app
        self._context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = self._context.attach(self._context.Context())
        try:
            await self.app(scope, receive, send)
        finally:
            self._context.detach(token)


def close_tracing(app: FastAPI, provider: TracerProvider) -> None:
    """Stop tracing ``app`` once it stopped serving: undo the instrumentation (with its patch
    of Starlette's ``BackgroundTask``, which is process-wide) and shut ``provider`` down,
    exporting the spans still batched. Blocking (the last export); run it in a thread."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.uninstrument_app(app)
    provider.shutdown()


class SpanContextMiddleware:
    """Put the request id, key fingerprint and job id on the request's span (see the module).

    Place it inside :class:`~whisperd.api.middleware.RequestIdMiddleware` (the id is chosen
    there) and outside the API-key check (whose fingerprint it reads from the scope's state
    as the answer starts). Without a recording span it does nothing.

    Args:
        app: The ASGI app to wrap.
    """

    def __init__(self, app: ASGIApp) -> None:
        from opentelemetry.trace import get_current_span  # the otel extra (install_tracing)

        self.app = app
        self._current_span: Callable[[], Span] = get_current_span

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the wrapped app, annotating the request's span as it starts and as it is
        answered."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        span = self._current_span()
        if not span.is_recording():
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id")
        if request_id:
            span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id)

        async def annotating_send(message: Message) -> None:
            # The span may end with the response (before background tasks): annotate first.
            if message["type"] in _ANSWERS:
                _annotate_answered(span, scope)
            await send(message)

        await self.app(scope, receive, annotating_send)


_ANSWERS: Final = ("http.response.start", "websocket.accept", "websocket.http.response.start")
"""The messages by which a request is answered: the key was checked, the route matched."""


def _annotate_answered(span: Span, scope: Scope) -> None:
    """What is known once the request is answered: the key's fingerprint, the job id."""
    fingerprint = scope.get("state", {}).get("key_fingerprint")
    if fingerprint:
        span.set_attribute(KEY_FINGERPRINT_ATTRIBUTE, fingerprint)
    job_id = scope.get("path_params", {}).get("job_id")
    if isinstance(job_id, str) and job_id:
        span.set_attribute(JOB_ID_ATTRIBUTE, job_id)

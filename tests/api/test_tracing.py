"""OpenTelemetry traces (``otel_endpoint``): a server span per request, named by its route
template, carrying the request id, key fingerprint and job id, and no transcript text.

Spans go to the SDK's in-memory exporter in place of the OTLP one: nothing leaves the test.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import websockets
from click.testing import CliRunner, Result
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.background import BackgroundTask

from whisperd.api import tracing
from whisperd.cli import cli
from whisperd.config import Settings
from whisperd.testing import ScriptedModel

DATA = Path(__file__).parents[1] / "data"
KEY = "sk-trace-secret-1"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """Where the app's spans go instead of the collector."""
    memory = InMemorySpanExporter()
    monkeypatch.setattr(tracing, "span_exporter", lambda settings: memory)
    return memory


def _server_spans(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    spans = exporter.get_finished_spans()
    # No per-message send/receive spans; the only others are responses' background tasks.
    others = [span.name for span in spans if span.kind != SpanKind.SERVER]
    assert all(name.startswith("BackgroundTask ") for name in others), others
    return {
        str(span.attributes.get("whisperd.request_id")): span
        for span in spans
        if span.kind == SpanKind.SERVER
    }


def test_a_request_is_a_server_span_with_its_route_template_and_request_id(
    serve_fake: Callable[..., Any],
    settings_for: Callable[..., Settings],
    exporter: InMemorySpanExporter,
) -> None:
    settings = settings_for(
        otel_endpoint="http://collector.invalid:4318",
        otel_service_name="whisperd-test",
        api_keys=[KEY],
    )
    auth = {"authorization": f"Bearer {KEY}"}
    untouched = BackgroundTask.__call__
    with serve_fake(settings) as running, running.http() as http:
        assert running.app.state.tracer_provider is not None
        answer = http.post(
            "/v1/audio/transcriptions?debug=secret-query",
            files={"file": ("speech.wav", (DATA / "speech.wav").read_bytes())},
            data={"model": "whisper-1"},
            headers={
                **auth,
                "x-request-id": "req-trace-1",
                "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01",
            },
        )
        assert answer.status_code == 200, answer.text
        text = answer.json()["text"]
        job = http.get("/v1/jobs/job_abc", headers={**auth, "x-request-id": "req-trace-2"})
        assert job.status_code == 503  # jobs are off: still its route's span
        refused = http.get("/v1/models", headers={"x-request-id": "req-trace-3"})
        assert refused.status_code == 401
    assert BackgroundTask.__call__ is untouched  # the instrumentation was undone at shutdown

    spans = _server_spans(exporter)
    post = spans["req-trace-1"]
    assert post.name == "POST /v1/audio/transcriptions"
    assert post.attributes["http.route"] == "/v1/audio/transcriptions"
    assert post.attributes["http.status_code"] == 200
    assert (
        post.attributes["whisperd.key_fingerprint"] == hashlib.sha256(KEY.encode()).hexdigest()[:12]
    )
    assert "whisperd.job_id" not in post.attributes
    assert format(post.context.trace_id, "032x") == TRACE_ID  # the caller's trace continues
    assert post.resource.attributes["service.name"] == "whisperd-test"

    # Each request on the keep-alive connection is a trace of its own, not a child of the last.
    assert post.parent is not None
    assert post.parent.is_remote
    assert len({span.context.trace_id for span in spans.values()}) == 3
    assert all(span.parent is None for span in (spans["req-trace-2"], spans["req-trace-3"]))

    job_span = spans["req-trace-2"]
    assert job_span.name == "GET /v1/jobs/{job_id}"
    assert job_span.attributes["http.route"] == "/v1/jobs/{job_id}"
    assert job_span.attributes["whisperd.job_id"] == "job_abc"
    assert job_span.attributes["http.status_code"] == 503

    keyless = spans["req-trace-3"]
    assert keyless.attributes["http.status_code"] == 401
    assert "whisperd.key_fingerprint" not in keyless.attributes

    values = " ".join(str(value) for span in spans.values() for value in span.attributes.values())
    assert text
    assert text not in values
    assert KEY not in values


def test_a_websocket_is_a_server_span_with_its_request_id(
    serve_fake: Callable[..., Any],
    settings_for: Callable[..., Settings],
    exporter: InMemorySpanExporter,
) -> None:
    settings = settings_for(otel_endpoint="http://collector.invalid:4318", api_keys=[KEY])
    with serve_fake(settings) as running:
        url = running.url.replace("http://", "ws://") + "/v1/realtime?intent=transcription"

        async def session() -> str:
            headers = {"authorization": f"Bearer {KEY}", "x-request-id": "req-ws-1"}
            async with websockets.connect(url, additional_headers=headers) as ws:
                created = json.loads(await ws.recv())
            return str(created["type"])

        assert asyncio.run(session()) == "session.created"
    (span,) = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert span.attributes["http.route"] == "/v1/realtime"
    assert span.attributes["whisperd.request_id"] == "req-ws-1"
    assert (
        span.attributes["whisperd.key_fingerprint"] == hashlib.sha256(KEY.encode()).hexdigest()[:12]
    )


def test_the_collector_endpoint_takes_spans_at_v1_traces(
    settings_for: Callable[..., Settings],
) -> None:
    settings = settings_for(otel_endpoint="http://collector.invalid:4318/")
    exporter = tracing.span_exporter(settings)
    assert isinstance(exporter, OTLPSpanExporter)
    assert exporter._endpoint == "http://collector.invalid:4318/v1/traces"
    exporter.shutdown()


@pytest.mark.parametrize("endpoint", ["collector:4318", "grpc://collector:4317", "http://c/x?y"])
def test_an_endpoint_that_is_not_an_http_url_is_refused(
    settings_for: Callable[..., Settings], endpoint: str
) -> None:
    with pytest.raises(ValueError, match="not an OTLP/HTTP endpoint"):
        settings_for(otel_endpoint=endpoint)


def _serve(*args: str) -> Result:
    return CliRunner().invoke(cli, ["serve", "--port", "0", *args], catch_exceptions=False)


def _one_error_line(result: Result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: "), result.output
    return lines[0]


def test_tracing_without_the_otel_extra_stops_serve_with_one_line(
    scripted_model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.instrumentation.fastapi", None)
    result = _serve(
        "--model", str(scripted_model.path), "--otel-endpoint", "http://collector.invalid:4318"
    )
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert "WHISPERD_OTEL_ENDPOINT" in line
    assert "pip install 'whisperd[otel]'" in line


def test_a_metrics_port_in_use_stops_serve_with_one_line(scripted_model: ScriptedModel) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _serve("--model", str(scripted_model.path), "--metrics-port", str(port))
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert f"Cannot serve /metrics on 127.0.0.1:{port} (WHISPERD_METRICS_PORT)" in line
    assert "in use" in line

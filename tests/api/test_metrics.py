"""``/metrics``: Prometheus names, bounded labels and exact counts after real requests."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from waiting import wait_until
from whisperd.app import create_app, start_metrics_server
from whisperd.audio.decode import AudioSource, decode_audio
from whisperd.config import Settings

DATA = Path(__file__).parents[1] / "data"
SPEECH = (DATA / "speech.wav").read_bytes()
TRANSCRIPTIONS = "/v1/audio/transcriptions"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(http: httpx.Client, **headers: str) -> Samples:
    response = http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests_counted(http: httpx.Client, expected: float, **labels: str) -> Samples:
    """Scrape until the HTTP counter of ``labels`` reaches ``expected`` (a request is counted
    once its response has gone, which the client may see first); the last scrape."""
    seen: list[Samples] = []

    def reached() -> bool:
        seen.append(scrape(http))
        return value(seen[-1], "whisperd_http_requests_total", **labels) >= expected

    wait_until(reached, f"the request counter of {labels} did not reach {expected}")
    return seen[-1]


def transcribe(http: httpx.Client, audio: bytes, name: str = "speech.wav") -> httpx.Response:
    return http.post(TRANSCRIPTIONS, files={"file": (name, audio)}, data={"model": "whisper-1"})


def test_requests_are_counted_by_route_template_method_and_status(
    serve_fake: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    duration = decode_audio(AudioSource(SPEECH)).duration
    with serve_fake(settings_for()) as running, running.http() as http:
        for _ in range(3):
            assert transcribe(http, SPEECH).status_code == 200
        corrupt = transcribe(http, (DATA / "corrupt.mp3").read_bytes(), "corrupt.mp3")
        assert corrupt.status_code == 400
        # Jobs are off on this server: 503, counted under the route template.
        assert http.get("/v1/jobs/job_0123?token=secret").status_code == 503
        assert http.get("/no/such/path?token=secret").status_code == 404
        assert http.request("BREW", "/health").status_code == 405  # any token is a method
        requests_counted(http, 1, method="other", route="/health", status="405")
        after = requests_counted(http, 1, method="GET", route="unmatched", status="404")
        after = requests_counted(http, 1, method="GET", route="/v1/jobs/{job_id}", status="503")

    post = {"method": "POST", "route": TRANSCRIPTIONS}
    assert value(after, "whisperd_http_requests_total", **post, status="200") == 3
    assert value(after, "whisperd_http_requests_total", **post, status="400") == 1
    assert value(after, "whisperd_http_request_duration_seconds_count", **post) == 4
    assert (
        value(after, "whisperd_http_requests_total", method="GET", route="unmatched", status="404")
        == 1
    )
    # No raw path, id or query string became a label value.
    labels = {label for _, pairs in after for _, label in pairs}
    assert not [
        label for label in labels if "job_0123" in label or "secret" in label or "/no/" in label
    ]
    # Audio and speed of the three transcriptions; the corrupt upload is a failure.
    audio = value(after, "whisperd_audio_seconds_total", priority="interactive")
    assert abs(audio - 3 * duration) < 1e-6
    assert value(after, "whisperd_real_time_factor_count", priority="interactive") == 3
    assert value(after, "whisperd_transcription_failures_total", reason="audio") == 1
    assert value(after, "whisperd_transcription_failures_total", reason="model") == 0
    # Nothing is running or waiting once they answered; the fake engine's model is loaded.
    assert value(after, "whisperd_requests_in_flight") == 0
    assert value(after, "whisperd_requests_waiting") == 0
    assert value(after, "whisperd_queued_audio_seconds") == 0
    assert value(after, "whisperd_streams_active") == 0
    assert value(after, "whisperd_models_loaded") == 1
    for reason in ("requests", "wait", "audio", "streams", "decoded_audio"):
        assert value(after, "whisperd_admission_rejections_total", reason=reason) == 0


def test_an_unknown_model_is_a_model_failure(
    serve_fake: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    with serve_fake(settings_for()) as running, running.http() as http:
        response = http.post(
            TRANSCRIPTIONS, files={"file": ("speech.wav", SPEECH)}, data={"model": "no-such"}
        )
        assert response.status_code in (400, 404), response.text
        after = requests_counted(
            http, 1, method="POST", route=TRANSCRIPTIONS, status=str(response.status_code)
        )
    assert value(after, "whisperd_transcription_failures_total", reason="model") == 1
    assert value(after, "whisperd_audio_seconds_total", priority="interactive") == 0


def test_metrics_need_the_api_key_when_keys_are_set(
    serve_fake: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    with serve_fake(settings_for(api_keys=["k-1"])) as running, running.http() as http:
        refused = http.get("/metrics")
        assert refused.status_code == 401
        assert "whisperd_" not in refused.text
        wrong = http.get("/metrics", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        seen: list[Samples] = []

        def counted() -> bool:
            seen.append(scrape(http, authorization="Bearer k-1"))
            labels = {"method": "GET", "route": "/metrics", "status": "401"}
            return value(seen[-1], "whisperd_http_requests_total", **labels) == 2

        # The refused requests never reached the router, yet carry the route's template.
        wait_until(counted, "the refused scrapes were not counted")


def test_model_load_and_batches_of_a_real_engine(
    serve: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    with serve(settings_for()) as running, running.http() as http:
        assert transcribe(http, SPEECH).status_code == 200
        after = requests_counted(http, 1, method="POST", route=TRANSCRIPTIONS, status="200")
    assert value(after, "whisperd_model_load_seconds_count") == 1
    assert value(after, "whisperd_model_load_seconds_sum") > 0
    assert value(after, "whisperd_models_loaded") == 1
    info = [labels for (name, labels) in after if name == "whisperd_model_loaded_info"]
    assert len(info) == 1
    assert {("device", "cpu"), ("compute_type", "int8")} <= info[0]
    # One request alone: every model call held one request call; each was timed.
    for kind in ("encode", "generate"):
        calls = value(after, "whisperd_batch_size_count", kind=kind)
        assert calls >= 1, kind
        assert value(after, "whisperd_batch_size_sum", kind=kind) == calls
        assert value(after, "whisperd_batch_size_bucket", kind=kind, le="1.0") == calls
        assert value(after, "whisperd_batch_wait_seconds_count", kind=kind) == calls


def test_metrics_on_their_own_port_leave_the_main_port(
    serve_fake: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = settings_for(api_keys=["k-1"], metrics_port=port)
    with serve_fake(settings) as running, running.http() as http:
        keyed = {"authorization": "Bearer k-1"}
        assert http.get("/metrics", headers=keyed).status_code == 404
        server = start_metrics_server(running.app, "127.0.0.1", port)
        seen: list[Samples] = []

        def counted() -> bool:
            # No key on the metrics port, and the same registry as the app's.
            response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
            assert response.status_code == 200
            seen.append(parse(response.text))
            return value(seen[-1], "whisperd_http_requests_total", **labels) == 1

        labels = {"method": "GET", "route": "unmatched", "status": "404"}
        try:
            wait_until(counted, "the main port's 404 was not counted")
        finally:
            server.shutdown()
            server.server_close()
    assert value(seen[-1], "whisperd_models_loaded") == 1


def test_each_app_has_its_own_registry(settings_for: Callable[..., Settings]) -> None:
    one, two = create_app(settings_for()), create_app(settings_for())
    assert one.state.metrics_registry is not two.state.metrics_registry


def test_stream_finals_are_timed_and_streams_counted(
    serve_fake: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    import websockets
    from test_stream import METADATA, pcm_chunks, run_client, ws_url

    frames = pcm_chunks("speech.wav") + [bytes(32000)] * 2  # then a second of silence
    with serve_fake(settings_for()) as running, running.http() as http:

        async def while_open() -> None:
            async with websockets.connect(ws_url(running)) as ws:
                await ws.send(json.dumps(METADATA))
                opened = lambda: value(scrape(http), "whisperd_streams_active") == 1  # noqa: E731
                await asyncio.to_thread(wait_until, opened, "the open stream was not counted")

        asyncio.run(while_open())
        messages = asyncio.run(run_client(ws_url(running), list(frames)))
        finals = [m for m in messages if m.get("type") == "transcription" and m["is_final"]]
        assert finals
        seen: list[Samples] = []

        def closed() -> bool:  # the server lets go of the stream just after the client
            seen.append(scrape(http))
            return value(seen[-1], "whisperd_streams_active") == 0

        wait_until(closed, "the stream was still counted as open")
    assert value(seen[-1], "whisperd_stream_final_latency_seconds_count") == len(finals)


def test_the_grafana_dashboard_plots_only_metrics_the_server_has(
    serve_fake: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    dashboard = json.loads(
        (Path(__file__).parents[2] / "docs" / "grafana-dashboard.json").read_text()
    )
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    plotted = {
        re.sub(r"_(bucket|sum|count|total)$", "", name)
        for expr in exprs
        for name in re.findall(r"whisperd_\w+", expr)
    }
    with serve_fake(settings_for()) as running, running.http() as http:
        text = http.get("/metrics").text
    # The client library adds a ``_created`` timestamp beside each counter and histogram.
    families = {
        family.name
        for family in text_string_to_metric_families(text)
        if not family.name.endswith("_created")
    }
    assert plotted <= families, plotted - families
    # Every family of the server is on the dashboard.
    assert families - plotted == set()


def test_the_metrics_port_must_differ_from_the_servers() -> None:
    with pytest.raises(ValidationError, match="metrics port must differ"):
        Settings(_env_file=None, port=8000, metrics_port=8000)
    with pytest.raises(ValidationError, match="metrics_port"):
        Settings(_env_file=None, metrics_port=0)


def test_a_draining_server_still_shows_its_metrics(
    serve_fake: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    with serve_fake(settings_for()) as running, running.http() as http:
        running.app.state.draining = True
        try:
            refused = http.get("/v1/models")
            samples = scrape(http)
        finally:
            running.app.state.draining = False
    assert refused.status_code == 503
    assert value(samples, "whisperd_models_loaded") == 1

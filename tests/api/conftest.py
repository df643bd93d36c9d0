"""A real whisperd server on a loopback port, driven by the official openai SDK."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from fastapi import FastAPI

from waiting import joined, wait_until
from whisperd.app import HTTP_PARSER, create_app
from whisperd.audio.decode import AudioSource, decode_audio
from whisperd.config import Settings
from whisperd.engine.base import Transcript
from whisperd.engine.options import TranscribeOptions
from whisperd.service import TranscriptionService
from whisperd.testing import FakeEngine, ScriptedModel, fake_loader
from whisperd.testing.hub import hub_cache

DATA = Path(__file__).parents[1] / "data"


@dataclass
class RunningServer:
    """A server started for a test."""

    url: str
    app: FastAPI
    clients: list[openai.OpenAI] = field(default_factory=list)

    def client(self, api_key: str = "unused", **kwargs: Any) -> openai.OpenAI:
        """An openai SDK client pointed at this server (no retries: errors show at once)."""
        client = openai.OpenAI(base_url=f"{self.url}/v1", api_key=api_key, max_retries=0, **kwargs)
        self.clients.append(client)
        return client

    def http(self) -> httpx.Client:
        """A plain HTTP client for what the SDK does not send."""
        return httpx.Client(base_url=self.url, timeout=60)


@contextmanager
def _serve(
    settings: Settings, service: TranscriptionService | None = None
) -> Iterator[RunningServer]:
    """Run ``create_app(settings, service=service)`` under uvicorn on 127.0.0.1 in a thread."""
    app = create_app(settings, service=service)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", http=HTTP_PARSER
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), "the test server did not start")
    assert server.started, "the test server stopped while it started"
    # The default model loads in the background (preload_model); tests start on a ready server.
    wait_until(lambda: app.state.service.readiness != "loading", "the default model did not load")
    port = server.servers[0].sockets[0].getsockname()[1]
    running = RunningServer(f"http://127.0.0.1:{port}", app)
    try:
        yield running
    finally:
        for client in running.clients:
            client.close()
        server.should_exit = True
        joined(thread)


@pytest.fixture(scope="session")
def serve() -> Callable[[Settings], Any]:
    """``with serve(settings) as running:`` starts a server for one test."""
    return _serve


@pytest.fixture(scope="module")
def settings_for(scripted_model: ScriptedModel) -> Callable[..., Settings]:
    """Settings for a test server on the scripted model, with overrides."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "model": str(scripted_model.path),
            "device": "cpu",
            "compute_type": "int8",
            "offline": True,  # no test may reach the network, even by asking for a Hub model
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture(scope="module")
def real_server(real_model: Path) -> Iterator[RunningServer]:
    """One server on the real Whisper tiny.en (CPU int8), shared by a test module."""
    settings = Settings(
        _env_file=None, model=str(real_model), device="cpu", compute_type="int8", offline=True
    )
    with _serve(settings) as running:
        yield running


@pytest.fixture(scope="module")
def server(settings_for: Callable[..., Settings]) -> Iterator[RunningServer]:
    """One server with default settings, shared by a test module."""
    with _serve(settings_for()) as running:
        yield running


@pytest.fixture(scope="module")
def native_server(
    settings_for: Callable[..., Settings],
    scripted_model: ScriptedModel,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    """A fake-engine server whose offline model cache holds large-v3 and large-v3-turbo (the
    scripted model's files, so both names resolve as real ones do)."""
    cache = hub_cache(
        tmp_path_factory.mktemp("hub"),
        scripted_model.path,
        ["Systran/faster-whisper-large-v3", "mobiuslabsgmbh/faster-whisper-large-v3-turbo"],
    )
    with _serve_fake(settings_for(model="large-v3-turbo", models_dir=cache)) as running:
        yield running


@contextmanager
def _serve_fake(settings: Settings, gate: threading.Event | None = None) -> Iterator[RunningServer]:
    """:func:`_serve` with fake engines (:mod:`whisperd.testing.fake`) behind the real service.

    For tests of wire behaviour: routes, envelopes, framing and admission run for real, and a
    transcription takes no model time. ``gate`` holds every engine's windows after the first
    until it is set.
    """
    service = TranscriptionService.create(settings, loader=fake_loader(gate=gate))
    try:
        with _serve(settings, service) as running:
            yield running
    finally:
        service.close()


@pytest.fixture(scope="session")
def serve_fake() -> Callable[..., Any]:
    """``with serve_fake(settings, gate) as running:`` starts a fake-engine server for one test."""
    return _serve_fake


@pytest.fixture(scope="module")
def engine_gate() -> Iterator[threading.Event]:
    """The gate of :func:`fake_server`'s engines: open, unless a test holds work on the model
    (it closes the gate and opens it again when done)."""
    gate = threading.Event()
    gate.set()
    yield gate
    gate.set()


@pytest.fixture(scope="module")
def fake_server(
    settings_for: Callable[..., Settings], engine_gate: threading.Event
) -> Iterator[RunningServer]:
    """One fake-engine server with default settings, shared by a test module."""
    with _serve_fake(settings_for(), engine_gate) as running:
        yield running


@pytest.fixture(scope="session")
def fake_transcript() -> Callable[..., Transcript]:
    """``fake_transcript(audio, **options)``: what a fake engine makes of ``audio`` (the name
    of a clip in tests/data, or a file's bytes): the transcript a fake-engine server delivers."""
    engine = FakeEngine()

    def transcribe(audio: str | bytes, **options: Any) -> Transcript:
        source = AudioSource(DATA / audio if isinstance(audio, str) else audio)
        return engine.transcribe(decode_audio(source).samples, TranscribeOptions(**options))

    return transcribe

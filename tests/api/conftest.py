"""A real whisperd server on a loopback port, driven by the official openai SDK."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from fastapi import FastAPI

from whisperd.app import create_app
from whisperd.config import Settings
from whisperd.testing import ScriptedModel
from whisperd.testing.hub import hub_cache


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
def _serve(settings: Settings) -> Iterator[RunningServer]:
    """Run ``create_app(settings)`` under uvicorn on 127.0.0.1 in a thread."""
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    running = RunningServer(f"http://127.0.0.1:{port}", app)
    try:
        yield running
    finally:
        for client in running.clients:
            client.close()
        server.should_exit = True
        thread.join(timeout=30)


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
    """A server whose offline model cache holds large-v3 and large-v3-turbo (the scripted model)."""
    cache = hub_cache(
        tmp_path_factory.mktemp("hub"),
        scripted_model.path,
        ["Systran/faster-whisper-large-v3", "mobiuslabsgmbh/faster-whisper-large-v3-turbo"],
    )
    with _serve(settings_for(model="large-v3-turbo", models_dir=cache)) as running:
        yield running

"""A whisperd server on the real tiny.en and Debian's Chromium driven by Playwright, shared by
the web page's tests and its screenshot script."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import uvicorn

from whisperd.app import create_app
from whisperd.config import Settings
from whisperd.testing.speech import SpokenText, conversation, real_model_path, speak

if TYPE_CHECKING:
    from fastapi import FastAPI
    from playwright.sync_api import Browser, Playwright

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium (Playwright's own browser download is not used)."""
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WAIT_MS = 60_000
"""Longest wait for anything in the page."""
API_KEY = "web-test-key"
SPOKEN = "What time does the train leave for the city?"
LIVE_SENTENCES = (
    "Please close the window before you go to bed.",
    "The weather was cold and windy all day long.",
)


@dataclass
class WebServer:
    """A running server: its base URL and app."""

    url: str
    app: FastAPI


@contextmanager
def web_server(data_dir: Path, *, api_keys: tuple[str, ...] = (API_KEY,)) -> Iterator[WebServer]:
    """Serve whisperd on the real tiny.en with jobs on (``data_dir``) and ``api_keys``, under
    uvicorn on a free loopback port in a thread, until the block ends."""
    settings = Settings(
        _env_file=None,
        model=str(real_model_path()),
        device="cpu",
        compute_type="int8",
        offline=True,
        data_dir=data_dir,
        api_keys=list(api_keys),
    )
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="web-test-server", daemon=True)
    thread.start()
    try:
        _wait(lambda: server.started or not thread.is_alive(), "the server did not start")
        assert server.started, "the server stopped while starting"
        _wait(lambda: app.state.service.readiness != "loading", "the model did not load")
        port = server.servers[0].sockets[0].getsockname()[1]
        yield WebServer(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(60)


def _wait(predicate: Callable[[], object], message: str, within: float = 60.0) -> None:
    """Return once ``predicate()`` is true; raise TimeoutError with ``message`` after ``within``
    seconds (the screenshot script runs outside pytest, so this does not fail a test)."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(message)
        time.sleep(0.01)


def launch(playwright: Playwright, fake_microphone: Path | None = None) -> Browser:
    """Debian's Chromium, headless; with ``fake_microphone`` (a WAV file) as the microphone,
    played once, and microphone prompts granted."""
    args = list(CHROMIUM_ARGS)
    if fake_microphone is not None:
        args += [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={fake_microphone}%noloop",
        ]
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)


def write_speech(folder: Path) -> tuple[Path, Path]:
    """``speech.wav`` (one spoken sentence, :data:`SPOKEN`) and ``live.wav`` (two sentences of
    :data:`LIVE_SENTENCES` with pauses, then 3 s of silence for the last turn to end)."""
    spoken = folder / "speech.wav"
    spoken.write_bytes(speak(SPOKEN).wav_bytes())
    talk = conversation(LIVE_SENTENCES, pause_s=1.0, lead_s=0.5)
    tail = np.zeros(16000 * 3, dtype=np.float32)
    live = folder / "live.wav"
    live.write_bytes(SpokenText(np.concatenate([talk.samples, tail]), talk.text).wav_bytes())
    return spoken, live

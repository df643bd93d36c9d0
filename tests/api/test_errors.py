"""Error mapping (both envelopes) and mid-stream failures, in process."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import wave
from typing import Any

import httpx
import numpy as np
import pytest

from whisperd.api.disconnect import until_disconnected
from whisperd.api.errors import domain_error_response
from whisperd.app import create_app
from whisperd.config import Settings
from whisperd.errors import (
    AudioTooLongError,
    CancelledError,
    CorruptAudioError,
    InvalidOptionError,
    ModelUnavailableError,
    QueueFullError,
    TranscriptionError,
    UnknownModelError,
    UrlBlockedError,
    UrlFetchError,
    UrlTimeoutError,
    UrlTooLargeError,
    WhisperdError,
)
from whisperd.service import Cancellation, TranscriptionService
from whisperd.testing.fake import fake_loader


@pytest.mark.parametrize(
    ("error", "status", "type_", "no_retry"),
    [
        (InvalidOptionError("bad", param="beam_size"), 400, "invalid_request_error", False),
        (CorruptAudioError("bad"), 400, "invalid_request_error", False),
        (AudioTooLongError("long"), 413, "invalid_request_error", False),
        (UnknownModelError("who"), 404, "invalid_request_error", False),
        (ModelUnavailableError("offline"), 503, "server_error", True),
        (TranscriptionError("oom"), 500, "server_error", True),
        (UrlBlockedError("no"), 400, "invalid_request_error", False),
        (UrlFetchError("404"), 400, "invalid_request_error", False),
        (UrlTooLargeError("big"), 413, "invalid_request_error", False),
        (UrlTimeoutError("slow"), 408, "invalid_request_error", False),
        (CancelledError("gone"), 499, "invalid_request_error", False),
    ],
)
def test_each_domain_error_has_its_status_and_envelope(
    error: WhisperdError, status: int, type_: str, no_retry: bool
) -> None:
    response = domain_error_response(error)
    assert response.status_code == status
    body = json.loads(response.body)
    assert body == {
        "error": {"message": error.message, "type": type_, "param": error.param, "code": error.code}
    }
    assert (response.headers.get("x-should-retry") == "false") is no_retry


def test_queue_full_says_when_to_retry() -> None:
    response = domain_error_response(QueueFullError("full", retry_after=7))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert "x-should-retry" not in response.headers


def _wav(seconds: float) -> bytes:
    samples = (np.random.default_rng(0).standard_normal(int(16000 * seconds)) * 1600).astype(
        np.int16
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


def test_an_error_after_the_stream_started_is_an_error_event(scripted_model) -> None:
    settings = Settings(
        _env_file=None,
        model=str(scripted_model.path),
        device="cpu",
        compute_type="int8",
        offline=True,
    )
    # A fake engine that decodes the first 30 s window, then fails at its closed gate.
    loader = fake_loader(gate=threading.Event(), gate_timeout_s=0.05)
    service = TranscriptionService.create(settings, loader=loader)
    response = asyncio.run(_stream_request(create_app(settings, service=service)))
    service.close()
    frames = [json.loads(line[6:]) for line in response.text.splitlines() if line]
    assert frames[0]["type"] == "transcript.text.delta"
    assert frames[1]["error"]["code"] == "transcription_failed"
    assert frames[1]["error"]["type"] == "server_error"


async def _stream_request(app: Any) -> httpx.Response:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post(
                "/v1/audio/transcriptions",
                files={"file": ("a.wav", _wav(45))},
                data={"model": "whisper-1", "stream": "true", "vad_filter": "false"},
            )
    return response


class _Request:
    def __init__(self, disconnected: bool) -> None:
        self.disconnected = disconnected

    async def is_disconnected(self) -> bool:
        return self.disconnected


def test_a_disconnected_client_cancels_its_work() -> None:
    given: list[Cancellation] = []

    async def forever(cancel: Cancellation) -> None:
        given.append(cancel)
        await asyncio.sleep(3600)

    with pytest.raises(CancelledError):
        asyncio.run(until_disconnected(_Request(True), forever))  # type: ignore[arg-type]
    assert given[0].cancelled


def test_work_finishing_first_is_returned() -> None:
    given: list[Cancellation] = []

    async def quick(cancel: Cancellation) -> int:
        given.append(cancel)
        return 42

    result = asyncio.run(until_disconnected(_Request(False), quick))  # type: ignore[arg-type]
    assert result == 42
    assert not given[0].cancelled


@pytest.mark.parametrize(
    ("error", "status", "detail"),
    [
        (CorruptAudioError("bad packets"), 400, "Failed to process audio: bad packets"),
        (InvalidOptionError("English-only"), 400, "Transcription failed: English-only"),
        (
            UnknownModelError("Unknown model 'X'. Available: []"),
            400,
            "Unknown model 'X'. Available: []",
        ),
        (ModelUnavailableError("offline"), 503, "offline"),
        (
            TranscriptionError("Transcription failed: CUDA out of memory"),
            500,
            "Transcription failed: CUDA out of memory",
        ),
        (QueueFullError("busy"), 503, "busy"),
    ],
)
def test_native_errors_are_detail_strings(error: WhisperdError, status: int, detail: str) -> None:
    from whisperd.api.errors import native_error_response

    response = native_error_response(error)
    assert response.status_code == status
    assert json.loads(response.body) == {"detail": detail}

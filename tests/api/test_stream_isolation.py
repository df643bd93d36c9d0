"""Streams keep their own capacity: HTTP load cannot hold back a stream's final."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
import websockets

from whisperd.config import Settings
from whisperd.scheduler.batcher import Priority
from whisperd.service import TranscriptionService, whisper_loader

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from conftest import RunningServer
    from whisperd.engine.base import Engine, ModelInfo, SegmentCallback, Transcript
    from whisperd.engine.hub import ResolvedModel
    from whisperd.engine.options import TranscribeOptions

from test_stream import DATA, METADATA, pcm_chunks, ws_url

_DEADLINE_S = 120.0


class GatedEngine:
    """An engine whose HTTP transcriptions (interactive priority) wait at a gate."""

    def __init__(self, engine: Engine, gate: threading.Event, entered: threading.Event) -> None:
        self._engine = engine
        self._gate = gate
        self._entered = entered

    @property
    def info(self) -> ModelInfo:
        return self._engine.info

    def check(self, options: TranscribeOptions) -> None:
        self._engine.check(options)

    def transcribe(
        self,
        audio: npt.NDArray[np.float32],
        options: TranscribeOptions,
        on_segment: SegmentCallback | None = None,
        *,
        priority: Priority = Priority.INTERACTIVE,
        cancel: threading.Event | None = None,
    ) -> Transcript:
        if priority == Priority.INTERACTIVE:
            self._entered.set()
            assert self._gate.wait(_DEADLINE_S), "the test never opened the gate"
        return self._engine.transcribe(audio, options, on_segment, priority=priority, cancel=cancel)

    def close(self) -> None:
        self._engine.close()


@pytest.fixture
def gated(
    settings_for: Callable[..., Settings], serve: Callable[..., Any]
) -> Iterator[tuple[RunningServer, threading.Event, threading.Event]]:
    """A server holding one HTTP request at most, whose HTTP transcriptions wait at a gate."""
    settings = settings_for(max_pending_requests=1)
    gate, entered = threading.Event(), threading.Event()
    load = whisper_loader(settings)

    def loader(model: ResolvedModel, device: str, compute_type: str) -> Engine:
        return GatedEngine(load(model, device, compute_type), gate, entered)

    service = TranscriptionService.create(settings, loader=loader)
    try:
        with serve(settings, service) as running:
            yield running, gate, entered
    finally:
        gate.set()
        service.close()


async def _first_final(url: str) -> dict[str, Any]:
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps(METADATA))
        for frame in pcm_chunks("speech.wav"):
            await ws.send(frame)
        await ws.send(json.dumps({"type": "end_audio"}))
        while True:
            message = json.loads(await ws.recv())
            if message.get("type") == "transcription" and message["is_final"]:
                return message


def test_a_stream_final_arrives_while_http_requests_fill_every_slot(
    gated: tuple[RunningServer, threading.Event, threading.Event],
) -> None:
    running, gate, entered = gated
    outcome: dict[str, Any] = {}

    def post() -> None:
        with running.http() as http, (DATA / "speech.wav").open("rb") as audio:
            response = http.post(
                "/v1/audio/transcriptions",
                files={"file": audio},
                data={"model": "whisper-1"},
                timeout=_DEADLINE_S,
            )
        outcome["status"] = response.status_code

    http_request = threading.Thread(target=post)
    http_request.start()
    try:
        assert entered.wait(_DEADLINE_S), "the HTTP request never reached the model"
        assert running.app.state.service.admission.in_flight == 1  # every slot is taken

        final = asyncio.run(asyncio.wait_for(_first_final(ws_url(running)), _DEADLINE_S))

        assert final["segments"], final
        assert http_request.is_alive()  # the stream did not wait for the HTTP request
    finally:
        gate.set()
        http_request.join(_DEADLINE_S)
    assert not http_request.is_alive()
    assert outcome["status"] == 200

"""A stream asking for a language the model does not speak is refused before any audio, as the
HTTP routes refuse it: Baseten's metadata with an error and close 1007, a Realtime
``session.update`` with an ``error`` event naming the field, the session going on as before."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
import websockets
from test_realtime import pcm24, url
from test_realtime_turns import (
    COMPLETED,
    SILENCE_1S,
    append,
    count,
    gather,
    opened,
    pcm_input,
    recv,
    server_vad,
    update,
)
from test_stream import refused_metadata

from waiting import DEADLINE_S

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import RunningServer
    from whisperd.config import Settings
    from whisperd.testing import ScriptedModel


@pytest.fixture(scope="module")
def english_server(
    settings_for: Callable[..., Settings],
    serve: Callable[[Settings], Any],
    english_model: ScriptedModel,
) -> Iterator[RunningServer]:
    with serve(settings_for(model=str(english_model.path))) as running:
        yield running


def test_baseten_metadata_in_a_language_the_model_lacks_is_refused_with_1007(
    english_server: RunningServer,
) -> None:
    error, code = refused_metadata(english_server, {"whisper_params": {"audio_language": "fr"}})
    assert error["type"] == "error"
    assert "English-only" in error["body"]["error"]
    assert "'fr'" in error["body"]["error"]
    assert code == 1007


def test_a_realtime_update_to_a_language_the_model_lacks_is_refused_and_changes_nothing(
    english_server: RunningServer,
) -> None:
    french = update(pcm_input(transcription={"language": "fr"}), event_id="to-french")
    speech = pcm24("speech.wav", silence_s=0)

    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with websockets.connect(url(english_server)) as ws:
            await opened(ws, pcm_input(turn_detection=server_vad()))
            await ws.send(french)
            refusal = await recv(ws)
            await append(ws, speech + SILENCE_1S)
            return refusal, await gather(ws, count(COMPLETED))

    refusal, events = asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S))
    assert refusal["type"] == "error"
    assert refusal["error"]["code"] == "invalid_value"
    assert refusal["error"]["param"] == "session.audio.input.transcription.language"
    assert refusal["error"]["event_id"] == "to-french"
    assert "session.updated" not in [e["type"] for e in events]
    assert next(e for e in events if e["type"] == COMPLETED)["transcript"]

"""Session events rendered by both stream protocols, without a socket."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from whisperd.api.realtime_config import RealtimeConfig
from whisperd.api.realtime_render import RealtimeRenderer
from whisperd.api.stream_events import emitter, render
from whisperd.api.stream_render import BasetenRenderer
from whisperd.engine.base import Segment, Transcript, Word
from whisperd.schemas.stream import StreamMetadata
from whisperd.streaming.session import Failed, Result, SpeechStarted, SpeechStopped


def transcript(*, silent: bool = False) -> Transcript:
    """One segment of two words; ``silent``: with Whisper's signs of decoded silence."""
    words = (Word(0.1, 0.5, " hello", 0.9), Word(0.5, 0.9, " world", 0.8))
    no_speech, logprob = (0.9, -2.0) if silent else (0.01, -0.2)
    segment = Segment(0, 0, 0.0, 1.0, " hello world", (1, 2), 0.0, logprob, 1.1, no_speech, words)
    return Transcript((segment,), "en", 0.97, 1.0)


def result(*, final: bool, stable: str = "hello world", **more: Any) -> Result:
    return Result(
        1, final, 2.0, 1.25, more.pop("transcript", transcript()), stable, "", 0.25, **more
    )


def dumped(messages: Any) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in messages]


def baseten(**streaming: Any) -> BasetenRenderer:
    return BasetenRenderer(StreamMetadata.model_validate({"streaming_params": streaming}))


def test_baseten_messages() -> None:
    renderer = baseten(include_pipeline_latency_metric=True)
    (started,) = dumped(render(renderer, SpeechStarted(1.23456, 1)))
    (stopped,) = dumped(render(renderer, SpeechStopped(2.5, 1)))
    (final,) = dumped(render(renderer, result(final=True)))
    (flush,) = dumped(render(renderer, result(final=True, end_of_audio=True)))
    (failed,) = dumped(render(renderer, Failed(1, "boom", "decode_failed")))
    assert started == {"type": "speech_started", "audio_time": 1.235, "transcription_num": 1}
    assert stopped["type"] == "speech_stopped"
    assert final["type"] == "transcription"
    assert final["pipeline_latency"] == 0.25
    assert final["segments"][0]["start_time"] == 2.0
    assert final["segments"][0]["word_timestamps"][1] == {
        "start_time": 2.5,
        "end_time": 2.9,
        "word": "world",
        "prob": 0.8,
    }
    assert "is_end_of_audio_flush" not in final
    assert flush["is_end_of_audio_flush"] is True
    assert list(flush)[:-1] == list(final)
    assert failed == {
        "type": "error",
        "body": {"error": "boom", "code": "decode_failed", "recoverable": True},
    }


def test_baseten_skips_hallucinated_partials_if_asked() -> None:
    hallucinated = result(final=False, transcript=transcript(silent=True))
    assert render(baseten(), hallucinated) == []
    assert len(render(baseten(skip_partial_if_hallucination=False), hallucinated)) == 1
    assert len(render(baseten(), result(final=True, transcript=transcript(silent=True))))


def kinds(messages: Any) -> list[str]:
    return [m["type"] for m in dumped(messages)]


def test_realtime_final_without_partials_sends_the_text_as_one_delta() -> None:
    renderer = RealtimeRenderer(beta=False)
    events = dumped(render(renderer, result(final=True)))
    delta = next(e for e in events if e["type"].endswith(".delta"))
    assert delta["delta"] == "hello world"
    assert events[0]["previous_item_id"] is None
    second = dumped(render(renderer, result(final=True)))
    assert second[0]["previous_item_id"] == events[0]["item_id"]


@pytest.mark.parametrize(
    ("beta", "kind"), [(False, "session.updated"), (True, "transcription_session.updated")]
)
def test_realtime_session_events(beta: bool, kind: str) -> None:
    event = RealtimeRenderer(beta=beta).session(RealtimeConfig(), "sess_1", created=False)
    body = event.model_dump(mode="json")
    assert body["type"] == kind
    assert body["session"]["id"] == "sess_1"
    turn = {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
    }
    if beta:
        assert body["session"]["input_audio_format"] == "pcm16"
        assert body["session"]["turn_detection"] == turn
    else:
        audio_input = body["session"]["audio"]["input"]
        assert audio_input["format"] == {"type": "audio/pcm", "rate": 24000}
        assert audio_input["turn_detection"] == turn


def test_emitter_queues_every_message() -> None:
    async def scenario() -> list[BaseModel]:
        outbox: asyncio.Queue[BaseModel] = asyncio.Queue()
        emit = emitter(RealtimeRenderer(beta=False), outbox)
        await emit(result(final=True))
        return [outbox.get_nowait() for _ in range(outbox.qsize())]

    assert len(asyncio.run(scenario())) == 4


def test_a_final_heard_in_context_counts_only_its_own_audio() -> None:
    final = result(final=True, own_duration=0.75)  # 1.25 s decoded, 0.5 s of it context
    (baseten_message,) = dumped(render(baseten(), final))
    assert baseten_message["audio_length_sec"] == 0.75

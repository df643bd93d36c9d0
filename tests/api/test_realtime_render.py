"""Realtime turns rendered without a socket: item ids, commits, deltas that spell the transcript.

The stream session's events (:mod:`whisperd.streaming.session`) go through the renderer as the
route sends them; each test checks what a client of OpenAI's Realtime API relies on.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

from whisperd.api.realtime_config import RealtimeConfig
from whisperd.api.realtime_render import RealtimeRenderer, continuation
from whisperd.api.stream_events import render
from whisperd.engine.base import Segment, Transcript
from whisperd.schemas.realtime_session import SessionChanges, TurnDetection
from whisperd.streaming.pcm import PcmDecoder
from whisperd.streaming.session import Event, Failed, Result, SpeechStarted, SpeechStopped

DELTA = "conversation.item.input_audio_transcription.delta"
COMPLETED = "conversation.item.input_audio_transcription.completed"


def transcript(text: str) -> Transcript:
    segment = Segment(0, 0, 0.0, 1.0, f" {text}", (), 0.0, -0.2, 1.1, 0.01, None)
    return Transcript((segment,), "en", 1.0, 1.0)


def partial(number: int, stable: str) -> Result:
    return Result(number, False, 0.0, 1.0, transcript(stable), stable, "", 0.1)


def final(number: int, text: str) -> Result:
    return Result(number, True, 0.0, 1.5, transcript(text), text, "", 0.1)


def play(renderer: RealtimeRenderer, *events: Event) -> list[dict[str, Any]]:
    """What the renderer sends for ``events``, as JSON."""
    return [m.model_dump(mode="json") for e in events for m in render(renderer, e)]


def deltas(sent: list[dict[str, Any]], item: str) -> list[str]:
    return [e["delta"] for e in sent if e["type"] == DELTA and e["item_id"] == item]


def completed(sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in sent if e["type"] == COMPLETED]


def item_of(event: dict[str, Any]) -> str:
    return str(event.get("item_id") or event["item"]["id"])


def test_deltas_carry_whole_stable_words_and_spell_the_transcript() -> None:
    renderer = RealtimeRenderer(beta=False)
    sent = play(
        renderer,
        SpeechStarted(0.5, 1),
        partial(1, "What time Re"),  # "Re" may grow: held back
        partial(1, "What time Re"),
        SpeechStopped(2.0, 1),
        final(1, "What time Really is it?"),
    )
    (done,) = completed(sent)
    assert deltas(sent, done["item_id"]) == ["What time", " Really is it?"]
    assert done["transcript"] == "What time Really is it?"


def test_deltas_concatenate_exactly_whatever_the_final_whitespace() -> None:
    renderer = RealtimeRenderer(beta=True)
    sent = play(
        renderer,
        SpeechStarted(0.0, 1),
        partial(1, "one two three"),
        partial(1, "one two three four five"),
        final(1, "one  two three\tfour five six."),
    )
    (done,) = completed(sent)
    pieces = deltas(sent, done["item_id"])
    assert pieces[:2] == ["one two", " three four"]
    assert "".join(pieces) == done["transcript"]
    assert done["transcript"].endswith("four five six.")


def test_a_final_that_drops_the_sent_words_keeps_them_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    renderer = RealtimeRenderer(beta=False)
    with caplog.at_level(logging.WARNING):
        sent = play(
            renderer, partial(1, "hello there world"), final(1, "Hello, their world peace.")
        )
    (done,) = completed(sent)
    assert "".join(deltas(sent, done["item_id"])) == done["transcript"]
    assert done["transcript"].startswith("hello there")
    assert "does not begin with the words sent" in caplog.text


def test_a_final_without_partials_is_one_delta_and_empty_text_none() -> None:
    renderer = RealtimeRenderer(beta=False)
    sent = play(renderer, SpeechStarted(0.0, 1), SpeechStopped(1.0, 1), final(1, "Hi."))
    empty = play(renderer, SpeechStarted(2.0, 2), SpeechStopped(3.0, 2), final(2, ""))
    assert deltas(sent, completed(sent)[0]["item_id"]) == ["Hi."]
    assert [e["type"] for e in empty if e["type"] == DELTA] == []
    assert completed(empty)[0]["transcript"] == ""


def test_continuation_is_what_follows_the_sent_words() -> None:
    assert continuation("a b c", []) == "a b c"
    assert continuation("a b c", ["a"]) == " b c"
    assert continuation("a b", ["a", "b"]) == ""
    assert continuation("a", ["a", "b"]) == ""


def test_every_event_of_a_turn_carries_its_own_item_id() -> None:
    renderer = RealtimeRenderer(beta=False)
    sent = play(
        renderer,
        SpeechStarted(0.5, 1),
        partial(1, "first turn words"),
        SpeechStopped(2.0, 1),
        SpeechStarted(2.6, 2),  # the next turn begins before the first one's final
        partial(2, "second turn words"),
        final(1, "first turn words."),
        SpeechStopped(4.0, 2),
        Failed(2, "boom", "decode_failed"),
    )
    first, second = (e["item_id"] for e in sent if e["type"].endswith("speech_started"))
    by_turn: dict[str, list[str]] = {first: [], second: []}
    for event in sent:
        by_turn[item_of(event)].append(event["type"])
    assert by_turn[first] == [
        "input_audio_buffer.speech_started",
        DELTA,
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        DELTA,
        COMPLETED,
    ]
    assert by_turn[second] == [
        "input_audio_buffer.speech_started",
        DELTA,
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.input_audio_transcription.failed",
    ]
    commits = [e for e in sent if e["type"] == "input_audio_buffer.committed"]
    assert [c["previous_item_id"] for c in commits] == [None, first]


def test_a_turn_cut_at_its_longest_is_committed_before_its_transcript() -> None:
    renderer = RealtimeRenderer(beta=True)
    sent = play(renderer, SpeechStarted(0.0, 1), final(1, "a long turn"), final(2, "goes on"))
    kinds = [e["type"] for e in sent]
    assert kinds == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.committed",
        "conversation.item.created",
        DELTA,
        COMPLETED,
        "input_audio_buffer.committed",
        "conversation.item.created",
        DELTA,
        COMPLETED,
    ]
    assert sent[5]["previous_item_id"] == sent[1]["item_id"] == sent[0]["item_id"]


def test_a_client_commit_commits_once_and_a_failed_partial_keeps_its_item() -> None:
    renderer = RealtimeRenderer(beta=False)
    commit = [m.model_dump(mode="json") for m in renderer.commit(1)]
    assert [e["type"] for e in commit] == [
        "input_audio_buffer.committed",
        "conversation.item.added",
    ]
    assert renderer.commit(1) == []
    failed_partial = play(renderer, Failed(2, "boom", "decode_failed"))
    later = play(renderer, final(2, "still here"))
    assert item_of(failed_partial[0]) == item_of(later[0])
    assert renderer.item_id(1) == commit[0]["item_id"]  # committed, awaiting its transcript
    assert renderer.item_id(2) != item_of(later[0])  # completed: done with


def test_a_clear_drops_the_turn_in_progress() -> None:
    renderer = RealtimeRenderer(beta=False)
    started = play(renderer, SpeechStarted(0.0, 1), partial(1, "soon gone words"))
    assert renderer.speaking
    renderer.cleared()
    assert not renderer.speaking
    assert renderer.item_id(1) != started[0]["item_id"]


def test_speech_stopped_sets_where_server_vad_committed() -> None:
    renderer = RealtimeRenderer(beta=False)
    play(renderer, SpeechStarted(0.25, 1))
    assert renderer.speaking
    assert renderer.stopped_at is None
    play(renderer, SpeechStopped(1.75, 1))
    assert not renderer.speaking
    assert renderer.stopped_at == 1.75


# ---------------------------------------------------------------------------------------------
# Settings that run, described as they run


@pytest.mark.parametrize(
    ("eagerness", "silence_ms"),
    [("low", 1000), ("medium", 500), ("auto", 500), ("high", 250), (None, 500)],
)
def test_semantic_vad_runs_as_server_vad_with_its_eagerness_silence(
    eagerness: str | None, silence_ms: int
) -> None:
    config = RealtimeConfig()
    turn = TurnDetection.model_validate({"type": "semantic_vad", "eagerness": eagerness})
    config.apply(SessionChanges(None, None, turn, sets_turn_detection=True))
    assert config.stream().min_silence_ms == silence_ms
    for beta in (False, True):
        body = config.describe("sess_1", beta=beta).model_dump(mode="json")
        echoed = body["turn_detection"] if beta else body["audio"]["input"]["turn_detection"]
        assert echoed == {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": silence_ms,
        }


def test_server_vad_is_echoed_with_every_setting_that_runs_and_nothing_else() -> None:
    config = RealtimeConfig()
    turn = TurnDetection.model_validate(
        {"type": "server_vad", "silence_duration_ms": 800, "idle_timeout_ms": 6000}
    )
    config.apply(SessionChanges(None, None, turn, sets_turn_detection=True))
    body = config.describe("sess_1", beta=False).model_dump(mode="json")
    assert body["audio"]["input"]["turn_detection"] == {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 800,
    }
    assert body["audio"]["input"]["noise_reduction"] is None
    beta = config.describe("sess_1", beta=True).model_dump(mode="json")
    assert beta["input_audio_noise_reduction"] is None


def test_a_law_is_described_in_both_generations() -> None:
    config = RealtimeConfig(audio_format="g711_alaw")
    ga = config.describe("sess_1", beta=False).model_dump(mode="json")
    beta = config.describe("sess_1", beta=True).model_dump(mode="json")
    assert ga["audio"]["input"]["format"] == {"type": "audio/pcma"}
    assert beta["input_audio_format"] == "g711_alaw"
    assert config.pcm().encoding == "pcm_alaw"


def test_a_law_decodes_as_ffmpeg_encodes_it() -> None:
    import av

    rng = np.random.default_rng(3)
    levels = np.concatenate([np.arange(-32768, 32768, 7), rng.integers(-32768, 32768, 4000)])
    int16 = levels.astype(np.int16)
    codec = av.CodecContext.create("pcm_alaw", "w")
    codec.sample_rate, codec.layout, codec.format = 16000, "mono", "s16"
    frame = av.AudioFrame.from_ndarray(int16[None, :], format="s16", layout="mono")
    frame.sample_rate = 16000
    encoded = b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode(None)])

    decoded = PcmDecoder("pcm_alaw", 16000).decode(encoded) * 32768

    # G.711 A-law keeps each sample within half its quantization step: 8 below 512 (steps of
    # 16), at most 1/32 of the magnitude above it; its largest level is 32256. The encoder (as
    # G.711's reference code) rounds a negative sample one 13-bit unit, 8, further.
    error = np.abs(decoded - int16)
    bound = np.maximum(8, np.abs(int16.astype(np.float64)) / 32) + 8
    clipped = np.abs(int16.astype(np.int32)) > 32256
    assert (error[~clipped] <= bound[~clipped]).all()
    assert np.abs(decoded).max() == 32256
    assert PcmDecoder("pcm_alaw", 16000).decode(bytes([0xD5, 0x55, 0xAA, 0x2A])).tolist() == [
        8 / 32768,
        -8 / 32768,
        32256 / 32768,
        -32256 / 32768,
    ]

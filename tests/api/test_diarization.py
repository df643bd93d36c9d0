"""Speaker diarization on the OpenAI API, on the real Whisper tiny.en and the real GE2E
speaker encoder: espeak-ng dialogues of distinct voices get their turns' speakers right, known
speakers their names, stereo channels a speaker each; every output shows the labels."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import numpy as np
import pytest

from whisperd.engine.base import SAMPLE_RATE
from whisperd.testing.speech import (
    SENTENCES,
    SPEAKER_VOICES,
    SpokenText,
    conversation,
    espeak_available,
    speak,
    wav_data_url,
    wav_file,
)

if TYPE_CHECKING:
    from conftest import RunningServer

pytestmark = [
    pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
pytest.importorskip("scipy")
pytest.importorskip("torch")


@pytest.fixture(scope="module")
def dialogue() -> SpokenText:
    """Six sentences, the two voices taking turns, 0.4 s between turns."""
    return conversation(SENTENCES[:6], voices=SPEAKER_VOICES, pause_s=0.4)


def turns(segments: list[dict[str, object]], dialogue: SpokenText) -> list[object]:
    """The speaker of the segment nearest each spoken sentence's middle."""
    speakers = []
    for start, end in dialogue.spans:
        middle = (start + end) / 2
        nearest = min(segments, key=lambda s: abs((s["start"] + s["end"]) / 2 - middle))  # type: ignore[operator]
        speakers.append(nearest["speaker"])
    return speakers


def post(server: RunningServer, data: dict[str, object], audio: bytes) -> dict[str, object]:
    with server.http() as http:
        response = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("dialogue.wav", audio)},
            data={"temperature": "0", **data},
        )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_sdk_parses_diarized_json_with_each_turn_s_speaker(
    real_server: RunningServer, dialogue: SpokenText
) -> None:
    client = real_server.client()
    result = client.audio.transcriptions.create(
        file=("dialogue.wav", dialogue.wav_bytes()),
        model="gpt-4o-transcribe-diarize",
        response_format="diarized_json",
        chunking_strategy="auto",  # OpenAI asks it of the diarizing model on long audio
        temperature=0.0,
    )
    assert result.task == "transcribe"
    assert result.duration == pytest.approx(dialogue.duration, abs=0.01)
    segments = [segment.model_dump() for segment in result.segments]
    assert turns(segments, dialogue) == ["A", "B", "A", "B", "A", "B"]
    assert [segment.id for segment in result.segments][:2] == ["seg_001", "seg_002"]
    assert all(segment.type == "transcript.text.segment" for segment in result.segments)
    assert result.text.startswith("A: What time does the train leave")
    assert "\nB: Please close the window" in result.text
    assert result.usage is not None
    assert result.usage.type == "duration"


def test_a_speaker_heard_once_briefly_keeps_a_label(real_server: RunningServer) -> None:
    """One 2.3 s sentence of the second voice between pauses: fewer windows than a cluster
    needs to stand on its own, but heard alone, so it is a speaker."""
    sentences = [SENTENCES[6], SENTENCES[7], SENTENCES[5], SENTENCES[9], SENTENCES[16]]
    voices = (
        SPEAKER_VOICES[0],
        SPEAKER_VOICES[0],
        SPEAKER_VOICES[1],
        SPEAKER_VOICES[0],
        SPEAKER_VOICES[0],
    )
    spoken = conversation(sentences, voices=voices, pause_s=0.6)
    result = post(
        real_server,
        {"diarize": "true", "response_format": "diarized_json"},
        spoken.wav_bytes(),
    )
    assert turns(result["segments"], spoken) == ["A", "A", "B", "A", "A"]  # type: ignore[arg-type]


def test_known_speakers_get_their_names(real_server: RunningServer, dialogue: SpokenText) -> None:
    references = [speak(" ".join(SENTENCES[8:10]), voice=voice).samples for voice in SPEAKER_VOICES]
    body = post(
        real_server,
        {
            "model": "whisper-1",
            "diarize": "true",
            "response_format": "diarized_json",
            "known_speaker_names[]": ["agent", "customer"],
            "known_speaker_references[]": [
                wav_data_url(clip[: 8 * SAMPLE_RATE]) for clip in references
            ],
        },
        dialogue.wav_bytes(),
    )
    speakers = turns(body["segments"], dialogue)  # type: ignore[arg-type]
    assert speakers == ["agent", "customer"] * 3
    assert str(body["text"]).startswith("agent: ")


def test_one_known_speaker_named_the_other_lettered(
    real_server: RunningServer, dialogue: SpokenText
) -> None:
    reference = speak(" ".join(SENTENCES[8:10]), voice=SPEAKER_VOICES[1]).samples[: 8 * SAMPLE_RATE]
    body = post(
        real_server,
        {
            "diarize": "true",
            "response_format": "diarized_json",
            "known_speaker_names[]": "customer",
            "known_speaker_references[]": wav_data_url(reference),
        },
        dialogue.wav_bytes(),
    )
    assert turns(body["segments"], dialogue) == ["A", "customer"] * 3  # type: ignore[arg-type]


def test_verbose_json_segments_and_words_carry_speakers(
    real_server: RunningServer, dialogue: SpokenText
) -> None:
    body = post(
        real_server,
        {
            "diarize": "true",
            "response_format": "verbose_json",
            "timestamp_granularities[]": ["segment", "word"],
        },
        dialogue.wav_bytes(),
    )
    segments = body["segments"]
    assert turns(segments, dialogue) == ["A", "B"] * 3  # type: ignore[arg-type]
    words = body["words"]
    assert {word["speaker"] for word in words} == {"A", "B"}  # type: ignore[union-attr,index]
    first = next(w for w in words if w["word"].strip().lower().startswith("please"))  # type: ignore[union-attr,index]
    assert first["speaker"] == "B"


def test_text_has_one_labelled_line_per_turn(
    real_server: RunningServer, dialogue: SpokenText
) -> None:
    with real_server.http() as http:
        response = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("dialogue.wav", dialogue.wav_bytes())},
            data={"diarize": "true", "response_format": "text", "temperature": "0"},
        )
    assert response.status_code == 200, response.text
    lines = response.text.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["A", "B"] * 3
    assert "close the window" in lines[1]


def test_stream_sends_a_segment_event_per_diarized_segment(
    real_server: RunningServer, dialogue: SpokenText
) -> None:
    with real_server.http() as http:
        response = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("dialogue.wav", dialogue.wav_bytes())},
            data={"model": "gpt-4o-transcribe-diarize", "stream": "true", "temperature": "0"},
        )
    assert response.status_code == 200, response.text
    events = [
        json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")
    ]
    segments = [event for event in events if event["type"] == "transcript.text.segment"]
    deltas = [event for event in events if event["type"] == "transcript.text.delta"]
    assert turns(segments, dialogue) == ["A", "B"] * 3
    assert [delta["segment_id"] for delta in deltas] == [segment["id"] for segment in segments]
    assert events[-1]["type"] == "transcript.text.done"


def test_stereo_channels_are_the_speakers_turn_by_turn(real_server: RunningServer) -> None:
    """A call: agent on the left channel, customer on the right, taking turns 0.4 s apart.
    Each channel's decode spans the other's turns in silence; the merge still follows the
    turns, each segment within its own turn."""
    turns = [speak(SENTENCES[i], voice="en-gb" if i % 2 else "en-us").samples for i in range(4)]
    gap = round(0.4 * SAMPLE_RATE)
    starts = np.cumsum([0] + [len(turn) + gap for turn in turns[:-1]])
    frames = np.zeros((starts[-1] + len(turns[-1]), 2), dtype=np.float32)
    for index, (start, turn) in enumerate(zip(starts, turns, strict=True)):
        frames[start : start + len(turn), index % 2] = turn
    body = post(
        real_server,
        {
            "multichannel": "true",
            "response_format": "diarized_json",
            "known_speaker_names[]": ["agent", "customer"],
        },
        wav_file(frames, channels=2),
    )
    segments = body["segments"]
    assert [s["speaker"] for s in segments] == ["agent", "customer"] * 2  # type: ignore[index,union-attr]
    for segment, start, turn, phrase in zip(
        segments,  # type: ignore[arg-type]
        starts,
        turns,
        ["time does the train", "close the window", "windy", "bicycle"],
        strict=True,
    ):
        begins, ends = start / SAMPLE_RATE, (start + len(turn)) / SAMPLE_RATE
        assert begins - 0.5 <= segment["start"] < segment["end"] <= ends + 0.5
        assert phrase in segment["text"]


def test_multichannel_on_mono_is_its_one_channel(
    real_server: RunningServer, dialogue: SpokenText
) -> None:
    body = post(
        real_server,
        {"multichannel": "true", "response_format": "diarized_json"},
        speak(SENTENCES[0]).wav_bytes(),
    )
    assert {segment["speaker"] for segment in body["segments"]} == {"A"}  # type: ignore[union-attr,index]
    assert "time does the train" in str(body["text"])


def test_one_voice_is_one_speaker(real_server: RunningServer) -> None:
    alone = conversation(SENTENCES[:3], voices=SPEAKER_VOICES[:1], pause_s=0.4)
    body = post(
        real_server, {"diarize": "true", "response_format": "diarized_json"}, alone.wav_bytes()
    )
    assert {segment["speaker"] for segment in body["segments"]} == {"A"}  # type: ignore[union-attr,index]


def test_silence_has_no_segments(real_server: RunningServer) -> None:
    silence = np.zeros(2 * SAMPLE_RATE, dtype=np.float32)
    body = post(
        real_server, {"diarize": "true", "response_format": "diarized_json"}, wav_file(silence)
    )
    assert body["segments"] == []
    assert body["text"] == ""


def test_native_api_labels_segments_words_and_text(
    real_server: RunningServer, dialogue: SpokenText
) -> None:
    with real_server.http() as http:
        response = http.post(
            "/transcribe",
            files={"audio": ("dialogue.wav", dialogue.wav_bytes())},
            data={"diarize": "true", "include_timestamps": "true", "word_timestamps": "true"},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    segments = [
        {"start": s["start"], "end": s["end"], "speaker": s["speaker"]} for s in body["segments"]
    ]
    assert turns(segments, dialogue) == ["A", "B"] * 3
    assert all(w["speaker"] == s["speaker"] for s in body["segments"] for w in s["words"])
    assert [line.split(":")[0] for line in body["text"].splitlines()] == ["A", "B"] * 3


def test_native_api_without_diarization_has_no_speaker_fields(
    real_server: RunningServer, dialogue: SpokenText
) -> None:
    with real_server.http() as http:
        response = http.post(
            "/transcribe",
            files={"audio": ("dialogue.wav", dialogue.wav_bytes())},
            data={"include_timestamps": "true"},
        )
    assert response.status_code == 200, response.text
    assert all("speaker" not in segment for segment in response.json()["segments"])


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"num_speakers": "2"}, "num_speakers needs diarize"),
        ({"multichannel": "true", "min_speakers": "2"}, "min_speakers is not used with multi"),
        ({"diarize": "true", "num_speakers": "2", "min_speakers": "1"}, "not both"),
    ],
)
def test_native_api_speaker_counts_need_diarize_without_multichannel(
    real_server: RunningServer, data: dict[str, str], says: str
) -> None:
    with real_server.http() as http:
        response = http.post(
            "/transcribe",
            files={"audio": ("speech.wav", speak(SENTENCES[0]).wav_bytes())},
            data=data,
        )
    assert response.status_code == 400, response.text
    assert says in response.text


@pytest.mark.parametrize(
    ("fmt", "label"), [("srt", r"^\[(A|B)\] "), ("vtt", r"^<v (A|B)>")], ids=["srt", "vtt"]
)
def test_shaped_subtitles_keep_the_speakers(
    real_server: RunningServer, dialogue: SpokenText, fmt: str, label: str
) -> None:
    with real_server.http() as http:
        response = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("dialogue.wav", dialogue.wav_bytes())},
            data={
                "diarize": "true",
                "response_format": fmt,
                "temperature": "0",
                "max_words_per_line": "4",
                "max_cue_duration": "2",
            },
        )
    assert response.status_code == 200, response.text
    blocks = response.text.removeprefix("WEBVTT\n\n").strip().split("\n\n")
    texts = [block.split("-->")[1].split("\n", 1)[1] for block in blocks]
    speakers = [re.match(label, text) for text in texts]
    assert all(speakers), texts
    order = [match.group(1) for match in speakers if match]
    assert [s for i, s in enumerate(order) if i == 0 or order[i - 1] != s] == ["A", "B"] * 3
    assert all(len(re.sub(label, "", text).split()) <= 4 for text in texts)

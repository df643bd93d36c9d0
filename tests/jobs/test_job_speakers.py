"""Durable jobs label speakers: ``diarize`` (speaker counts, known speakers kept as voice
embeddings) and ``multichannel`` through the real jobs API, on the real Whisper tiny.en and
the real GE2E speaker encoder; the result shows the speakers in every format."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from job_servers import JobServer, serve_jobs

from whisperd.config import Settings
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

pytestmark = [
    pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
pytest.importorskip("scipy")
pytest.importorskip("torch")

NAMES = "known_speaker_names[]"
REFERENCES = "known_speaker_references[]"


@pytest.fixture(scope="module")
def dialogue() -> SpokenText:
    """Four sentences, the two voices taking turns, 0.4 s between turns."""
    return conversation(SENTENCES[:4], voices=SPEAKER_VOICES, pause_s=0.4)


@pytest.fixture(scope="module")
def real_jobs(real_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobServer]:
    """A server on the real tiny.en with jobs on, shared by this module."""
    settings = Settings(
        _env_file=None,
        model=str(real_model),
        device="cpu",
        compute_type="int8",
        offline=True,
        data_dir=tmp_path_factory.mktemp("data"),
    )
    with serve_jobs(settings, None, real=True) as server:
        yield server


@pytest.fixture(scope="module")
def diarized_job(real_jobs: JobServer, dialogue: SpokenText) -> str:
    """A succeeded job of the dialogue, its second voice given as the known speaker
    ``customer``."""
    reference = speak(" ".join(SENTENCES[8:10]), voice=SPEAKER_VOICES[1]).samples[: 8 * SAMPLE_RATE]
    response = real_jobs.submit(
        dialogue.wav_bytes(),
        diarize="true",
        temperature="0",
        response_format="diarized_json",
        max_speakers="3",
        **{NAMES: "customer", REFERENCES: wav_data_url(reference)},
    )
    assert response.status_code == 202, response.text
    job = real_jobs.finished(response.json()["id"])
    assert job["status"] == "succeeded", job
    return str(job["id"])


def result(server: JobServer, job_id: str, fmt: str | None = None, **params: Any) -> Any:
    query = {"response_format": fmt, **params} if fmt else params
    response = server.http.get(f"/v1/jobs/{job_id}/result", params=query)
    assert response.status_code == 200, response.text
    return response


def turns(segments: list[dict[str, Any]], dialogue: SpokenText) -> list[str]:
    """The speaker of the segment nearest each spoken sentence's middle."""
    speakers = []
    for start, end in dialogue.spans:
        middle = (start + end) / 2
        nearest = min(segments, key=lambda s: abs((s["start"] + s["end"]) / 2 - middle))
        speakers.append(nearest["speaker"])
    return speakers


def test_diarized_json_result_has_each_turn_s_speaker(
    real_jobs: JobServer, diarized_job: str, dialogue: SpokenText
) -> None:
    body = result(real_jobs, diarized_job).json()  # the job's own format: diarized_json
    assert turns(body["segments"], dialogue) == ["A", "customer"] * 2
    assert body["segments"][0]["id"] == "seg_001"
    assert body["text"].startswith("A: What time does the train leave")
    assert "\ncustomer: Please close the window" in body["text"]


def test_verbose_json_result_labels_segments_and_words(
    real_jobs: JobServer, diarized_job: str, dialogue: SpokenText
) -> None:
    body = result(
        real_jobs,
        diarized_job,
        "verbose_json",
        **{"timestamp_granularities[]": ["segment", "word"]},
    ).json()
    assert turns(body["segments"], dialogue) == ["A", "customer"] * 2
    assert {word["speaker"] for word in body["words"]} == {"A", "customer"}
    please = next(w for w in body["words"] if w["word"].lower().startswith("please"))
    assert please["speaker"] == "customer"


def test_text_srt_and_vtt_results_show_the_labels(real_jobs: JobServer, diarized_job: str) -> None:
    text = result(real_jobs, diarized_job, "text").text.strip().splitlines()
    assert [line.split(":")[0] for line in text] == ["A", "customer"] * 2
    srt = result(real_jobs, diarized_job, "srt").text
    cues = [block.splitlines()[2] for block in srt.strip().split("\n\n")]
    assert cues[0].startswith("[A] What time")
    assert any(cue.startswith("[customer] Please close") for cue in cues)
    vtt = result(real_jobs, diarized_job, "vtt").text
    assert "<v A>What time" in vtt
    assert "<v customer>Please close" in vtt
    plain = result(real_jobs, diarized_job, "json").json()
    assert "train leave" in plain["text"]


def test_the_job_keeps_the_known_speaker_as_an_embedding_not_audio(
    real_jobs: JobServer, diarized_job: str
) -> None:
    with sqlite3.connect(real_jobs.data_dir / "jobs.sqlite3") as db:
        (options,) = db.execute("SELECT options FROM jobs WHERE id = ?", (diarized_job,)).fetchone()
    stored = json.loads(options)["diarization"]
    assert stored["mode"] == "speakers"
    assert stored["max_speakers"] == 3
    (known,) = stored["known_speakers"]
    assert known["name"] == "customer"
    assert len(known["embedding"]) == 256
    assert np.linalg.norm(known["embedding"]) == pytest.approx(1.0, abs=1e-4)
    assert len(real_jobs.audio_files()) <= 1  # the dialogue's own spooled audio, no clip


def test_multichannel_job_labels_each_channel(real_jobs: JobServer) -> None:
    left = speak(SENTENCES[0]).samples
    right = speak(SENTENCES[1], voice="en-gb").samples
    gap = np.zeros(SAMPLE_RATE, dtype=np.float32)
    frames = np.zeros((len(left) + len(gap) + len(right), 2), dtype=np.float32)
    frames[: len(left), 0] = left
    frames[len(left) + len(gap) :, 1] = right
    response = real_jobs.http.post(
        "/v1/jobs",
        files={"file": ("call.wav", wav_file(frames, channels=2), "audio/wav")},
        data={"multichannel": "true", "temperature": "0", NAMES: ["agent", "customer"]},
    )
    assert response.status_code == 202, response.text
    job = real_jobs.finished(response.json()["id"])
    assert job["status"] == "succeeded", job
    body = result(real_jobs, job["id"], "diarized_json").json()
    assert [s["speaker"] for s in body["segments"]] == ["agent", "customer"]
    assert "close the window" in body["segments"][1]["text"]
    vtt = result(real_jobs, job["id"], "vtt").text
    assert "<v agent>" in vtt
    assert "<v customer>" in vtt


def test_known_speaker_clip_that_is_not_audio_is_refused_at_submission(
    real_jobs: JobServer,
) -> None:
    before = real_jobs.audio_files()
    not_audio = "data:audio/wav;base64," + base64.b64encode(b"not audio at all" * 40).decode()
    response = real_jobs.submit(
        speak(SENTENCES[0]).wav_bytes(), diarize="true", **{NAMES: "a", REFERENCES: not_audio}
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == REFERENCES
    assert "not usable audio" in error["message"]
    assert real_jobs.audio_files() == before  # nothing was kept

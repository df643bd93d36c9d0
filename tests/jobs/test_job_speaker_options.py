"""A job's speaker labelling round-trips through its stored options JSON, and options stored
before jobs labelled speakers still read as no diarization."""

from __future__ import annotations

import json

import numpy as np
import pytest

from whisperd.diarization import DiarizationOptions, KnownSpeaker
from whisperd.engine.options import TranscribeOptions
from whisperd.jobs.speakers import DIARIZATION_KEY, job_options, stored_options


def test_diarization_with_known_speakers_round_trips_as_json() -> None:
    embedding = np.linspace(-1, 1, 256, dtype=np.float32)
    embedding /= np.linalg.norm(embedding)
    diarization = DiarizationOptions(
        num_speakers=2, known_speakers=(KnownSpeaker("agent", embedding=embedding),)
    )
    stored = json.loads(json.dumps(stored_options(TranscribeOptions(language="en"), diarization)))
    options, back = job_options(stored)
    assert options.language == "en"
    assert back is not None
    assert back.num_speakers == 2
    (known,) = back.known_speakers
    assert known.name == "agent"
    assert known.samples is None
    assert known.embedding is not None
    np.testing.assert_allclose(known.embedding, embedding, atol=1e-6)


def test_channels_round_trip_with_their_names() -> None:
    diarization = DiarizationOptions(mode="channels", channel_names=("agent", "customer"))
    _, back = job_options(stored_options(TranscribeOptions(), diarization))
    assert back == diarization


def test_options_of_before_have_no_diarization() -> None:
    stored = TranscribeOptions(beam_size=2).model_dump(mode="json")
    assert DIARIZATION_KEY not in stored_options(TranscribeOptions(beam_size=2), None)
    options, diarization = job_options(stored)
    assert options.beam_size == 2
    assert diarization is None


def test_a_known_speaker_must_be_embedded_before_it_is_stored() -> None:
    clip = KnownSpeaker("raw", np.zeros(16000, dtype=np.float32))
    with pytest.raises(ValueError, match="not embedded"):
        stored_options(TranscribeOptions(), DiarizationOptions(known_speakers=(clip,)))

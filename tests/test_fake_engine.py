"""The fake engine: the Engine contract kept, segments within the audio, real engines' refusals."""

from __future__ import annotations

import asyncio
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from waiting import joined, waited
from whisperd.audio.decode import AudioSource
from whisperd.config import Settings
from whisperd.engine.base import SAMPLE_RATE, ModelInfo, Segment
from whisperd.engine.options import TranscribeOptions
from whisperd.errors import CancelledError, InvalidOptionError, TranscriptionError
from whisperd.service import TranscriptionRequest, TranscriptionService
from whisperd.testing import ScriptedModel
from whisperd.testing.fake import PLAIN_WORDS, WINDOW_SECONDS, WORDS, FakeEngine, fake_loader
from whisperd.testing.hub import hub_cache

DATA = Path(__file__).parent / "data"


def _audio(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)


def _english_only() -> FakeEngine:
    return FakeEngine(ModelInfo("tiny.en", "", False, ("en",), "cpu", "int8"))


@pytest.mark.parametrize("seconds", [0.3, 4.9, 30.0, 65.3, 301.0])
@pytest.mark.parametrize("chunk_length", [None, 7])
def test_segments_and_words_lie_within_the_audio(seconds: float, chunk_length: int | None) -> None:
    options = TranscribeOptions(word_timestamps=True, chunk_length=chunk_length)
    transcript = FakeEngine().transcribe(_audio(seconds), options)
    window = chunk_length or WINDOW_SECONDS
    assert len(transcript.segments) == math.ceil(seconds / window)  # one segment per window
    assert transcript.duration == pytest.approx(seconds)
    end = 0.0
    for number, segment in enumerate(transcript.segments):
        assert segment.id == number
        assert end == segment.start < segment.end <= seconds  # contiguous, within the audio
        assert segment.words
        assert segment.text == "".join(word.word for word in segment.words)
        starts = [word.start for word in segment.words]
        assert starts == sorted(starts)
        for word in segment.words:
            assert segment.start <= word.start <= word.end <= segment.end
        end = segment.end
    words = transcript.text.split()
    assert words == [WORDS[i % len(WORDS)] for i in range(len(words))]  # in turn, none skipped


def test_the_same_audio_gives_the_same_transcript() -> None:
    engine = FakeEngine()
    options = TranscribeOptions(word_timestamps=True)
    assert engine.transcribe(_audio(42.0), options) == engine.transcribe(_audio(42.0), options)


def test_options_show_in_the_result() -> None:
    engine = FakeEngine()
    timed = engine.transcribe(_audio(5.0), TranscribeOptions())
    plain = engine.transcribe(
        _audio(5.0), TranscribeOptions(without_timestamps=True, language="de", task="translate")
    )
    (timed_segment,), (plain_segment,) = timed.segments, plain.segments
    assert timed_segment.words is None  # no word timestamps unless asked
    assert len(timed_segment.tokens) == len(timed.text.split()) + 2  # two timestamp tokens
    assert len(plain_segment.tokens) == len(plain.text.split())
    assert set(timed.text.split()) <= set(WORDS)
    assert set(plain.text.split()) <= set(PLAIN_WORDS)
    assert (timed.language, timed.task) == ("en", "transcribe")
    assert (plain.language, plain.task) == ("de", "translate")


def test_each_segment_is_handed_over_as_it_is_made() -> None:
    seen: list[Segment] = []
    transcript = FakeEngine().transcribe(_audio(65.0), TranscribeOptions(), seen.append)
    assert tuple(seen) == transcript.segments


def test_cancel_stops_it_between_windows() -> None:
    engine = FakeEngine()
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        engine.transcribe(_audio(5.0), TranscribeOptions(), cancel=cancel)
    cancel.clear()
    seen: list[Segment] = []

    def cancel_after_the_first(segment: Segment) -> None:
        seen.append(segment)
        cancel.set()

    with pytest.raises(CancelledError):
        engine.transcribe(_audio(90.0), TranscribeOptions(), cancel_after_the_first, cancel=cancel)
    assert len(seen) == 1


def test_a_gate_holds_every_window_after_the_first() -> None:
    gate = threading.Event()
    engine = FakeEngine(gate=gate)
    first = threading.Event()
    segments: list[Segment] = []
    outcome: list[Any] = []

    def on_segment(segment: Segment) -> None:
        segments.append(segment)
        first.set()

    def run() -> None:
        outcome.append(engine.transcribe(_audio(65.0), TranscribeOptions(), on_segment))

    worker = threading.Thread(target=run)
    worker.start()
    waited(first, "the first window never came")
    assert worker.is_alive()
    assert len(segments) == 1  # held at the gate
    gate.set()
    joined(worker)
    assert len(outcome[0].segments) == 3


def test_a_gate_left_closed_fails_the_transcription() -> None:
    engine = FakeEngine(gate=threading.Event(), gate_timeout_s=0.01)
    with pytest.raises(TranscriptionError, match="gate"):
        engine.transcribe(_audio(65.0), TranscribeOptions())


def test_a_closed_engine_refuses_work() -> None:
    engine = FakeEngine()
    engine.close()
    with pytest.raises(TranscriptionError):
        engine.transcribe(_audio(1.0), TranscribeOptions())


_REFUSED = [
    {"task": "translate"},
    {"language": "fr"},
    {"multilingual": True},
]


@pytest.mark.parametrize("options", _REFUSED)
def test_an_english_only_fake_refuses_what_real_engines_refuse(
    english_model: ScriptedModel, options: dict[str, Any]
) -> None:
    from whisperd.engine.hub import ResolvedModel
    from whisperd.engine.whisper import WhisperEngine

    real = WhisperEngine(
        ResolvedModel("tiny.en", english_model.path, None, None), device="cpu", compute_type="int8"
    )
    try:
        errors = []
        for engine in (real, _english_only()):
            with pytest.raises(InvalidOptionError) as info:
                engine.transcribe(_audio(1.0), TranscribeOptions(**options))
            errors.append((info.value.param, info.value.message))
    finally:
        real.close()
    assert errors[0] == errors[1]
    _english_only().check(TranscribeOptions(language="en"))


def test_a_multilingual_fake_takes_every_option() -> None:
    engine = FakeEngine()
    for options in _REFUSED:
        engine.check(TranscribeOptions(**options))


def test_the_loader_resolves_names_as_real_engines_do(
    scripted_model: ScriptedModel, english_model: ScriptedModel, tmp_path: Path
) -> None:
    cache = hub_cache(tmp_path / "hub", english_model.path, ["Systran/faster-whisper-tiny.en"])
    settings = Settings(
        _env_file=None, model=str(scripted_model.path), offline=True, models_dir=cache
    )
    service = TranscriptionService.create(settings, loader=fake_loader())

    async def scenario() -> list[Any]:
        default = await service.model()
        english_dir = await service.model(str(english_model.path))
        known = await service.model("tiny.en")
        transcript = await service.transcribe(
            TranscriptionRequest(AudioSource(DATA / "speech.wav"), TranscribeOptions())
        )
        with pytest.raises(InvalidOptionError):
            await service.model("tiny.en", TranscribeOptions(task="translate"))
        return [default, english_dir, known, transcript]

    try:
        default, english_dir, known, transcript = asyncio.run(scenario())
    finally:
        service.close()
    assert default.path == str(scripted_model.path.resolve())
    assert default.multilingual  # its vocabulary has the empty token
    assert not english_dir.multilingual  # its vocabulary lacks it
    assert (known.name, known.multilingual) == ("tiny.en", False)  # the table says so
    assert default.extra == {"engine": "fake"}
    assert transcript.text.split()[0] == WORDS[0]

"""Language detection: restricted to candidates, through the scheduler, as faster-whisper does."""

from __future__ import annotations

import numpy as np
import pytest

from whisperd.engine.detection import CandidateLanguages, LanguageDetection, restrict
from whisperd.engine.hub import ResolvedModel
from whisperd.engine.options import TranscribeOptions
from whisperd.engine.whisper import WhisperEngine
from whisperd.errors import CancelledError, InvalidOptionError
from whisperd.testing import ScriptedModel


def test_restrict_keeps_candidates_renormalised_best_first() -> None:
    ranking = [("<|en|>", 0.5), ("<|de|>", 0.3), ("<|fr|>", 0.1), ("<|es|>", 0.1)]
    assert restrict(ranking, ["fr", "de"]) == [
        ("<|de|>", pytest.approx(0.75)),
        ("<|fr|>", pytest.approx(0.25)),
    ]
    assert restrict([("en", 0.9), ("de", 0.1)], ["de"]) == [("de", 1.0)]
    assert restrict([("en", 0.0), ("de", 0.0)], ["de", "en"]) == [("en", 0.0), ("de", 0.0)]
    assert restrict(ranking, ["ja"]) == []


class _Model:
    is_multilingual = True

    def detect_language(self, features: object) -> list[list[tuple[str, float]]]:
        return [[("<|en|>", 0.7), ("<|de|>", 0.2), ("<|fr|>", 0.1)]] * 2


def test_candidate_languages_wraps_every_detection() -> None:
    wrapped = CandidateLanguages(_Model(), ["fr", "de"])
    assert wrapped.is_multilingual is True  # other attributes pass through
    results = wrapped.detect_language(None)
    assert len(results) == 2
    assert [token for token, _ in results[0]] == ["<|de|>", "<|fr|>"]
    unknown = CandidateLanguages(_Model(), ["ja"]).detect_language(None)
    assert [token for token, _ in unknown[0]] == ["<|en|>", "<|de|>", "<|fr|>"]


def test_certain_detection() -> None:
    certain = LanguageDetection.certain("en", duration=2.0, model="tiny.en")
    assert (certain.language, certain.probability, certain.duration) == ("en", 1.0, 2.0)
    assert [(c.language, c.probability) for c in certain.candidates] == [("en", 1.0)]


@pytest.fixture(scope="module")
def engine(scripted_model: ScriptedModel):
    resolved = ResolvedModel(scripted_model.path.name, scripted_model.path, None, None)
    engine = WhisperEngine(resolved, device="cpu", compute_type="int8")
    yield engine
    engine.close()


def test_detection_ranks_every_language(engine: WhisperEngine, noise: np.ndarray) -> None:
    detection = engine.detect_language(noise, TranscribeOptions(vad_filter=False))
    assert detection.language == "en"  # the scripted decoder's language
    assert len(detection.candidates) == len(engine.info.languages)
    shares = [item.probability for item in detection.candidates]
    assert shares == sorted(shares, reverse=True)
    assert sum(shares) == pytest.approx(1.0, abs=1e-3)
    assert detection.duration == pytest.approx(7.0)
    assert detection.model == engine.info.name


def test_candidates_decide_detection_and_transcription(
    engine: WhisperEngine, noise: np.ndarray
) -> None:
    options = TranscribeOptions(vad_filter=False, languages=("fr", "de", "ja"))
    detection = engine.detect_language(noise, options)
    everything = engine.detect_language(noise, TranscribeOptions(vad_filter=False))
    expected = restrict(
        [(c.language, c.probability) for c in everything.candidates], ["fr", "de", "ja"]
    )
    assert [c.language for c in detection.candidates] == [code for code, _ in expected]
    assert detection.language == expected[0][0]
    assert detection.probability == pytest.approx(expected[0][1], abs=1e-4)
    transcript = engine.transcribe(noise, options)
    assert transcript.language == detection.language
    assert transcript.language_probability == pytest.approx(detection.probability, abs=1e-4)
    given = engine.transcribe(noise, options.model_copy(update={"language": "ja"}))
    assert given.language == "ja"


def test_detection_can_be_cancelled(engine: WhisperEngine, noise: np.ndarray) -> None:
    import threading

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        engine.detect_language(noise, TranscribeOptions(vad_filter=False), cancel=cancel)


def test_an_english_only_model(english_model: ScriptedModel, noise: np.ndarray) -> None:
    resolved = ResolvedModel(english_model.path.name, english_model.path, None, None)
    engine = WhisperEngine(resolved, device="cpu", compute_type="int8")
    try:
        detection = engine.detect_language(noise, TranscribeOptions(languages=("en", "de")))
        assert (detection.language, detection.probability) == ("en", 1.0)
        with pytest.raises(InvalidOptionError) as info:
            engine.detect_language(noise, TranscribeOptions(languages=("de",)))
        assert info.value.param == "languages[]"
    finally:
        engine.close()

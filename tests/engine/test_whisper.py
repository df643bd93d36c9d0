"""The faster-whisper engine: parity with faster-whisper itself, model checks, device choice."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import faster_whisper
import numpy as np
import pytest

from whisperd.engine.base import Segment, Transcript
from whisperd.engine.hub import ResolvedModel
from whisperd.engine.options import TranscribeOptions
from whisperd.engine.whisper import WhisperEngine, resolve_compute_type, resolve_device
from whisperd.errors import InvalidOptionError, ModelUnavailableError
from whisperd.testing import ScriptedModel


def _resolved(model: ScriptedModel) -> ResolvedModel:
    return ResolvedModel(name=model.path.name, path=model.path, repo_id=None, known=None)


@pytest.fixture(scope="module")
def engine(scripted_model: ScriptedModel) -> WhisperEngine:
    return WhisperEngine(_resolved(scripted_model), device="cpu", compute_type="int8")


@pytest.fixture  # fresh each test: faster-whisper keeps a call's chunk_length for the next
def reference(scripted_model: ScriptedModel) -> faster_whisper.WhisperModel:
    return faster_whisper.WhisperModel(str(scripted_model.path), device="cpu", compute_type="int8")


def _reference_segments(model: faster_whisper.WhisperModel, audio: Any, **kwargs: Any):
    segments, info = model.transcribe(audio, **kwargs)
    return list(segments), info


def _assert_same(ours: Transcript, theirs: list[Any], info: Any) -> None:
    assert len(ours.segments) == len(theirs)
    for mine, ref in zip(ours.segments, theirs, strict=True):
        assert mine.id == ref.id - 1
        assert mine.seek == ref.seek
        assert mine.start == pytest.approx(ref.start)
        assert mine.end == pytest.approx(ref.end)
        assert mine.text == ref.text
        assert list(mine.tokens) == list(ref.tokens)
        assert mine.temperature == ref.temperature
        assert mine.avg_logprob == pytest.approx(ref.avg_logprob)
        assert mine.compression_ratio == pytest.approx(ref.compression_ratio)
        assert mine.no_speech_prob == pytest.approx(ref.no_speech_prob)
        if ref.words is None:
            assert mine.words is None
        else:
            assert mine.words is not None
            assert [(w.word, w.start, w.end) for w in mine.words] == [
                (w.word, pytest.approx(w.start), pytest.approx(w.end)) for w in ref.words
            ]
    assert ours.language == info.language
    assert ours.language_probability == pytest.approx(info.language_probability)
    assert ours.duration == pytest.approx(info.duration)


# Each case: our options as an HTTP form would spell them, and faster-whisper's own keywords.
PARITY_CASES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"beam_size": "1", "vad_filter": "false"}, {"beam_size": 1}),
    ({"vad_filter": "false"}, {"beam_size": 5}),
    (
        {"vad_filter": "false", "language": "en", "temperature": "0"},
        {"language": "en", "temperature": 0.0},
    ),
    ({"vad_filter": "false", "without_timestamps": "true"}, {"without_timestamps": True}),
    ({"vad_filter": "false", "word_timestamps": "true"}, {"word_timestamps": True}),
    ({"vad_filter": "false", "task": "translate"}, {"task": "translate"}),
    (
        {
            "vad_filter": "false",
            "condition_on_previous_text": "false",
            "initial_prompt": "hello",
            "hotwords": "whisperd",
        },
        {"condition_on_previous_text": False, "initial_prompt": "hello", "hotwords": "whisperd"},
    ),
    ({"vad_filter": "false", "clip_timestamps": "3,9,31"}, {"clip_timestamps": "3,9,31"}),
    (
        {"vad_filter": "false", "max_new_tokens": "4", "chunk_length": "10"},
        {"max_new_tokens": 4, "chunk_length": 10},
    ),
    (
        {"vad_filter": "false", "multilingual": "true", "language_detection_segments": "2"},
        {"multilingual": True, "language_detection_segments": 2},
    ),
    (
        {
            "vad_filter": "false",
            "suppress_tokens": "",
            "suppress_blank": "false",
            "length_penalty": "0.5",
            "repetition_penalty": "1.3",
            "no_repeat_ngram_size": "3",
            "patience": "2",
        },
        {
            "suppress_tokens": [],
            "suppress_blank": False,
            "length_penalty": 0.5,
            "repetition_penalty": 1.3,
            "no_repeat_ngram_size": 3,
            "patience": 2.0,
        },
    ),
    (
        {
            "batch_size": "1",
            "vad_filter": "true",
            "vad_parameters": '{"threshold": 0.2, "min_silence_duration_ms": 100}',
        },
        {"vad_filter": True, "vad_parameters": {"threshold": 0.2, "min_silence_duration_ms": 100}},
    ),
]


@pytest.mark.parametrize(("form", "kwargs"), PARITY_CASES)
def test_segments_equal_faster_whispers_own(
    engine: WhisperEngine,
    reference: faster_whisper.WhisperModel,
    form: dict[str, Any],
    kwargs: dict[str, Any],
) -> None:
    rng = np.random.default_rng(3)
    audio = (rng.standard_normal(16000 * 40) * 0.1).astype(np.float32)
    ours = engine.transcribe(audio, TranscribeOptions.model_validate(form))
    theirs, info = _reference_segments(reference, audio, **kwargs)
    _assert_same(ours, theirs, info)


def test_script_is_decoded_without_fallback(
    engine: WhisperEngine, scripted_model: ScriptedModel, noise: np.ndarray
) -> None:
    transcript = engine.transcribe(noise, TranscribeOptions(vad_filter=False))
    assert transcript.text == scripted_model.text.strip()
    (segment,) = transcript.segments
    assert (segment.start, segment.end, segment.temperature) == (0.0, 2.0, 0.0)
    assert transcript.language == "en"
    assert transcript.duration == pytest.approx(7.0)


def test_segments_are_reported_as_they_are_decoded(engine: WhisperEngine) -> None:
    audio = np.full(16000 * 65, 0.01, dtype=np.float32)
    seen: list[Segment] = []
    transcript = engine.transcribe(audio, TranscribeOptions(vad_filter=False), seen.append)
    assert seen == list(transcript.segments)
    assert [s.start for s in seen] == [0.0, 30.0, 60.0]
    assert [s.id for s in seen] == [0, 1, 2]


def test_vad_removes_noise_only_audio(engine: WhisperEngine, noise: np.ndarray) -> None:
    quiet = noise * 0.02
    assert engine.transcribe(quiet, TranscribeOptions(vad_filter=True)).segments == ()


def test_english_only_model_refuses_translation(english_model: ScriptedModel) -> None:
    engine = WhisperEngine(_resolved(english_model), device="cpu", compute_type="int8")
    assert not engine.info.multilingual
    assert not engine.info.supports_translation
    audio = np.zeros(16000, dtype=np.float32)
    with pytest.raises(InvalidOptionError) as info:
        engine.transcribe(audio, TranscribeOptions(task="translate"))
    assert info.value.param == "task"
    assert "English-only" in info.value.message
    with pytest.raises(InvalidOptionError) as info:
        engine.check(TranscribeOptions(language="fr"))
    assert info.value.param == "language"
    engine.check(TranscribeOptions(language="en"))
    engine.close()


def test_info_describes_the_model(engine: WhisperEngine, scripted_model: ScriptedModel) -> None:
    info = engine.info
    assert info.multilingual
    assert info.device == "cpu"
    assert info.compute_type == "int8"
    assert info.n_mels == scripted_model.shape.n_mels
    assert "en" in info.languages
    assert "yue" in info.languages
    assert asdict(info)["path"] == str(scripted_model.path)


def test_auto_device_and_compute_type_on_a_cpu_machine() -> None:
    import ctranslate2

    expected = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    assert resolve_device("auto") == expected
    assert resolve_device("cpu") == "cpu"
    assert resolve_compute_type("auto", "cpu") == "int8"
    assert resolve_compute_type("auto", "cuda") == "float16"
    assert resolve_compute_type("float32", "cpu") == "float32"


def test_unsupported_compute_type_is_a_clear_error() -> None:
    with pytest.raises(ModelUnavailableError) as info:
        resolve_compute_type("bfloat16", "cpu") if "bfloat16" not in _cpu_types() else (
            resolve_compute_type("int8_bfloat16", "cpu")
        )
    assert info.value.param == "compute_type"


def _cpu_types() -> set[str]:
    import ctranslate2

    return set(ctranslate2.get_supported_compute_types("cpu"))


def test_missing_weights_are_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"not a model")
    model = ResolvedModel(name="broken", path=tmp_path, repo_id=None, known=None)
    with pytest.raises(ModelUnavailableError) as info:
        WhisperEngine(model, device="cpu", compute_type="int8")
    assert "broken" in info.value.message


def test_one_calls_chunk_length_does_not_leak_into_the_next(engine: WhisperEngine) -> None:
    audio = np.full(16000 * 35, 0.01, dtype=np.float32)
    short = engine.transcribe(audio, TranscribeOptions(vad_filter=False, chunk_length=10))
    assert [s.start for s in short.segments] == [0.0, 10.0, 20.0, 30.0]
    default = engine.transcribe(audio, TranscribeOptions(vad_filter=False))
    assert [s.start for s in default.segments] == [0.0, 30.0]


def _speech(times: int) -> np.ndarray:
    from whisperd.audio.decode import AudioSource, decode_audio

    clip = decode_audio(AudioSource(Path(__file__).parents[1] / "data" / "speech.wav")).samples
    return np.concatenate([clip] * times)


@pytest.mark.parametrize(
    ("form", "kwargs"),
    [
        # Text is decoded without timestamp tokens, as the pipeline's own default; the pipeline
        # decodes at the first temperature only (whisperd falls back).
        (
            {"batch_size": "4", "segment_timestamps": "false", "temperature": "0"},
            {"batch_size": 4, "without_timestamps": True},
        ),
        (
            {"batch_size": "2", "word_timestamps": "true", "language": "en", "temperature": "0"},
            {
                "batch_size": 2,
                "word_timestamps": True,
                "language": "en",
                "without_timestamps": True,
            },
        ),
        (
            {"batch_size": "3", "without_timestamps": "true", "temperature": "0"},
            {"batch_size": 3, "without_timestamps": True},
        ),
        (
            {"segment_timestamps": "false", "temperature": "0"},
            {"batch_size": 8, "without_timestamps": True},
        ),
    ],
)
def test_batched_decoding_equals_faster_whispers_pipeline(
    engine: WhisperEngine,
    reference: faster_whisper.WhisperModel,
    form: dict[str, Any],
    kwargs: dict[str, Any],
) -> None:
    audio = _speech(7)  # 34 s: more than one window, so an unset batch_size batches too
    ours = engine.transcribe(audio, TranscribeOptions.model_validate(form))
    pipeline = faster_whisper.BatchedInferencePipeline(reference)
    theirs, info = _reference_segments(pipeline, audio, **kwargs)  # type: ignore[arg-type]
    assert len(ours.segments) >= 1
    # The scripted model writes timestamp tokens even when told not to, which faster-whisper
    # cuts segments at (and bounds a last word's end by): the text and word starts are the same.
    assert ours.text.split() == " ".join(s.text for s in theirs).split()
    if kwargs.get("word_timestamps"):
        words = [(w.word, pytest.approx(w.start)) for s in theirs for w in s.words]
        assert [(w.word, w.start) for w in ours.words] == words
    assert ours.segments[0].start == pytest.approx(theirs[0].start)
    assert ours.language == info.language
    assert ours.duration_after_vad == pytest.approx(info.duration_after_vad)


def test_a_clip_of_one_window_decodes_sequentially_by_default(
    engine: WhisperEngine, reference: faster_whisper.WhisperModel
) -> None:
    audio = _speech(4)  # 20 s
    ours = engine.transcribe(audio, TranscribeOptions(temperature=0.0))
    theirs, _ = _reference_segments(reference, audio, temperature=0.0, vad_filter=True)
    assert ours.text.split() == " ".join(s.text for s in theirs).split()
    assert [s.seek for s in ours.segments] == [s.seek for s in theirs]


@pytest.mark.parametrize(
    ("options", "duration_s", "size"),
    [
        ({}, 30.0, 1),
        ({}, 30.5, 8),
        ({}, None, 8),
        ({"chunk_length": 10}, 12.0, 8),
        ({"batch_size": 4}, 5.0, 4),
        ({"vad_filter": False}, 300.0, 1),
    ],
)
def test_unset_batch_size_batches_only_what_is_longer_than_a_window(
    options: dict[str, Any], duration_s: float | None, size: int
) -> None:
    chosen = TranscribeOptions.model_validate(options).chunk_batch_size(8, duration_s)
    assert chosen == size


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("clip_timestamps", "1,3"),
        ("condition_on_previous_text", True),
        ("prefix", "Hello"),
        ("hallucination_silence_threshold", 2.0),
        ("min_tail_window_s", 1.0),
    ],
)
def test_batched_decoding_refuses_what_only_sequential_decoding_honours(
    engine: WhisperEngine, field: str, value: object
) -> None:
    options = TranscribeOptions.model_validate({"batch_size": 2, field: value})
    with pytest.raises(InvalidOptionError) as info:
        engine.transcribe(_speech(1), options)
    assert info.value.param == field
    # Unset, batch_size gives way: the same options decode sequentially.
    unset = TranscribeOptions.model_validate({field: value})
    assert unset.chunk_batch_size() == 1
    engine.transcribe(_speech(1), unset)

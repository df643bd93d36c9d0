"""The engine under concurrent load: shared batches, same results, fairness, cancellation."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from waiting import joined, wait_until
from whisperd.engine.base import SAMPLE_RATE
from whisperd.engine.hub import ResolvedModel
from whisperd.engine.options import TranscribeOptions
from whisperd.engine.whisper import BatchingConfig, WhisperEngine
from whisperd.errors import CancelledError
from whisperd.testing import ScriptedModel


@pytest.fixture
def engine(scripted_model: ScriptedModel) -> Iterator[WhisperEngine]:
    model = ResolvedModel("scripted", scripted_model.path, None, None)
    engine = WhisperEngine(
        model,
        device="cpu",
        compute_type="int8",
        batching=BatchingConfig(max_batch_size=8, max_wait_ms=50),
    )
    yield engine
    engine.close()


def _noise(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(SAMPLE_RATE * seconds)) * 0.1).astype(np.float32)


def _in_parallel(jobs: list[Any]) -> list[Any]:
    results: list[Any] = [None] * len(jobs)

    def run(index: int) -> None:
        try:
            results[index] = jobs[index]()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    joined(*threads)
    return results


def _fingerprint(transcript: Any) -> list[tuple[Any, ...]]:
    return [(s.start, s.end, s.text, s.tokens, s.temperature) for s in transcript.segments]


def test_concurrent_requests_share_batches_and_get_their_own_results(
    engine: WhisperEngine,
) -> None:
    cases = [
        (_noise(65, 1), TranscribeOptions(vad_filter=False)),
        (_noise(40, 2), TranscribeOptions(vad_filter=False, beam_size=1)),
        (_noise(35, 3), TranscribeOptions(vad_filter=False, without_timestamps=True)),
        (_noise(62, 4), TranscribeOptions(vad_filter=False, language="en")),
        (_noise(31, 5), TranscribeOptions(vad_filter=False, condition_on_previous_text=False)),
        (_noise(45, 6), TranscribeOptions(vad_filter=False, word_timestamps=True)),
    ]
    alone = [_fingerprint(engine.transcribe(audio, options)) for audio, options in cases]
    before = engine.batcher.stats.batches
    together = _in_parallel(
        [(lambda a=audio, o=options: engine.transcribe(a, o)) for audio, options in cases]
    )
    assert [_fingerprint(t) for t in together] == alone
    merged = {size for size, count in engine.batcher.stats.sizes.items() if count}
    assert max(merged) > 1  # some model calls served several requests at once
    assert engine.batcher.stats.batches > before


def test_language_detection_reuses_the_first_windows_encoding(engine: WhisperEngine) -> None:
    audio = _noise(65, 7)  # three windows
    engine.transcribe(audio, TranscribeOptions(vad_filter=False))
    detected = engine.batcher.stats.kinds["encode"]
    engine.transcribe(audio, TranscribeOptions(vad_filter=False, language="en"))
    given = engine.batcher.stats.kinds["encode"] - detected
    assert engine.batcher.stats.kinds["detect_language"] == 1
    assert detected == given == 3


def test_a_short_request_finishes_while_a_long_one_runs(engine: WhisperEngine) -> None:
    finished: list[str] = []
    long_audio, short_audio = _noise(300, 8), _noise(5, 9)
    options = TranscribeOptions(vad_filter=False)

    def long_job() -> None:
        engine.transcribe(long_audio, options)
        finished.append("long")

    long_thread = threading.Thread(target=long_job)
    long_thread.start()
    wait_until(
        lambda: engine.batcher.stats.kinds["generate"] >= 2, "the long file never got under way"
    )
    engine.transcribe(short_audio, options)
    finished.append("short")
    windows_when_short_done = engine.batcher.stats.kinds["generate"]
    joined(long_thread, within=300)
    assert finished == ["short", "long"]
    assert windows_when_short_done < 10 + 1  # the long file (10 windows) was not finished


def test_cancel_stops_the_remaining_windows(engine: WhisperEngine) -> None:
    cancel = threading.Event()
    outcome: list[Any] = []

    def job() -> None:
        try:
            engine.transcribe(_noise(300, 10), TranscribeOptions(vad_filter=False), cancel=cancel)
        except CancelledError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=job)
    thread.start()
    wait_until(lambda: engine.batcher.stats.kinds["generate"] >= 2, "the file never got under way")
    cancel.set()
    joined(thread)
    assert isinstance(outcome[0], CancelledError)
    assert engine.batcher.stats.kinds["generate"] < 10


def test_batched_pipeline_requests_run_through_the_scheduler(engine: WhisperEngine) -> None:
    from pathlib import Path

    from whisperd.audio.decode import AudioSource, decode_audio

    clip = decode_audio(AudioSource(Path(__file__).parents[1] / "data" / "speech.wav")).samples
    audio = np.concatenate([clip] * 4)
    batched = engine.transcribe(audio, TranscribeOptions(batch_size=4))
    assert batched.segments
    assert engine.batcher.stats.kinds["generate"] >= 1


def test_audio_context_encodes_only_the_clip_and_keeps_the_text(engine: WhisperEngine) -> None:
    audio = _noise(4.2, 11)
    window = engine.transcribe(audio, TranscribeOptions(vad_filter=False))
    short = engine.transcribe(audio, TranscribeOptions(vad_filter=False, encoder_context="audio"))
    assert short.text == window.text
    assert [s.start for s in short.segments] == [s.start for s in window.segments]


def test_padding_is_trimmed_to_whole_seconds() -> None:
    from whisperd.engine.window_padding import trim_padding

    mel = np.zeros((1, 80, 3000), dtype=np.float32)
    mel[:, :, :420] = -0.5
    assert trim_padding(mel).shape == (1, 80, 500)
    mel[:, :, :] = -0.5
    assert trim_padding(mel).shape == (1, 80, 3000)

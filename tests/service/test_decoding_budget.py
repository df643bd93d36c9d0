"""The decoded-audio budget: bounded across requests, one request alone always admitted, the
CLI's file opened ahead waits for room instead of failing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from whisperd.audio.decode import AudioSource
from whisperd.batch import BatchRunner, FileJob, FileResult
from whisperd.cli_output import FileOutput
from whisperd.config import Settings
from whisperd.engine.base import SAMPLE_RATE
from whisperd.engine.options import TranscribeOptions
from whisperd.errors import QueueFullError, TruncatedAudioError
from whisperd.service import Transcription, TranscriptionRequest, TranscriptionService
from whisperd.service.decoding_budget import DecodedAudioBudget
from whisperd.testing import ScriptedModel, fake_loader
from whisperd.testing.speech import SpokenText


def test_a_reservation_grows_and_is_released() -> None:
    budget = DecodedAudioBudget(100.0)
    with budget.reservation() as held:
        held(30.0)
        held(20.0)  # smaller totals change nothing
        assert held.seconds == budget.held_seconds == 30.0
        held(70.0)
        assert budget.held_seconds == 70.0
    assert budget.held_seconds == 0.0


def test_others_fill_the_budget_and_one_alone_may_pass_it() -> None:
    budget = DecodedAudioBudget(100.0)
    with budget.reservation() as first:
        first(250.0)  # alone: admitted even past the budget
        with budget.reservation() as second, pytest.raises(QueueFullError) as refused:
            second(1.0)
        assert refused.value.retry_after > 0
        assert "250 s held for others would exceed the 100 s" in refused.value.message
        assert budget.held_seconds == 250.0
    with budget.reservation() as third:
        third(100.0)
        with budget.reservation() as fourth, pytest.raises(QueueFullError):
            fourth(0.5)


def test_a_released_reservation_refuses_to_grow() -> None:
    budget = DecodedAudioBudget(100.0)
    with budget.reservation() as held:
        held(10.0)
    with pytest.raises(QueueFullError, match="released"):
        held(20.0)
    assert budget.held_seconds == 0.0


def test_threads_growing_and_releasing_leave_nothing_held() -> None:
    budget = DecodedAudioBudget(1e9)

    def work() -> None:
        for _ in range(200):
            with budget.reservation() as held:
                for total in (1.0, 2.0, 3.0):
                    held(total)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert budget.held_seconds == 0.0


def test_the_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        DecodedAudioBudget(0.0)


def noise_wav(seconds: float, seed: int = 0) -> bytes:
    samples = np.random.default_rng(seed).standard_normal(round(seconds * SAMPLE_RATE)) * 0.05
    return SpokenText(samples.astype(np.float32), "").wav_bytes()


@pytest.fixture
def fake_service(scripted_model: ScriptedModel) -> Callable[..., TranscriptionService]:
    """A service on fake engines (the scripted model's files name the model)."""

    def make(gate: threading.Event | None = None, **settings: float) -> TranscriptionService:
        values = Settings(_env_file=None, model=str(scripted_model.path), offline=True, **settings)
        return TranscriptionService.create(values, loader=fake_loader(gate=gate))

    return make


def test_the_service_holds_decoded_audio_until_the_transcription_ends(
    fake_service: Callable[..., TranscriptionService],
) -> None:
    service = fake_service(max_decoded_audio_seconds=60.0)
    options = TranscribeOptions(vad_filter=False)

    async def scenario() -> None:
        first = await service.open(TranscriptionRequest(AudioSource(noise_wav(40.0)), options))
        assert service.decoded_audio.held_seconds == pytest.approx(40.0, abs=0.01)
        with pytest.raises(QueueFullError, match="decoded audio") as refused:
            await service.open(TranscriptionRequest(AudioSource(noise_wav(30.0)), options))
        assert refused.value.retry_after > 0
        assert service.decoded_audio.held_seconds == pytest.approx(40.0, abs=0.01)
        await first.run()
        assert service.decoded_audio.held_seconds == 0.0
        second = await service.open(TranscriptionRequest(AudioSource(noise_wav(30.0)), options))
        await second.aclose()
        assert service.decoded_audio.held_seconds == 0.0

    try:
        asyncio.run(scenario())
    finally:
        service.close()


def test_a_failed_decode_gives_its_reservation_back(
    fake_service: Callable[..., TranscriptionService],
) -> None:
    service = fake_service()
    cut = noise_wav(20.0)[: 10 * SAMPLE_RATE]  # the header still declares 20 s

    async def scenario() -> None:
        with pytest.raises(TruncatedAudioError):
            await service.open(TranscriptionRequest(AudioSource(cut), TranscribeOptions()))

    try:
        asyncio.run(scenario())
        assert service.decoded_audio.held_seconds == 0.0
        assert service.admission.in_flight == 0
    finally:
        service.close()


class _Recorder:
    def __init__(self) -> None:
        self.results: list[FileResult] = []

    def started(self, job: FileJob, duration: float) -> None:
        pass

    def advanced(self, job: FileJob, position: float) -> None:
        pass

    def finished(self, result: FileResult) -> None:
        self.results.append(result)


def test_the_cli_opens_the_next_file_again_when_both_do_not_fit(
    fake_service: Callable[..., TranscriptionService], tmp_path: Path
) -> None:
    names = ("a.wav", "b.wav", "c.wav")
    for seed, name in enumerate(names):
        (tmp_path / name).write_bytes(noise_wav(40.0, seed))
    jobs = [FileJob(tmp_path / name, tmp_path / "out" / Path(name).stem) for name in names]
    gate = threading.Event()  # the first file's second window waits until a refusal is seen
    service = fake_service(gate, max_decoded_audio_seconds=60.0)
    refusals: list[QueueFullError] = []
    real_open = service.open

    async def open_and_note_refusals(request: TranscriptionRequest) -> Transcription:
        try:
            return await real_open(request)
        except QueueFullError as exc:
            refusals.append(exc)
            gate.set()
            raise

    service.open = open_and_note_refusals  # type: ignore[method-assign]
    reporter = _Recorder()
    try:
        runner = BatchRunner(
            service, TranscribeOptions(vad_filter=False), FileOutput(("text",)), reporter
        )
        summary = asyncio.run(runner.run(jobs))
        assert service.decoded_audio.held_seconds == 0.0
    finally:
        service.close()
    assert refusals, "the second file was never refused: the test did not test the retry"
    assert "decoded audio" in refusals[0].message
    assert [result.error for result in summary.results] == [None, None, None]
    assert summary.done == 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt", "b.txt", "c.txt"]

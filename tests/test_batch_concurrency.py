"""``whisperd transcribe`` on several files at once: their windows share model calls, results
keep the order given, capacity refusals are retried, and Ctrl-C stops every running file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from whisperd.batch import BatchRunner, FileJob, FileResult
from whisperd.cli import _transcribe_command, cli
from whisperd.cli_output import FileOutput
from whisperd.config import Settings
from whisperd.engine.base import SAMPLE_RATE
from whisperd.engine.options import TranscribeOptions
from whisperd.service import Cancellation, TranscriptionService
from whisperd.testing import ScriptedModel
from whisperd.testing.speech import SENTENCES, SpokenText, speak, word_error_rate


def _noise_file(path: Path, seconds: float, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    samples = (rng.standard_normal(round(SAMPLE_RATE * seconds)) * 0.05).astype(np.float32)
    path.write_bytes(SpokenText(samples, "").wav_bytes())
    return path


def _jobs(folder: Path, count: int, seconds: float) -> list[FileJob]:
    names = [f"clip{index}.wav" for index in range(count)]
    for seed, name in enumerate(names):
        _noise_file(folder / name, seconds, seed)
    return [FileJob(folder / name, folder / "out" / Path(name).stem) for name in names]


class _Recorder:
    """Records what it is told; cancels the run at the first progress when given a cancel."""

    def __init__(self, cancel: Cancellation | None = None) -> None:
        self.cancel = cancel
        self.started_jobs: list[FileJob] = []
        self.results: list[FileResult] = []

    def started(self, job: FileJob, duration: float) -> None:
        self.started_jobs.append(job)

    def advanced(self, job: FileJob, position: float) -> None:
        if self.cancel is not None:
            self.cancel.cancel()

    def finished(self, result: FileResult) -> None:
        self.results.append(result)


def _service(model: ScriptedModel, **settings: object) -> TranscriptionService:
    values = Settings(_env_file=None, model=str(model.path), offline=True, **settings)  # type: ignore[call-arg]
    return TranscriptionService.create(values)


def _merged_sizes(service: TranscriptionService) -> dict[int, int]:
    settings = service.settings
    engine = service.models.peek(
        settings.model, device=settings.device, compute_type=settings.compute_type
    )
    assert engine is not None
    return dict(engine.batcher.stats.sizes)  # type: ignore[attr-defined]


def test_several_files_share_model_calls_and_keep_their_order(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    jobs = _jobs(tmp_path, 6, 8.0)
    service = _service(scripted_model, num_workers=1)  # several workers take a window each
    reporter = _Recorder()
    options = TranscribeOptions(vad_filter=False, beam_size=1)
    try:
        runner = BatchRunner(service, options, FileOutput(("text",)), reporter, concurrency=4)
        summary = asyncio.run(runner.run(jobs))
        sizes = _merged_sizes(service)
        assert service.admission.in_flight == 0
        assert service.decoded_audio.held_seconds == 0.0
    finally:
        service.close()
    assert [result.job for result in summary.results] == jobs
    assert summary.done == 6
    assert sorted(reporter.started_jobs, key=jobs.index) == jobs
    for job in jobs:
        assert job.stem.with_suffix(".txt").read_text().strip() == scripted_model.text.strip()
    assert max(sizes) > 1, f"no model call merged two files: {sizes}"


def test_one_at_a_time_never_merges_files(scripted_model: ScriptedModel, tmp_path: Path) -> None:
    jobs = _jobs(tmp_path, 3, 8.0)
    service = _service(scripted_model)
    options = TranscribeOptions(vad_filter=False, beam_size=1)
    try:
        runner = BatchRunner(service, options, FileOutput(("text",)), _Recorder(), concurrency=1)
        summary = asyncio.run(runner.run(jobs))
        sizes = _merged_sizes(service)
    finally:
        service.close()
    assert summary.done == 3
    assert set(sizes) == {1}


def test_a_cancelled_run_stops_every_running_file_and_writes_nothing(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    jobs = _jobs(tmp_path, 5, 150.0)
    service = _service(scripted_model)
    cancel = Cancellation()
    reporter = _Recorder(cancel)
    options = TranscribeOptions(vad_filter=False, beam_size=1)
    try:
        runner = BatchRunner(
            service, options, FileOutput(("text",)), reporter, cancel=cancel, concurrency=3
        )
        summary = asyncio.run(runner.run(jobs))
        assert service.admission.in_flight == 0
        assert service.decoded_audio.held_seconds == 0.0
    finally:
        service.close()
    assert summary.interrupted
    assert summary.results, "no file started"
    assert all(result.interrupted for result in summary.results)
    assert summary.done == 0
    assert summary.failed == 0
    # At most the three running files started; the file opened ahead and the last never did.
    assert 1 <= len(summary.results) <= 3
    assert [result.job for result in summary.results] == jobs[: len(summary.results)]
    assert sorted(reporter.results, key=lambda r: jobs.index(r.job)) == summary.results
    assert not (tmp_path / "out").exists()


def test_files_refused_for_memory_are_retried_as_others_end(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    jobs = _jobs(tmp_path, 4, 40.0)  # two do not fit in 60 s of decoded audio
    service = _service(scripted_model, max_decoded_audio_seconds=60.0)
    options = TranscribeOptions(vad_filter=False, beam_size=1)
    try:
        runner = BatchRunner(service, options, FileOutput(("text",)), _Recorder(), concurrency=4)
        summary = asyncio.run(runner.run(jobs))
        assert service.decoded_audio.held_seconds == 0.0
        assert service.decoded_audio.rejections > 0, "nothing was refused: the test tested nothing"
    finally:
        service.close()
    assert [result.error for result in summary.results] == [None] * 4
    assert summary.done == 4


def test_a_bad_file_fails_alone(scripted_model: ScriptedModel, tmp_path: Path) -> None:
    jobs = _jobs(tmp_path, 3, 5.0)
    jobs[1].source.write_bytes(b"this is not audio")
    service = _service(scripted_model)
    options = TranscribeOptions(vad_filter=False, beam_size=1)
    try:
        runner = BatchRunner(service, options, FileOutput(("text",)), _Recorder(), concurrency=3)
        summary = asyncio.run(runner.run(jobs))
    finally:
        service.close()
    assert [result.ok for result in summary.results] == [True, False, True]
    assert summary.results[1].error


def test_concurrency_below_one_is_refused(scripted_model: ScriptedModel) -> None:
    service = _service(scripted_model)
    try:
        with pytest.raises(ValueError, match="concurrency"):
            BatchRunner(
                service, TranscribeOptions(), FileOutput(("text",)), _Recorder(), concurrency=0
            )
    finally:
        service.close()


def _run(*args: str) -> tuple[int, str]:
    cli.add_command(_transcribe_command())
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.mark.parametrize("value", ["0", "-1", "65", "many"])
def test_the_concurrency_flag_refuses_bad_values(value: str, tmp_path: Path) -> None:
    clip = _noise_file(tmp_path / "a.wav", 1.0, 0)
    code, output = _run("transcribe", str(clip), "--concurrency", value)
    assert code == 2
    assert "--concurrency" in output


@pytest.fixture(scope="module")
def spoken_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Six short clips of espeak-ng speech with their known text."""
    folder = tmp_path_factory.mktemp("clips")
    texts = {}
    for index, sentence in enumerate(SENTENCES[:6]):
        name = f"s{index}"
        (folder / f"{name}.wav").write_bytes(speak(sentence).wav_bytes())
        texts[name] = sentence
    return folder, texts


def test_a_folder_of_real_speech_at_once_is_transcribed_accurately(
    real_model: Path, spoken_folder: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, texts = spoken_folder
    out = tmp_path / "out"
    args = ["transcribe", str(folder), "--model", str(real_model), "--offline", "-o", str(out)]
    code, output = _run(*args, "--concurrency", "4")
    assert code == 0, output
    assert "6 of 6 file(s) transcribed" in output
    for name, text in texts.items():
        hypothesis = (out / f"{name}.txt").read_text()
        assert word_error_rate(text, hypothesis) <= 0.2, (text, hypothesis)

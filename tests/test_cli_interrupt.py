"""Ctrl-C and SIGTERM during ``whisperd transcribe``: stop at the next window, write nothing
for the interrupted file, release everything, exit with 128 + the signal's number."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from whisperd.batch import BatchRunner, FileJob, FileResult
from whisperd.cli_output import FileOutput
from whisperd.config import Settings
from whisperd.engine.base import SAMPLE_RATE
from whisperd.engine.options import TranscribeOptions
from whisperd.service import Cancellation, TranscriptionService
from whisperd.testing import ScriptedModel
from whisperd.testing.speech import SENTENCES, SpokenText, conversation

_PROGRESS = re.compile(r": (\d+)% \(([\d.]+) of ([\d.]+) s\)$")
_INTERRUPTED = re.compile(r": interrupted at ([\d.]+) of ([\d.]+) s$")


class _CancelOnFirstProgress:
    """Records what it is told and cancels the run at the first segment."""

    def __init__(self, cancel: Cancellation) -> None:
        self.cancel = cancel
        self.jobs_started: list[FileJob] = []
        self.results: list[FileResult] = []

    def started(self, job: FileJob, duration: float) -> None:
        self.jobs_started.append(job)

    def advanced(self, job: FileJob, position: float) -> None:
        self.cancel.cancel()

    def finished(self, result: FileResult) -> None:
        self.results.append(result)


def test_a_cancelled_run_stops_the_file_writes_nothing_and_releases_everything(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    noise = np.random.default_rng(5).standard_normal(SAMPLE_RATE * 150).astype(np.float32) * 0.05
    for name in ("a.wav", "b.wav"):
        (tmp_path / name).write_bytes(SpokenText(noise, "").wav_bytes())
    out = tmp_path / "out"
    jobs = [FileJob(tmp_path / name, out / Path(name).stem) for name in ("a.wav", "b.wav")]
    options = TranscribeOptions(vad_filter=False, beam_size=1)
    service = TranscriptionService.create(Settings(model=str(scripted_model.path), offline=True))
    cancel = Cancellation()
    reporter = _CancelOnFirstProgress(cancel)
    try:
        runner = BatchRunner(service, options, FileOutput(("txt",)), reporter, cancel=cancel)
        summary = asyncio.run(runner.run(jobs))
        assert service.admission.in_flight == 0
    finally:
        service.close()
    assert summary.interrupted
    assert [r.interrupted for r in summary.results] == [True]
    assert summary.failed == 0
    assert summary.done == 0
    assert reporter.jobs_started == jobs[:1]
    assert reporter.results == summary.results
    assert not out.exists()


WORKERS = 2
"""The CLI's model calls at once (``WHISPERD_NUM_WORKERS``), each decoding two chunks."""


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About ten minutes of real speech (every sentence, eight times over)."""
    spoken = conversation(SENTENCES)
    path = tmp_path_factory.mktemp("long") / "lecture.wav"
    path.write_bytes(SpokenText(np.tile(spoken.samples, 8), spoken.text).wav_bytes())
    return path


@pytest.mark.parametrize(
    ("sig", "code"),
    [
        pytest.param(signal.SIGINT, 130, id="SIGINT"),
        pytest.param(signal.SIGTERM, 143, id="SIGTERM"),
    ],
)
def test_a_signal_mid_file_stops_at_the_next_window_and_leaves_no_output(
    real_model: Path, long_speech: Path, tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "whisperd", "transcribe", str(long_speech)]
    process = subprocess.Popen(
        [*command, "--model", str(real_model), "--offline", "-f", "all", "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "WHISPERD_NUM_WORKERS": str(WORKERS), "WHISPERD_CPU_THREADS": "1"},
    )
    try:
        assert process.stderr is not None
        seen = []
        for line in process.stderr:
            seen.append(line.rstrip("\n"))
            if match := _PROGRESS.search(seen[-1]):
                reached, duration = float(match[2]), float(match[3])
                break
        else:
            pytest.fail("no progress line before the end:\n" + "\n".join(seen))
        process.send_signal(sig)
        _, rest = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    lines = rest.splitlines()
    assert process.returncode == code, "\n".join(seen + lines)
    stopped = [float(m[1]) for line in lines if (m := _INTERRUPTED.search(line))]
    assert len(stopped) == 1, "\n".join(lines)
    # It stopped within the batches in flight when the signal was sent (a call of two 30 s
    # chunks per worker), far from the end of the file.
    assert reached <= stopped[0] <= reached + WORKERS * 2 * 30.0
    assert stopped[0] < duration / 2
    assert "no partial output written" in rest
    assert not out.exists() or list(out.rglob("*")) == []

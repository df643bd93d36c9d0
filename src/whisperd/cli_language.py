"""``whisperd transcribe --detect-language``: the spoken language of each file, not its text.

Each file is admitted and decoded as for a transcription, at bulk priority, then Whisper's
language identification runs on its first 30 s window (after VAD): one encoder pass through the
scheduler. One line per file goes to standard output as soon as it is known::

    talk.mp3: english (en) 97.1%; german 1.2%, dutch 0.4%

or, with ``--format json``, one JSON object per line (``file``, ``language``, ``name``,
``probability`` and the ``languages`` ranked after it). Failures go to standard error.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING

import click

from whisperd.errors import CancelledError, WhisperdError
from whisperd.languages import language_name

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path
    from typing import IO

    from rich.console import Console

    from whisperd.batch import FileJob
    from whisperd.config import Settings
    from whisperd.engine.detection import LanguageDetection
    from whisperd.engine.options import TranscribeOptions
    from whisperd.service import Cancellation

__all__ = ["detect_languages", "detection_line", "detection_param", "run_detection"]

SHOWN_CANDIDATES = 3
"""Languages listed after the detected one."""


def detection_line(source: Path, detection: LanguageDetection, *, as_json: bool) -> str:
    """One file's detection as a line of text (or of JSON), without the line break."""
    ranked = detection.candidates[: SHOWN_CANDIDATES + 1]
    if as_json:
        return json.dumps(
            {
                "file": str(source),
                "language": detection.language,
                "name": language_name(detection.language),
                "probability": round(detection.probability, 6),
                "languages": [
                    {"code": item.language, "probability": round(item.probability, 6)}
                    for item in ranked
                ],
            },
            ensure_ascii=False,
        )
    line = (
        f"{source}: {language_name(detection.language)} ({detection.language}) "
        f"{detection.probability:.1%}"
    )
    others = [item for item in ranked if item.language != detection.language]
    if others:
        shown = ", ".join(
            f"{language_name(item.language)} {item.probability:.1%}"
            for item in others[:SHOWN_CANDIDATES]
        )
        line += f"; {shown}"
    return line


async def detect_languages(
    settings: Settings,
    options: TranscribeOptions,
    jobs: Sequence[FileJob],
    *,
    out: IO[str],
    console: Console,
    as_json: bool,
    cancel: Cancellation,
) -> int:
    """Print the language of every file in ``jobs``, in order; return how many failed.

    The model is loaded and checked against ``options`` first; a file that cannot be used is
    reported on ``console`` and the next one is tried. ``cancel`` stops before the next file.

    Raises:
        WhisperdError: if the model cannot be had or the options do not suit it.
    """
    from whisperd.audio.decode import AudioSource
    from whisperd.scheduler.batcher import Priority
    from whisperd.service import TranscriptionRequest, TranscriptionService

    service = TranscriptionService.create(settings, progress=True)
    failed = 0
    try:
        await service.model(options=options)
        for job in jobs:
            if cancel.cancelled:
                break
            request = TranscriptionRequest(AudioSource(job.source), options, priority=Priority.BULK)
            try:
                transcription = await service.open(request)
                detection = await transcription.detect_language(cancel=cancel)
            except CancelledError:
                break
            except WhisperdError as exc:
                failed += 1
                console.print(f"[red]failed[/red] {job.source}: {exc.message}", soft_wrap=True)
                continue
            out.write(detection_line(job.source, detection, as_json=as_json) + "\n")
            out.flush()
    finally:
        await asyncio.to_thread(service.close)
    return failed


def run_detection(
    settings: Settings,
    options: TranscribeOptions,
    jobs: Sequence[FileJob],
    *,
    server: str | None,
    as_json: bool,
    console: Console,
    ask: str | None = None,
) -> int:
    """Run ``--detect-language`` over ``jobs`` under Ctrl-C handling; the exit code.

    Returns:
        0 when every file's language was printed, 1 when some failed, 128 + the signal's
        number when interrupted.

    Raises:
        click.UsageError: with ``--server`` (detection runs here, with a local model), or
            with ``--ask`` (there is no transcript to ask about).
        WhisperdError: if the model cannot be had or the options do not suit it.
    """
    from whisperd.cli_interrupts import Interrupts
    from whisperd.service import Cancellation

    if server is not None:
        raise click.UsageError(
            "--detect-language runs with a local model, not on --server: leave out --server, "
            "or POST the files to the server's /v1/audio/language."
        )
    if ask is not None:
        raise click.UsageError(
            "--ask needs a transcript and --detect-language makes none: leave out one of them."
        )
    cancel = Cancellation()
    interrupts = Interrupts(cancel, console)

    async def detect() -> int:
        with interrupts.installed():
            return await detect_languages(
                settings,
                options,
                jobs,
                out=sys.stdout,
                console=console,
                as_json=as_json,
                cancel=cancel,
            )

    failed = asyncio.run(detect())
    if cancel.cancelled:
        return interrupts.exit_code
    return 1 if failed else 0


def detection_param() -> click.Option:
    """The ``--detect-language`` flag."""
    return click.Option(
        ["--detect-language"],
        is_flag=True,
        default=False,
        help="Print each file's spoken language (and the next most probable) instead of "
        "transcribing it; --languages limits it to candidates, -f json prints JSON lines.",
    )

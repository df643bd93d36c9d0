"""The ``whisperd`` command: ``transcribe``, ``models`` and ``serve``. Thin: parsing and display."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from whisperd import cli_models
from whisperd.audio.formats import OUTPUT_FORMATS, UNTIMED_FORMATS
from whisperd.batch import DEFAULT_CONCURRENCY
from whisperd.cli_ask import ask_params, asking_output, llm_settings
from whisperd.cli_config import config as config_command
from whisperd.cli_language import detection_param, run_detection
from whisperd.cli_options import (
    option_params,
    options_from_flags,
    subtitle_params,
    subtitle_style,
)
from whisperd.cli_settings import env_name, given_settings, setting_option, settings_options
from whisperd.cli_speakers import diarization_from_flags, speaker_params
from whisperd.config import Settings
from whisperd.errors import WhisperdError
from whisperd.schemas.validation import describe

if TYPE_CHECKING:
    from whisperd.audio.formats import OutputFormat
    from whisperd.audio.subtitles import SubtitleStyle
    from whisperd.batch import BatchSummary, FileJob
    from whisperd.cli_output import Output
    from whisperd.engine.options import TranscribeOptions


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="whisperd")
def cli() -> None:
    """Self-hosted Whisper speech-to-text: an API server and a command-line transcriber."""


cli.add_command(config_command)

_FORMAT_NAMES: dict[str, tuple[OutputFormat, ...]] = {
    "txt": ("text",),
    "text": ("text",),
    "json": ("json",),
    "verbose_json": ("verbose_json",),
    "srt": ("srt",),
    "vtt": ("vtt",),
    "tsv": ("tsv",),
    "all": OUTPUT_FORMATS,
}

STDOUT = "-"
"""The ``--output-dir`` that prints the transcript to standard output."""


def _settings(**overrides: Any) -> Settings:
    """Build settings from the environment with the flags that were given on top."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise click.UsageError(describe(exc, name=env_name)) from None


def _flag_name(field: str) -> str:
    return f"--{field.replace('_', '-')}"


def _setup_logging(level: str) -> None:
    """Configure logging once, for the commands that are not servers (``serve`` has its own
    format: :func:`whisperd.cli_logs.server_logging`)."""
    logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s: %(message)s")


@cli.group(params=[setting_option("models_dir")], invoke_without_command=True)
@click.pass_context
def models(ctx: click.Context, models_dir: Path | None) -> None:
    """List the known model names and which are present locally; the commands below show,
    load and unload the models loaded on a running server."""
    if ctx.invoked_subcommand is not None:
        return
    from whisperd.engine.hub import list_models

    settings = _settings(models_dir=models_dir)
    table = Table("model", "aliases", "repository", "translation", "local")
    for entry in list_models(models_dir=settings.models_dir):
        table.add_row(
            entry.name,
            ", ".join(entry.aliases),
            entry.repo_id,
            "yes" if entry.supports_translation else "no",
            "[green]yes[/green]" if entry.present else "-",
        )
    Console().print(table)


for _command in (cli_models.loaded, cli_models.load, cli_models.unload):
    models.add_command(_command)


@cli.command()
@settings_options
def serve(**flags: Any) -> None:
    """Run the HTTP server. Every setting is a flag here and an environment variable.

    The default model is loaded at startup (GET /health answers 503 "loading" until it is
    ready); a model that cannot be had stops the server with exit code 2.

    SIGTERM or Ctrl-C drains the server: new work gets 503, work in flight has
    --shutdown-timeout-s to finish, then the server exits with 0; a second one quits at once.

    With --ray, Ray Serve's proxy listens instead and spreads the work over --replicas
    copies of the server (the ray extra; docs/ray.md).
    """
    from whisperd.app import run_server
    from whisperd.cli_logs import server_logging

    settings = _settings(**given_settings(flags))
    try:
        with server_logging(settings.log_level, settings.log_format):
            if settings.ray:
                _run_on_ray(settings)
            else:
                run_server(settings)
    except WhisperdError as exc:  # escaped: a message may hold brackets (whisperd[otel])
        Console(stderr=True).print(f"[red]error:[/red] {escape(exc.message)}", soft_wrap=True)
        raise SystemExit(2) from None


def _run_on_ray(settings: Settings) -> None:
    """``serve --ray``: whisperd as a Ray Serve application (docs/ray.md).

    Raises:
        StartupError: if the ``ray`` extra is not installed, or Ray cannot run it as set.
    """
    from whisperd.errors import StartupError

    try:
        from whisperd.ray_serve import run_on_ray
    except ImportError as exc:
        raise StartupError(
            f"--ray needs Ray Serve ({exc.name or exc} is missing): pip install 'whisperd[ray]'"
        ) from exc
    run_on_ray(settings)


def _formats(values: tuple[str, ...]) -> tuple[OutputFormat, ...]:
    chosen: list[OutputFormat] = []
    for value in values or ("txt",):
        for fmt in _FORMAT_NAMES[value]:
            if fmt not in chosen:
                chosen.append(fmt)
    return tuple(chosen)


def _print_summary(console: Console, summary: BatchSummary, jobs: int) -> None:
    for result in summary.results:
        if result.error is not None:  # escaped: a message may hold brackets (whisperd[diarize])
            failed = f"{escape(str(result.job.source))}: {escape(result.error)}"
            console.print(f"[red]failed[/red] {failed}", soft_wrap=True)
    line = (
        f"{summary.done} of {jobs} file(s) transcribed: "
        f"{summary.audio_seconds:.1f} s of audio in {summary.wall_seconds:.1f} s "
        f"({summary.speed:.2f}x real time)"
    )
    if summary.failed:
        line += f", [red]{summary.failed} failed[/red]"
    if summary.interrupted:
        line += "; [yellow]interrupted[/yellow], no partial output written"
    console.print(line, soft_wrap=True)


def _jobs(params: dict[str, Any]) -> list[FileJob]:
    """The files to transcribe and their output stems.

    Raises:
        InputError: if a path does not exist or a folder holds no media files.
    """
    from whisperd.batch import collect_jobs

    output_dir = params["output_dir"]
    folder = Path("." if output_dir == STDOUT else output_dir)
    return collect_jobs([Path(p) for p in params["paths"]], folder)


def _output(
    params: dict[str, Any],
    jobs: list[FileJob],
    options: TranscribeOptions,
    style: SubtitleStyle | None = None,
) -> Output:
    """Files in the output folder, or standard output for ``-o -`` (one file, one format).

    Raises:
        click.UsageError: if ``-o -`` is given several formats or several files.
    """
    from whisperd.cli_output import FileOutput, StreamOutput

    formats = _formats(params["format"])
    word_timestamps = options.word_timestamps
    if params["output_dir"] != STDOUT:
        return FileOutput(
            formats, word_timestamps=word_timestamps, style=style, logprobs=options.logprobs
        )
    if len(formats) != 1:
        raise click.UsageError(
            f"-o - prints one format to standard output, not {len(formats)}: "
            "give one --format, or an output folder."
        )
    if len(jobs) != 1:
        raise click.UsageError(
            f"-o - prints one file's transcript to standard output, not {len(jobs)} files: "
            "give one file, or an output folder."
        )
    return StreamOutput(
        formats[0],
        sys.stdout,
        word_timestamps=word_timestamps,
        style=style,
        logprobs=options.logprobs,
    )


def _transcribe(**params: Any) -> None:
    """Transcribe audio and video files or folders to text and subtitle files.

    Outputs go next to each file's name in the output folder (input folders are mirrored), or
    to standard output with -o - (one file, one format). Progress and messages go to standard
    error: a bar per file on a terminal, plain lines otherwise.

    Non-speech (silence, music, noise) is removed with Silero VAD before decoding: VAD is on by
    default, unlike faster-whisper; --no-vad-filter decodes everything.

    Ctrl-C (or SIGTERM) stops the file being transcribed at its next 30-second window, writes
    nothing for it, releases the model and exits with 130 (143 for SIGTERM); a second one quits
    at once.

    With --server URL the files are transcribed as jobs on that whisperd server instead (its
    model and hardware; the same options, speaker flags, progress and output files); the API
    key comes from WHISPERD_API_KEY (or --api-key). Running the same command again resumes its
    jobs rather than submitting new ones; Ctrl-C cancels them.
    """
    from whisperd.cli_interrupts import Interrupts
    from whisperd.cli_progress import run_with_progress
    from whisperd.cli_remote import remote_config, run_remote
    from whisperd.service import Cancellation

    try:
        options = options_from_flags(params)
    except ValidationError as exc:
        raise click.UsageError(describe(exc, name=_flag_name)) from None
    style = subtitle_style(params, _formats(params["format"]))
    speakers = diarization_from_flags(params)
    if style is not None:  # cues are cut at word timings
        options = options.model_copy(update={"word_timestamps": True})
    if UNTIMED_FORMATS.issuperset(_formats(params["format"])):
        options = options.model_copy(update={"segment_timestamps": False})
    remote = remote_config(params)
    if remote is not None:
        remote = dataclasses.replace(remote, concurrency=params["concurrency"])
    settings = _settings(
        model=params["model"],
        device=params["device"],
        compute_type=params["compute_type"],
        models_dir=params["models_dir"],
        offline=params["offline"] or None,
        **llm_settings(params),
    )
    _setup_logging("warning")
    console = Console(stderr=True)
    try:
        jobs = _jobs(params)
        if params["detect_language"]:
            as_json = "json" in params["format"]
            code = run_detection(
                settings,
                options,
                jobs,
                server=params["server"],
                as_json=as_json,
                console=console,
                ask=params["ask"],
            )
            raise SystemExit(code)
        output = _output(params, jobs, options, style)
        asking = asking_output(
            params,
            settings,
            output,
            files=len(jobs),
            to_stdout=params["output_dir"] == STDOUT,
            console=console,
        )
        output = asking or output
        cancel = Cancellation()
        interrupts = Interrupts(cancel, console)

        async def transcribe() -> BatchSummary:
            with interrupts.installed():
                if remote is not None:
                    return await run_remote(
                        remote,
                        options,
                        jobs,
                        output=output,
                        console=console,
                        cancel=cancel,
                        speakers=speakers,
                    )
                return await run_with_progress(
                    settings,
                    options,
                    jobs,
                    output=output,
                    console=console,
                    cancel=cancel,
                    concurrency=params["concurrency"],
                    speakers=speakers,
                )

        summary = asyncio.run(transcribe())
    except WhisperdError as exc:
        console.print(f"[red]error:[/red] {escape(exc.message)}", soft_wrap=True)
        raise SystemExit(2) from None
    _print_summary(console, summary, len(jobs))
    if asking is not None and asking.failures:
        console.print(f"[red]{len(asking.failures)} answer(s) failed[/red]; transcripts kept")
    if summary.interrupted:
        raise SystemExit(interrupts.exit_code)
    if summary.failed or (asking is not None and asking.failures):
        raise SystemExit(1)


def _transcribe_command() -> click.Command:
    params: list[click.Parameter] = [
        click.Argument(["paths"], nargs=-1, required=True, type=click.Path()),
        setting_option("model", help_text="Model name, Hugging Face repo id or directory."),
        click.Option(
            ["--format", "-f"],
            multiple=True,
            type=click.Choice(sorted(_FORMAT_NAMES)),
            default=("txt",),
            show_default=True,
            help="Output format; repeat for several; all: every format (txt, json, "
            "verbose_json, srt, vtt, tsv).",
        ),
        click.Option(
            ["--output-dir", "-o"],
            default=".",
            show_default=True,
            type=click.Path(file_okay=False),
            help="Folder for the output files; - prints the transcript to standard output "
            "instead (one file, one format).",
        ),
        setting_option("device"),
        setting_option("compute_type"),
        setting_option("models_dir"),
        setting_option("offline"),
        click.Option(
            ["--server"],
            default=None,
            metavar="URL",
            help="Transcribe as jobs on this whisperd server (e.g. http://127.0.0.1:8000) "
            "instead of loading a model here.",
        ),
        click.Option(
            ["--api-key"],
            default=None,
            help="API key of --server; prefer WHISPERD_API_KEY, which the process list "
            "does not show.",
        ),
        click.Option(
            ["--concurrency"],
            type=click.IntRange(1, 64),
            default=DEFAULT_CONCURRENCY,
            show_default=True,
            help="Files transcribed at once; their windows share the model's batches.",
        ),
        *option_params(),
        *subtitle_params(),
        *speaker_params(),
        detection_param(),
        *ask_params(),
    ]
    return click.Command(
        "transcribe", callback=_transcribe, params=params, help=_transcribe.__doc__
    )


def main() -> None:
    """Entry point of the ``whisperd`` console script."""
    cli.add_command(_transcribe_command())
    cli()

"""The ``whisperd`` command: ``transcribe``, ``models`` and ``serve``. Thin: parsing and display."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from whisperd.cli_options import option_params, options_from_flags
from whisperd.config import Settings
from whisperd.errors import WhisperdError

if TYPE_CHECKING:
    from whisperd.audio.formats import OutputFormat
    from whisperd.batch import BatchSummary


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="whisperd")
def cli() -> None:
    """Self-hosted Whisper speech-to-text: an API server and a command-line transcriber."""


_FORMAT_NAMES: dict[str, tuple[OutputFormat, ...]] = {
    "txt": ("text",),
    "text": ("text",),
    "json": ("json",),
    "verbose_json": ("verbose_json",),
    "srt": ("srt",),
    "vtt": ("vtt",),
    "tsv": ("tsv",),
    "all": ("text", "verbose_json", "srt", "vtt", "tsv"),
}


def _settings(**overrides: Any) -> Settings:
    """Build settings from the environment with the flags that were given on top."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise click.UsageError(_validation_message(exc)) from None


def _validation_message(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "value"
        problems.append(f"{where.replace('_', '-')}: {error['msg']}")
    return "; ".join(problems)


def _setup_logging(level: str, *, request_ids: bool = False) -> None:
    """Configure logging once; server logs carry the request id of each record."""
    if not request_ids:
        logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s: %(message)s")
        return
    from whisperd.api.middleware import RequestIdLogFilter

    handler = logging.StreamHandler()
    handler.addFilter(RequestIdLogFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
    )
    logging.basicConfig(level=level.upper(), handlers=[handler])


@cli.command()
@click.option(
    "--models-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Model cache folder (default: the Hugging Face cache).",
)
def models(models_dir: Path | None) -> None:
    """List the known model names and which are present locally."""
    from whisperd.engine.registry import list_models

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


@cli.command()
@click.option("--model", "-m", default=None, help="Default model name, repo id or directory.")
@click.option("--host", default=None, help="Listen address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Listen port (default 8000).")
@click.option("--api-key", "api_keys", multiple=True, help="Accepted API key; repeat for several.")
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default=None,
    help="Where the model runs.",
)
@click.option("--compute-type", default=None, help="auto, int8, float16, ...")
def serve(**flags: Any) -> None:
    """Run the HTTP server."""
    from whisperd.app import run_server

    flags["api_keys"] = list(flags["api_keys"]) or None
    settings = _settings(**flags)
    _setup_logging(settings.log_level, request_ids=True)
    run_server(settings)


def _formats(values: tuple[str, ...]) -> tuple[OutputFormat, ...]:
    chosen: list[OutputFormat] = []
    for value in values or ("txt",):
        for fmt in _FORMAT_NAMES[value]:
            if fmt not in chosen:
                chosen.append(fmt)
    return tuple(chosen)


def _print_summary(console: Console, summary: BatchSummary) -> None:
    for result in summary.results:
        if not result.ok:
            console.print(f"[red]failed[/red] {result.job.source}: {result.error}")
    done = len(summary.results) - summary.failed
    console.print(
        f"{done} of {len(summary.results)} file(s) transcribed: "
        f"{summary.audio_seconds:.1f} s of audio in {summary.wall_seconds:.1f} s "
        f"({summary.speed:.2f}x real time)"
        + (f", [red]{summary.failed} failed[/red]" if summary.failed else "")
    )


def _transcribe(**params: Any) -> None:
    """Transcribe audio and video files or folders to text and subtitle files."""
    from whisperd.cli_progress import run_with_progress

    try:
        options = options_from_flags(params)
    except ValidationError as exc:
        raise click.UsageError(_validation_message(exc)) from None
    settings = _settings(
        model=params["model"],
        device=params["device"],
        compute_type=params["compute_type"],
        models_dir=params["models_dir"],
        offline=params["offline"] or None,
    )
    _setup_logging("warning")
    console = Console(stderr=True)
    try:
        summary = asyncio.run(
            run_with_progress(
                settings,
                options,
                [Path(p) for p in params["paths"]],
                output_dir=Path(params["output_dir"]),
                formats=_formats(params["format"]),
                console=console,
            )
        )
    except WhisperdError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise SystemExit(2) from None
    _print_summary(console, summary)
    if summary.failed:
        raise SystemExit(1)


def _transcribe_command() -> click.Command:
    params: list[click.Parameter] = [
        click.Argument(["paths"], nargs=-1, required=True, type=click.Path()),
        click.Option(["--model", "-m"], default=None, help="Model name, repo id or directory."),
        click.Option(
            ["--format", "-f"],
            multiple=True,
            type=click.Choice(sorted(_FORMAT_NAMES)),
            help="Output format; repeat for several (default: txt).",
        ),
        click.Option(
            ["--output-dir", "-o"],
            default=".",
            type=click.Path(file_okay=False),
            help="Folder for the output files (default: current folder).",
        ),
        click.Option(
            ["--device"],
            default=None,
            type=click.Choice(["auto", "cpu", "cuda"]),
            help="Where the model runs.",
        ),
        click.Option(["--compute-type"], default=None, help="auto, int8, float16, ..."),
        click.Option(
            ["--models-dir"],
            default=None,
            type=click.Path(file_okay=False),
            help="Model cache folder.",
        ),
        click.Option(
            ["--offline"],
            is_flag=True,
            default=False,
            help="Use only cached models and local directories.",
        ),
        *option_params(),
    ]
    return click.Command(
        "transcribe", callback=_transcribe, params=params, help=_transcribe.__doc__
    )


def main() -> None:
    """Entry point of the ``whisperd`` console script."""
    cli.add_command(_transcribe_command())
    cli()

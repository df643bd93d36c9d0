"""``whisperd transcribe --ask "summarize it"``: each transcript, then an LLM's answer about it.

The transcript is written first, exactly as without ``--ask`` (files, or standard output with
``-o -``); only then is the LLM asked (:mod:`whisperd.service.ask`). The answer is printed to
standard output (after a ``## file`` heading when several files are transcribed) and, when
the transcripts go to files, also saved beside them as ``<name>.answer.txt``. An LLM that is
down, refuses or times out is reported on standard error and counted; the transcript stays
written.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import TYPE_CHECKING, Any

import click

from whisperd.cli_output import write_atomically
from whisperd.service.ask import LlmConfig, answer

if TYPE_CHECKING:
    from pathlib import Path
    from typing import IO

    from rich.console import Console

    from whisperd.cli_output import Output
    from whisperd.config import Settings
    from whisperd.engine.base import Transcript

__all__ = [
    "ANSWER_EXTENSION",
    "LLM_SETTINGS",
    "AskingOutput",
    "ask_params",
    "asking_output",
    "llm_settings",
]

ANSWER_EXTENSION = "answer.txt"
"""What an answer file's name ends with, after the transcript's output stem."""


class AskingOutput:
    """An :class:`~whisperd.cli_output.Output` that asks the LLM about every transcript
    another output has written, and prints (and saves) the answer."""

    def __init__(
        self,
        inner: Output,
        config: LlmConfig,
        instruction: str,
        *,
        out: IO[str],
        console: Console,
        headings: bool,
        save: bool,
    ) -> None:
        """Write through ``inner``, then ask ``instruction`` of the LLM ``config`` describes.

        Args:
            inner: The output of the transcripts themselves.
            config: The LLM.
            instruction: What to ask about each transcript.
            out: Where answers are printed (standard output).
            console: Where failures are reported (standard error).
            headings: Print a ``## file`` line before each answer (several files).
            save: Also write each answer to ``<stem>.answer.txt``.
        """
        self._inner = inner
        self._config = config
        self._instruction = instruction
        self._out = out
        self._console = console
        self._headings = headings
        self._save = save
        self._lock = threading.Lock()
        self.failures: list[str] = []
        """``file: why`` for each transcript the LLM gave no answer about."""

    def write(self, transcript: Transcript, stem: Path) -> list[Path]:
        """Write the transcript through the inner output, then ask about it (blocking: this
        runs on a worker thread, with its own event loop for the LLM's calls).

        Raises:
            OSError: if the transcript or the answer cannot be written.
        """
        written = self._inner.write(transcript, stem)
        reply = asyncio.run(answer(self._config, transcript.text, self._instruction))
        with self._lock:
            if reply.error is not None or reply.text is None:
                why = reply.error.message if reply.error is not None else "no answer"
                self.failures.append(f"{stem.name}: {why}")
                self._console.print(
                    f"[red]no answer[/red] for {stem.name} (the transcript is kept): {why}",
                    soft_wrap=True,
                )
                return written
            if self._headings:
                self._out.write(f"## {stem.name}\n")
            self._out.write(reply.text.rstrip("\n") + "\n")
            self._out.flush()
        if self._save:
            target = stem.with_name(f"{stem.name}.{ANSWER_EXTENSION}")
            write_atomically(target, reply.text.rstrip("\n") + "\n")
            written.append(target)
        return written


LLM_SETTINGS = ("llm_url", "llm_model", "llm_api_key", "llm_timeout_s", "llm_context_tokens")
"""The settings of the LLM, each a flag of ``whisperd transcribe``."""


def llm_settings(params: dict[str, Any]) -> dict[str, Any]:
    """The LLM settings the command line gave (None for those left to the environment)."""
    return {name: params.get(name) for name in LLM_SETTINGS}


def asking_output(
    params: dict[str, Any],
    settings: Settings,
    inner: Output,
    *,
    files: int,
    to_stdout: bool,
    console: Console,
) -> AskingOutput | None:
    """The output that asks ``--ask``'s instruction about each transcript (None without it).

    Raises:
        click.UsageError: if ``--ask`` is blank, or given without an LLM (``--llm-url``).
    """
    if params.get("ask") is None:
        return None
    instruction = params["ask"].strip()
    if not instruction:
        raise click.UsageError('--ask needs an instruction, e.g. --ask "summarize it".')
    config = LlmConfig.of(settings)
    if config is None:
        raise click.UsageError(
            "--ask needs an OpenAI-compatible LLM: give --llm-url (or WHISPERD_LLM_URL), "
            "e.g. http://127.0.0.1:11434/v1 for Ollama."
        )
    return AskingOutput(
        inner,
        config,
        instruction,
        out=sys.stdout,
        console=console,
        headings=files > 1 or to_stdout,
        save=not to_stdout,
    )


def ask_params() -> list[click.Option]:
    """``--ask`` and the LLM's settings as flags (left unset unless given)."""
    from whisperd.cli_settings import setting_option

    return [
        click.Option(
            ["--ask"],
            default=None,
            metavar="TEXT",
            help='An instruction about each transcript ("summarize it") for an '
            "OpenAI-compatible LLM (--llm-url): the answer is printed, and saved as "
            "<name>.answer.txt next to the transcript's files.",
        ),
        *(setting_option(name) for name in LLM_SETTINGS if name != "llm_api_key"),
        setting_option(
            "llm_api_key",
            help_text="API key of --llm-url; prefer WHISPERD_LLM_API_KEY, which the process "
            "list does not show.",
        ),
    ]

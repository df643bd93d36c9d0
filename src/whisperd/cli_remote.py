"""``whisperd transcribe --server URL``: each file becomes a job on a running whisperd server.

Up to :attr:`RemoteConfig.concurrency` files are in flight at once. Each is submitted with the
decoding options and the speaker flags' diarization (known speakers' clips as data URLs) as form
fields and an ``Idempotency-Key`` made of the file's SHA-256 and those fields, so the same
command run again (after a network failure, or once it is done) finds its earlier jobs instead
of submitting new ones; an earlier job that was cancelled or failed is deleted and submitted
afresh. Each job is polled, every 0.5 s while it moves and up to 5 s apart while it does not,
and its progress (seconds of audio done) drives the same bars or lines as a local run. The
transcript is fetched once, as ``verbose_json``, and written by the same
:class:`~whisperd.cli_output.Output` as a local run: the files are the same, speaker labels
included.

A file whose job is refused or fails, or whose server cannot be reached, gets its error and the
other files go on. A cancelled run (Ctrl-C) cancels (``DELETE``) the jobs it submitted that
have not ended, writes nothing for them and starts no other file.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click

from whisperd.batch import BatchSummary, FileJob, FileResult, InputError
from whisperd.cli_progress import progress_reporter
from whisperd.cli_remote_client import (
    JobsClient,
    RemoteError,
    data_url,
    idempotency_key,
    job_fields,
    speaker_fields,
)
from whisperd.cli_settings import flag_name
from whisperd.config import ClientSettings
from whisperd.errors import WhisperdError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from rich.console import Console

    from whisperd.audio.decode import AudioSource
    from whisperd.batch import Reporter, Speakers
    from whisperd.cli_output import Output
    from whisperd.engine.options import TranscribeOptions
    from whisperd.service import Cancellation

__all__ = ["RemoteConfig", "RemoteRunner", "remote_config", "run_remote"]

logger = logging.getLogger(__name__)

_ENDED: Final = frozenset({"succeeded", "failed", "cancelled"})
_LOCAL_ONLY: Final = ("device", "compute_type", "models_dir", "offline")
"""Flags of the local model, which a server decides for itself."""
_CANCEL_CHECK_S: Final = 0.1
"""How often a wait between two polls looks for Ctrl-C, seconds."""


@dataclass(frozen=True, slots=True)
class RemoteConfig:
    """Where and how ``transcribe --server`` runs its jobs."""

    server: str
    """The server's base URL (``http://host:8000``)."""
    api_key: str | None = None
    """Sent as ``Authorization: Bearer``; None: none."""
    model: str | None = None
    """The model asked for; None: the server's default model."""
    concurrency: int = 4
    """Files in flight at once (submitted and not yet written)."""
    poll_s: float = 0.5
    """First wait between two polls of a job, seconds; again after each move."""
    max_poll_s: float = 5.0
    """Longest wait between two polls, seconds (the wait doubles while the job stands still)."""
    retries: int = 5
    """Transient failures in a row (the server restarting) a poll outlives."""


def remote_config(params: Mapping[str, Any]) -> RemoteConfig | None:
    """The remote run the ``transcribe`` flags ask for; None without ``--server``.

    The API key is ``--api-key``, else ``WHISPERD_API_KEY``; the model is ``--model`` only
    (``WHISPERD_MODEL`` names the local default, not the server's).

    Raises:
        click.UsageError: if a flag of the local model is given with ``--server``, the URL is
            not http(s), or ``--api-key`` comes without ``--server``.
    """
    server = params.get("server")
    if server is None:
        if params.get("api_key") is not None:
            raise click.UsageError("--api-key is the key of a --server: give one.")
        return None
    local = [flag_name(name) for name in _LOCAL_ONLY if params.get(name) not in (None, False)]
    if local:
        verb = "is" if len(local) == 1 else "are"
        raise click.UsageError(
            f"{', '.join(local)} {verb} for transcribing here: with --server, the server's own "
            "settings decide."
        )
    if not server.startswith(("http://", "https://")):
        raise click.UsageError(
            f"--server takes an http(s) URL such as http://127.0.0.1:8000, not {server!r}."
        )
    key = params.get("api_key")
    if key is None:
        secret = ClientSettings().api_key
        key = secret.get_secret_value() if secret is not None else None
    return RemoteConfig(server=server, api_key=key, model=params.get("model"))


async def run_remote(
    config: RemoteConfig,
    options: TranscribeOptions,
    jobs: Sequence[FileJob],
    *,
    output: Output,
    console: Console,
    cancel: Cancellation,
    speakers: Speakers = (None, ()),
) -> BatchSummary:
    """Transcribe every file as a job on ``config.server`` under a progress display on
    ``console``; failures are recorded per file, never raised.

    ``cancel`` cancels the jobs in flight and starts no other file. ``speakers`` is the
    diarization every job asks for and the known speakers' clips, as for a local run
    (:func:`~whisperd.cli_speakers.diarization_from_flags`); the clips are read once, here.

    Raises:
        InputError: if a known speaker's clip cannot be read (before anything is sent).
    """
    diarization, clips = speakers
    references = await asyncio.to_thread(_references, clips)
    labelling = speaker_fields(diarization, references)
    client = JobsClient(config.server, api_key=config.api_key)
    try:
        with progress_reporter(console) as reporter:
            runner = RemoteRunner(
                client,
                options,
                output,
                reporter,
                config=config,
                cancel=cancel,
                diarization_fields=labelling,
            )
            return await runner.run(jobs)
    finally:
        await client.aclose()


def _references(clips: Sequence[tuple[str, AudioSource]]) -> list[tuple[str, str]]:
    """The known speakers' names and their clips as data URLs.

    Raises:
        InputError: if a clip's file cannot be read.
    """
    references = []
    for name, clip in clips:
        try:
            references.append((name, data_url(clip.data)))
        except OSError as error:
            where = clip.data if isinstance(clip.data, Path) else "(bytes)"
            raise InputError(f"could not read {name!r}'s voice clip {where}: {error}") from None
    return references


class RemoteRunner:
    """Runs files as jobs on one server (see the module's docstring)."""

    def __init__(
        self,
        client: JobsClient,
        options: TranscribeOptions,
        output: Output,
        reporter: Reporter,
        *,
        config: RemoteConfig,
        cancel: Cancellation,
        diarization_fields: Mapping[str, str] | None = None,
    ) -> None:
        """Prepare a run; nothing is sent before :meth:`run`.

        ``diarization_fields`` are the diarization's form fields (:func:`speaker_fields`), sent with
        every job and part of its idempotency key; None: no diarization.
        """
        self._client = client
        self._options = options
        self._fields = job_fields(options, config.model) | dict(diarization_fields or {})
        self._output = output
        self._reporter = reporter
        self._config = config
        self._cancel = cancel
        self._started: set[FileJob] = set()
        self._writing = asyncio.Lock()
        """Outputs take one transcript at a time."""

    async def run(self, jobs: Sequence[FileJob]) -> BatchSummary:
        """Run every file until done or cancelled.

        Returns:
            The files' results in the order given (files not started before a cancellation
            have none).
        """
        began = time.perf_counter()
        slots = asyncio.Semaphore(self._config.concurrency)
        results = await asyncio.gather(*(self._file(job, slots) for job in jobs))
        wall = time.perf_counter() - began
        done = [result for result in results if result is not None]
        return BatchSummary(done, wall, interrupted=self._cancel.cancelled)

    async def _file(self, job: FileJob, slots: asyncio.Semaphore) -> FileResult | None:
        async with slots:
            if self._cancel.cancelled:
                return None
            result = FileResult(job)
            try:
                await self._transcribe(job, result)
            except WhisperdError as error:
                result.error = error.message
            except Exception as error:  # one file's bug must not stop the others
                logger.exception("unexpected failure on %s", job.source)
                result.error = f"internal error: {error!r}"
            self._reporter.finished(result)
            return result

    async def _transcribe(self, job: FileJob, result: FileResult) -> None:
        """Submit, wait, fetch and write one file, recording the outcome in ``result``.

        Raises:
            WhisperdError: if the server refuses or fails the job, or cannot be reached.
        """
        submitted = await self._submit(job)
        ended = await self._wait(job, submitted)
        if ended is None:
            result.interrupted = True
            return
        if ended["status"] != "succeeded":
            raise RemoteError(_why(ended))
        words = self._options.word_timestamps
        transcript = await self._client.transcript(ended["id"], words=words)
        self._start(job, transcript.duration)
        try:
            async with self._writing:
                result.outputs = await asyncio.to_thread(self._output.write, transcript, job.stem)
        except OSError as error:
            result.error = f"could not write the output: {error}"
            return
        result.audio_seconds = transcript.duration

    async def _submit(self, job: FileJob) -> dict[str, Any]:
        """The file's job: new, or the earlier one of the same content and options (one that
        was cancelled or failed is deleted and submitted afresh).

        Raises:
            InputError: if the file cannot be read.
            RemoteError: if the server refuses the job or cannot be reached.
        """
        try:
            digest = await asyncio.to_thread(_sha256, job.source)
        except OSError as error:
            raise InputError(f"could not read {job.source}: {error}") from None
        key = idempotency_key(digest, self._fields)
        submitted, replayed = await self._client.submit(job.source, self._fields, key)
        if replayed and submitted["status"] in ("failed", "cancelled"):
            await self._client.delete(submitted["id"])  # gone for good: its key is free again
            submitted, _ = await self._client.submit(job.source, self._fields, key)
        return submitted

    async def _wait(self, job: FileJob, remote: dict[str, Any]) -> dict[str, Any] | None:
        """Poll the job until it ends, reporting its progress.

        Returns:
            The ended job; None if the run was cancelled first (the job is cancelled too).

        Raises:
            RemoteError: if polling fails other than for a while (the server restarting).
        """
        delay, misses = self._config.poll_s, 0
        while remote["status"] not in _ENDED:
            self._progress(job, remote)
            if await self._cancelled_within(delay):
                await self._cancel_job(remote["id"])
                return None
            try:
                latest = await self._client.job(remote["id"])
            except RemoteError as error:
                misses += 1
                if not error.transient or misses > self._config.retries:
                    raise
                delay = min(delay * 2, self._config.max_poll_s)
                continue
            moved = _position(latest) != _position(remote)
            delay = self._config.poll_s if moved else min(delay * 2, self._config.max_poll_s)
            remote, misses = latest, 0
        self._progress(job, remote)
        return remote

    def _progress(self, job: FileJob, remote: Mapping[str, Any]) -> None:
        """Report the job's progress once its audio's length is known."""
        progress = remote.get("progress") or {}
        total = progress.get("total_seconds")
        if total is None:
            return
        self._start(job, float(total))
        self._reporter.advanced(job, float(progress.get("done_seconds") or 0.0))

    def _start(self, job: FileJob, duration: float) -> None:
        if job not in self._started:
            self._started.add(job)
            self._reporter.started(job, duration)

    async def _cancelled_within(self, seconds: float) -> bool:
        """Wait ``seconds``; True as soon as the run is cancelled."""
        deadline = time.monotonic() + seconds
        while not self._cancel.cancelled:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(left, _CANCEL_CHECK_S))
        return True

    async def _cancel_job(self, job_id: str) -> None:
        try:
            await self._client.delete(job_id)
        except RemoteError as error:
            logger.warning("Job %s could not be cancelled: %s", job_id, error.message)


def _position(remote: Mapping[str, Any]) -> tuple[object, object]:
    """What makes a poll news: the job's state and its seconds done."""
    return remote.get("status"), (remote.get("progress") or {}).get("done_seconds")


def _why(remote: Mapping[str, Any]) -> str:
    """Why a job did not succeed, as its error says."""
    error = remote.get("error") or {}
    message = error.get("message") if isinstance(error, dict) else None
    if remote["status"] == "cancelled":
        return "The job was cancelled on the server."
    return str(message or "The job failed on the server.")


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()

"""The parts of ``transcribe --server`` that need no server: options as form fields the
server reads back exactly, transcripts rebuilt from ``verbose_json`` that render every format
as the original does, idempotency keys, error messages, and the runner against a scripted
jobs API (a replayed cancelled job is submitted afresh; a server restarting is waited out)."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import pytest

from whisperd.audio.formats import OUTPUT_FORMATS, render, to_verbose_json
from whisperd.batch import FileJob, FileResult
from whisperd.cli_output import FileOutput
from whisperd.cli_remote import RemoteConfig, RemoteRunner
from whisperd.cli_remote_client import (
    JobsClient,
    RemoteError,
    idempotency_key,
    job_fields,
    transcript_of_verbose,
)
from whisperd.engine.base import SAMPLE_RATE, Segment, Transcript, Word
from whisperd.engine.options import TranscribeOptions
from whisperd.schemas.jobs import JobFields
from whisperd.schemas.openai import OpenAIFields, decoding_options
from whisperd.service import Cancellation
from whisperd.testing import FakeEngine

DATA = Path(__file__).parent / "data"
_URL = "http://whisperd.test"


@pytest.mark.parametrize(
    "options",
    [
        TranscribeOptions(),
        TranscribeOptions(temperature=(0.0,)),
        TranscribeOptions(temperature=(0.3,)),
        TranscribeOptions(temperature=(0.0, 0.5, 1.0), best_of=2),
        TranscribeOptions(
            language="de",
            task="translate",
            beam_size=1,
            patience=0.1 + 0.2,
            log_prob_threshold=-0.5,
            initial_prompt="Hello, world",
            prefix="So",
            hotwords="alpha,beta",
            suppress_tokens=(-1, 50, 51),
            word_timestamps=True,
            vad_filter=False,
            vad_parameters={"threshold": 0.4, "max_speech_duration_s": 12.5},
            max_new_tokens=100,
            chunk_length=10,
            clip_timestamps=(0.5, 3.25),
            multilingual=True,
            encoder_context="audio",
        ),
    ],
)
def test_the_server_reads_the_job_fields_back_into_the_same_options(
    options: TranscribeOptions,
) -> None:
    fields = job_fields(options, "small")
    assert (fields["model"], fields["response_format"]) == ("small", "verbose_json")
    # What the jobs route does with a form (api/jobs.py).
    parsed = OpenAIFields.model_validate(fields)
    read = decoding_options(parsed, fields, task=JobFields.model_validate(fields).task)
    assert read == options


def test_an_option_a_form_cannot_say_is_refused() -> None:
    with pytest.raises(ValueError, match="log_prob_threshold=None"):
        job_fields(TranscribeOptions(log_prob_threshold=None), None)


def _transcript(*, words: bool) -> Transcript:
    audio = np.zeros(SAMPLE_RATE * 95, dtype=np.float32)
    options = TranscribeOptions(word_timestamps=words, language="de", task="translate")
    return FakeEngine().transcribe(audio, options)


def _odd() -> Transcript:
    """Times before zero and backwards, a blank segment, a cue arrow, a line break."""
    word = Word(-0.2, 0.4, " Hallo", 0.5)
    segments = (
        Segment(0, 0, -0.5, 1.0, " Hallo --> Welt\nzwei", (1, 2), 0.0, -0.1, 1.1, 0.01, (word,)),
        Segment(1, 100, 2.0, 1.5, "   ", (), 0.2, -0.3, 1.2, 0.5, ()),
        Segment(2, 100, 3.0, 4.25, " Tschüss", (3,), 0.0, -0.2, 1.3, 0.02, ()),
    )
    return Transcript(segments, language="xx", language_probability=0.5, duration=4.3)


@pytest.mark.parametrize("transcript", [_transcript(words=True), _transcript(words=False), _odd()])
def test_a_transcript_rebuilt_from_verbose_json_renders_every_format_the_same(
    transcript: Transcript,
) -> None:
    words = transcript.segments[0].words is not None
    granularities = ("segment", "word") if words else ("segment",)
    body = json.loads(json.dumps(to_verbose_json(transcript, granularities=granularities)))
    rebuilt = transcript_of_verbose(body, words=words)
    for fmt in OUTPUT_FORMATS:
        expected = render(transcript, fmt, granularities=granularities)
        assert render(rebuilt, fmt, granularities=granularities) == expected, fmt
    assert rebuilt.language == transcript.language


def test_a_body_that_is_not_verbose_json_is_an_error() -> None:
    with pytest.raises(RemoteError, match="not verbose_json"):
        transcript_of_verbose({"text": "hello"}, words=False)


def test_idempotency_keys_follow_the_content_and_the_fields() -> None:
    fields = job_fields(TranscribeOptions(beam_size=1), None)
    key = idempotency_key("a" * 64, fields)
    assert key == idempotency_key("a" * 64, dict(reversed(fields.items())))
    assert key.startswith("whisperd-cli-")
    assert len(key) == len("whisperd-cli-") + 64
    assert key != idempotency_key("b" * 64, fields)
    assert key != idempotency_key("a" * 64, job_fields(TranscribeOptions(beam_size=2), None))


def _client(handler: Any) -> JobsClient:
    return JobsClient(_URL, api_key="k", transport=httpx2.MockTransport(handler))


def _call(client: JobsClient, job_id: str = "job_1") -> RemoteError:
    async def call() -> RemoteError:
        try:
            await client.job(job_id)
        except RemoteError as error:
            return error
        finally:
            await client.aclose()
        raise AssertionError("no error")

    return asyncio.run(call())


def test_errors_carry_the_servers_message_and_whether_to_try_again() -> None:
    envelope = {"error": {"message": "No job found with id 'job_1'.", "type": "x", "code": "y"}}
    refused = _call(_client(lambda request: httpx2.Response(404, json=envelope)))
    assert refused.message == f"No job found with id 'job_1'. (HTTP 404 from {_URL})"
    assert not refused.transient
    busy = _call(_client(lambda request: httpx2.Response(502, text="Bad Gateway")))
    assert busy.message == f"Bad Gateway (HTTP 502 from {_URL})"
    assert busy.transient

    def unreachable(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("Connection refused", request=request)

    down = _call(_client(unreachable))
    assert down.message == f"Cannot reach the server at {_URL}: Connection refused"
    assert down.transient


@dataclass
class _JobsApi:
    """A scripted jobs API: the first submission is answered with an earlier, cancelled job
    of the same key; the new job runs over three polls; ``outages`` polls answer 503 first."""

    transcript: Transcript
    outages: int = 0
    calls: list[str] = field(default_factory=list)
    polls: int = 0

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        assert request.headers["authorization"] == "Bearer k"
        if request.method == "POST":
            assert request.headers["idempotency-key"].startswith("whisperd-cli-")
            if self.calls.count("POST /v1/jobs") == 1:
                headers = {"idempotent-replayed": "true"}
                return httpx2.Response(202, json=self._job("job_old", "cancelled"), headers=headers)
            return httpx2.Response(202, json=self._job("job_new", "queued"))
        if request.method == "DELETE":
            return httpx2.Response(200, json=self._job("job_old", "cancelled"))
        if request.url.path.endswith("/result"):
            assert request.url.params.get_list("timestamp_granularities[]") == ["segment"]
            return httpx2.Response(200, json=to_verbose_json(self.transcript))
        if self.outages:
            self.outages -= 1
            return httpx2.Response(503, json={"error": {"message": "Restarting."}})
        self.polls += 1
        if self.polls < 3:
            return httpx2.Response(200, json=self._job("job_new", "running", self.polls * 30.0))
        return httpx2.Response(200, json=self._job("job_new", "succeeded", math.inf))

    def _job(self, job_id: str, status: str, done: float = 0.0) -> dict[str, Any]:
        total = self.transcript.duration
        progress = {"done_seconds": min(done, total), "total_seconds": total}
        return {"id": job_id, "status": status, "progress": progress, "error": None}


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, float]] = []
        self.results: list[FileResult] = []

    def started(self, job: FileJob, duration: float) -> None:
        self.events.append(("started", duration))

    def advanced(self, job: FileJob, position: float) -> None:
        self.events.append(("advanced", position))

    def finished(self, result: FileResult) -> None:
        self.results.append(result)


def _run(api: _JobsApi, tmp_path: Path) -> tuple[_Recorder, list[FileResult]]:
    config = RemoteConfig(server=_URL, api_key="k", poll_s=0.001, max_poll_s=0.004)
    job = FileJob(DATA / "speech.wav", tmp_path / "speech")
    reporter = _Recorder()

    async def run() -> list[FileResult]:
        client = _client(api)
        runner = RemoteRunner(
            client,
            TranscribeOptions(),
            FileOutput(("text", "srt")),
            reporter,
            config=config,
            cancel=Cancellation(),
        )
        try:
            return (await runner.run([job])).results
        finally:
            await client.aclose()

    return reporter, asyncio.run(run())


def test_a_replayed_cancelled_job_is_deleted_and_submitted_afresh(tmp_path: Path) -> None:
    transcript = _transcript(words=False)
    api = _JobsApi(transcript)
    reporter, results = _run(api, tmp_path)
    assert [r.error for r in results] == [None]
    assert api.calls[:3] == ["POST /v1/jobs", "DELETE /v1/jobs/job_old", "POST /v1/jobs"]
    assert api.calls[-1] == "GET /v1/jobs/job_new/result"
    assert (tmp_path / "speech.srt").read_text() == render(transcript, "srt")
    assert results[0].audio_seconds == transcript.duration
    assert reporter.events == [
        ("started", transcript.duration),
        ("advanced", 0.0),
        ("advanced", 30.0),
        ("advanced", 60.0),
        ("advanced", transcript.duration),
    ]


def test_a_server_restarting_is_waited_out_while_polling(tmp_path: Path) -> None:
    api = _JobsApi(_transcript(words=False), outages=3)
    _, results = _run(api, tmp_path)
    assert [r.error for r in results] == [None]
    assert api.polls == 3


def test_a_server_gone_for_good_fails_the_file(tmp_path: Path) -> None:
    api = _JobsApi(_transcript(words=False), outages=100)
    _, results = _run(api, tmp_path)
    assert [r.error for r in results] == [f"Restarting. (HTTP 503 from {_URL})"]
    assert api.calls.count("GET /v1/jobs/job_new") == RemoteConfig(_URL).retries + 1
    assert not (tmp_path / "speech.srt").exists()

"""Durable transcription jobs (``/v1/jobs``): submit, read, list, fetch the result, cancel.

Jobs belong to the API key that submitted them (a SHA-256 hash of it is stored, never the
key); another key sees none of them (404). On a server without API keys every caller shares
one owner. The jobs API is on when the server has a data directory (``WHISPERD_DATA_DIR``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final, get_args

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.requests import HTTPConnection

from whisperd.api.deps import FetcherDep, ServiceDep, SettingsDep, accepting_work
from whisperd.api.inputs import ParsedForm, audio_source, parse_form, report_ignored
from whisperd.audio.decode import AudioSource, DecodeLimits
from whisperd.audio.formats import GRANULARITIES, Granularity, render, to_json, to_verbose_json
from whisperd.audio.speakers import to_diarized_json
from whisperd.config import Settings
from whisperd.engine.base import Transcript
from whisperd.errors import InvalidOptionError, JobStoreUnavailableError
from whisperd.jobs import Job, JobService, JobStatus, Submission, job_json
from whisperd.jobs.service import check_submission
from whisperd.jobs.speakers import DIARIZATION_KEY
from whisperd.jobs.webhooks import check_webhook_url
from whisperd.schemas.diarization import (
    DIARIZE_MODEL,
    DiarizationFields,
    TranscriptionDiarized,
)
from whisperd.schemas.jobs import JobFields, JobList, JobObject
from whisperd.schemas.openai import (
    ARRAY_FIELDS,
    OBJECT_FIELDS,
    ErrorResponse,
    OpenAIFields,
    ResponseFormat,
    TranscriptionJson,
    TranscriptionVerbose,
    decoding_options,
    known_fields,
    refuse_unsupported,
    request_schema,
)
from whisperd.schemas.subtitles import SubtitleFields
from whisperd.service import TranscriptionService
from whisperd.service.log_context import JOB_ID

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["jobs"])

_FORMATS: Final[dict[str, ResponseFormat]] = {name: name for name in get_args(ResponseFormat)}
_JOB_FIELDS: Final = frozenset(JobFields.model_fields)
References = tuple[tuple[str, AudioSource], ...]
"""Known speakers' names and voice clips, as a submission sends them."""
_ERRORS: Final = {
    400: "A parameter, or the audio, cannot be used (`param` names the field).",
    401: "The API key is missing or wrong (only on a server started with --api-key).",
    404: "No job of that id for this API key.",
    409: "The job has no result: it has not succeeded (yet).",
    503: "The jobs API is off (no data directory), or the server is shutting down.",
    507: "The server has no room to store the audio; nothing was kept.",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorResponse, "description": _ERRORS[s]} for s in statuses}


def _jobs(connection: HTTPConnection) -> JobService:
    jobs: JobService | None = getattr(connection.app.state, "jobs", None)
    if jobs is None:
        raise JobStoreUnavailableError(
            "The jobs API is off on this server: start it with a data directory "
            "(--data-dir or WHISPERD_DATA_DIR)."
        )
    return jobs


JobsDep = Annotated[JobService, Depends(_jobs)]


def _owner(request: Request, settings: SettingsDep) -> str:
    """The caller's owner id: the SHA-256 of its API key (checked by the middleware)."""
    if not settings.api_keys:
        return ""
    _, _, token = request.headers.get("authorization", "").strip().partition(" ")
    return hashlib.sha256(token.strip(" \t").encode()).hexdigest()


OwnerDep = Annotated[str, Depends(_owner)]


async def _log_job_id(job_id: str) -> AsyncIterator[None]:
    """Name the job in the log lines of a ``/v1/jobs/{job_id}`` route (their ``job_id``).

    Async, so it runs in the route's own context (a sync dependency runs in a copy): the
    route and the pool threads it uses see it, until the route ends."""
    token = JOB_ID.set(job_id)
    try:
        yield
    finally:
        JOB_ID.reset(token)


_JOB_LOGS: Final = [Depends(_log_job_id)]


def _form_doc() -> dict[str, Any]:
    schema = request_schema()
    for name, field in JobFields.model_json_schema()["properties"].items():
        schema["properties"][name] = field
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": schema}},
        }
    }


def _form_limits(settings: Settings) -> dict[str, int]:
    limit = int(settings.max_upload_mb * 1024 * 1024)
    return {"max_files": 2, "max_fields": 256, "max_part_size": limit * 4 // 3 + 1024}


@router.post(
    "/jobs",
    status_code=202,
    openapi_extra=_form_doc(),
    dependencies=[Depends(accepting_work)],
    responses={
        **_errors(400, 401, 503, 507),
        404: {
            "model": ErrorResponse,
            "description": "The model named is no known model, repo id or model directory "
            "(as on /v1/audio/transcriptions).",
        },
    },
)
async def create_job(
    request: Request,
    jobs: JobsDep,
    owner: OwnerDep,
    fetcher: FetcherDep,
    settings: SettingsDep,
    service: ServiceDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> Response:
    """Submit audio for transcription in the background; answers 202 with the job.

    The fields are those of ``/v1/audio/transcriptions`` (``response_format`` becomes the
    result's default) plus ``task``, ``webhook_url`` and ``metadata``; ``diarize`` (or the
    diarizing model, or ``diarized_json``) with ``num_speakers`` / ``min_speakers`` /
    ``max_speakers`` and known speakers, or ``multichannel``, label the result's speakers
    (known speakers' clips are kept as their voice embeddings only). A model or options
    the synchronous route would refuse are refused here too, with its status, before anything
    is kept. The audio is stored on disk before the answer. The same ``Idempotency-Key``
    again returns the same job.
    """
    async with request.form(**_form_limits(settings)) as raw_form:
        form = parse_form(raw_form, arrays=ARRAY_FIELDS, objects=(*OBJECT_FIELDS, "metadata"))
        submission, references = _submission(form, owner, settings, jobs)
        submission = dataclasses.replace(submission, idempotency_key=idempotency_key or None)
        await check_submission(service, submission.model, submission.options)
        submission = await _with_speakers(submission, references, service)
        async with audio_source(form, fetcher) as source:
            job, created = await jobs.submit(submission, source.data)
    headers = {} if created else {"idempotent-replayed": "true"}
    response = JSONResponse(_public(job), status_code=202, headers=headers)
    ignored = form.unknown(known_fields() | _JOB_FIELDS | {"metadata"})
    return report_ignored(response, ignored, route=request.url.path)


def _submission(
    form: ParsedForm, owner: str, settings: Settings, jobs: JobService
) -> tuple[Submission, References]:
    """The job a form asks for (its audio apart), and its known speakers' clips.

    Raises:
        InvalidOptionError, ValidationError: if a field cannot be used.
        InvalidWebhookUrlError: if ``webhook_url`` is refused, or webhooks are off.
    """
    refuse_unsupported(form.fields)
    fields = OpenAIFields.model_validate(form.fields)
    extra = JobFields.model_validate(form.fields)
    if fields.stream:
        raise InvalidOptionError("A job cannot stream: poll it instead.", param="stream")
    if fields.ask:
        raise InvalidOptionError(
            "A job cannot ask an LLM about its transcript: send ask to "
            "/v1/audio/transcriptions, or ask about the job's result yourself.",
            param="ask",
        )
    shaping = SubtitleFields.model_validate(form.fields).first_sent()
    if shaping is not None:
        raise InvalidOptionError(
            f"A job's result is not shaped into subtitles: send {shaping} to "
            "/v1/audio/transcriptions.",
            param=shaping,
        )
    diarization, references = DiarizationFields.model_validate(form.fields).options(
        model=fields.model, response_format=fields.response_format
    )
    # Timed segments whatever the default format: the result may be asked as srt later.
    options = decoding_options(fields, form.fields, task=extra.task).model_copy(
        update={"segment_timestamps": True}
    )
    if options.logprobs:
        raise InvalidOptionError(
            "A job's result carries no token logprobs: ask /v1/audio/transcriptions for them.",
            param="include[]" if fields.include else "logprobs",
        )
    if "word" in fields.timestamp_granularities:
        # Kept whatever the default format: the result may be asked as verbose_json later.
        options = options.model_copy(update={"word_timestamps": True})
    if extra.webhook_url is not None:
        check_webhook_url(jobs.webhooks, extra.webhook_url)
    submission = Submission(
        owner=owner,
        options=options,
        model=_model_name(fields.model, settings.model),
        response_format=fields.response_format,
        timestamp_granularities=tuple(fields.timestamp_granularities),
        metadata=extra.metadata,
        webhook_url=extra.webhook_url,
        diarization=diarization,
    )
    return submission, references


async def _with_speakers(
    submission: Submission, references: References, service: TranscriptionService
) -> Submission:
    """``submission`` ready to store: a job that tells voices apart is refused now if the
    speaker model is missing, and its known speakers' clips become their voice embeddings
    (what the job keeps: :mod:`whisperd.jobs.speakers`).

    Raises:
        DiarizationUnavailableError: the speaker model is not installed (400, how to install).
        InvalidOptionError: a known speaker's clip is not audio, or not 2 to 10 s long.
    """
    diarization = submission.diarization
    if diarization is None or diarization.mode != "speakers":
        return submission
    limits = DecodeLimits(max_duration_s=service.settings.max_audio_seconds)
    known = await service.speakers.embed_references(references, limits)
    diarization = dataclasses.replace(diarization, known_speakers=known)
    return dataclasses.replace(submission, diarization=diarization)


def _model_name(requested: str, default: str) -> str | None:
    """None (the default model) for OpenAI's ids (the diarizing model's too) and the
    configured name; else the name."""
    name = requested.strip()
    defaults = {
        "",
        "whisper-1",
        "whisper-large-v3-turbo",
        "openai/whisper-large-v3-turbo",
        DIARIZE_MODEL,
    }
    return None if name in defaults or name == default else name


def _public(job: Job) -> dict[str, Any]:
    return JobObject.model_validate(job_json(job)).model_dump(mode="json")


@router.get("/jobs", responses=_errors(400, 401, 503))
async def list_jobs(
    jobs: JobsDep,
    owner: OwnerDep,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: str | None = None,
) -> JobList:
    """The caller's jobs, newest first; ``after`` (a job id) gives the page after it."""
    page = await jobs.list(owner, status=status, limit=limit + 1, after=after)
    data = [JobObject.model_validate(job_json(job)) for job in page[:limit]]
    return JobList(
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=len(page) > limit,
    )


@router.get("/jobs/{job_id}", responses=_errors(401, 404, 503), dependencies=_JOB_LOGS)
async def retrieve_job(job_id: str, jobs: JobsDep, owner: OwnerDep) -> JobObject:
    """One job: its status, progress, times, error and webhook deliveries."""
    return JobObject.model_validate(job_json(await jobs.get(job_id, owner)))


@router.get(
    "/jobs/{job_id}/result",
    response_model=None,
    responses={
        200: {
            "model": TranscriptionJson | TranscriptionVerbose | TranscriptionDiarized,
            "description": "`json`, `verbose_json` and `diarized_json` (a job with "
            "diarization) as JSON; `text` and `srt` as `text/plain`, `vtt` as `text/vtt` "
            "(both UTF-8); speakers labelled when the job had diarization.",
            "content": {
                "text/plain": {"schema": {"type": "string"}},
                "text/vtt": {"schema": {"type": "string"}},
            },
        },
        **_errors(400, 401, 404, 409, 503),
    },
    dependencies=_JOB_LOGS,
)
async def job_result(
    job_id: str,
    jobs: JobsDep,
    owner: OwnerDep,
    response_format: str | None = None,
    granularities: Annotated[list[str] | None, Query(alias="timestamp_granularities[]")] = None,
) -> Response:
    """The transcript of a succeeded job, in ``response_format`` (default: the job's own);
    409 while the job has not succeeded."""
    job, transcript = await jobs.transcript(job_id, owner)
    fmt = _FORMATS.get(response_format or job.response_format)
    if fmt is None:
        raise InvalidOptionError(
            f"response_format must be one of {', '.join(sorted(_FORMATS))}; "
            f"got {response_format!r}.",
            param="response_format",
        )
    asked = granularities or job.timestamp_granularities or ("segment",)
    wanted = tuple(g for g in GRANULARITIES if g in asked)
    if len(set(asked)) != len(wanted):
        raise InvalidOptionError(
            "timestamp_granularities[] takes segment and word.", param="timestamp_granularities"
        )
    if fmt == "diarized_json" and DIARIZATION_KEY not in job.options:
        raise InvalidOptionError(
            "This job was submitted without diarization, so its result has no "
            "diarized_json: submit it with diarize=true (or multichannel=true).",
            param="response_format",
        )
    return _render(transcript, fmt, wanted)


def _render(
    transcript: Transcript, fmt: ResponseFormat, granularities: tuple[Granularity, ...]
) -> Response:
    """``transcript`` as a ``fmt`` answer (speakers labelled as the synchronous route labels
    them, when the job had diarization).

    Raises:
        InvalidOptionError: if words are asked of a transcript decoded without them.
    """
    if fmt == "diarized_json":
        diarized = TranscriptionDiarized.model_validate(to_diarized_json(transcript))
        return JSONResponse(diarized.model_dump())
    if fmt == "json":
        typed = TranscriptionJson.model_validate(to_json(transcript))
        return JSONResponse(typed.model_dump(exclude_none=True))
    if fmt == "verbose_json":
        if "word" in granularities and any(s.words is None for s in transcript.segments):
            raise InvalidOptionError(
                "This job was transcribed without word timestamps: submit it with "
                "timestamp_granularities[]=word to have words.",
                param="timestamp_granularities",
            )
        verbose = to_verbose_json(transcript, granularities=granularities)
        body = TranscriptionVerbose.model_validate(verbose).model_dump(exclude_none=True)
        return JSONResponse(body)
    media = "text/vtt" if fmt == "vtt" else "text/plain"
    return PlainTextResponse(render(transcript, fmt), media_type=f"{media}; charset=utf-8")


@router.delete("/jobs/{job_id}", responses=_errors(401, 404, 503), dependencies=_JOB_LOGS)
async def delete_job(job_id: str, jobs: JobsDep, owner: OwnerDep) -> JobObject:
    """Cancel a queued or running job (it stops at its next window) and delete its audio; a
    finished job is deleted with its result. Answers with the job as it ends."""
    return JobObject.model_validate(job_json(await jobs.delete(job_id, owner)))

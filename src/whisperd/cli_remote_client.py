"""The jobs API of a whisperd server, as ``whisperd transcribe --server`` uses it.

:class:`JobsClient` submits a file (``POST /v1/jobs``), reads a job (``GET /v1/jobs/{id}``),
fetches its transcript as ``verbose_json`` and cancels it (``DELETE``). Every failure is a
:class:`RemoteError` whose message is meant for the user: the server's own message for an
error status (from its error envelope), or what went wrong with the connection.

:func:`job_fields` turns decoding options into the form fields the server reads back into the
same options, and :func:`speaker_fields` the diarization (known speakers' clips as data URLs:
:func:`data_url`); :func:`transcript_of_verbose` rebuilds a transcript from ``verbose_json``,
speakers included, so that :mod:`whisperd.audio.formats` renders every format as it would have
rendered the server's own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import httpx2

from whisperd.diarization.options import DEFAULT_MAX_SPEAKERS, DEFAULT_MIN_SPEAKERS
from whisperd.engine.base import Segment, Transcript, Word
from whisperd.errors import WhisperdError
from whisperd.languages import LANGUAGES

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from whisperd.diarization import DiarizationOptions
    from whisperd.engine.options import TranscribeOptions

__all__ = [
    "JobsClient",
    "RemoteError",
    "data_url",
    "idempotency_key",
    "job_fields",
    "speaker_fields",
    "transcript_of_verbose",
]

_TRANSIENT_STATUSES: Final = frozenset({429, 502, 503, 504})
"""Statuses that may clear up by themselves (a server restarting or busy)."""


class RemoteError(WhisperdError):
    """The server refused a call, failed it, or could not be reached."""

    code = "remote_error"

    def __init__(self, message: str, *, transient: bool = False) -> None:
        """``message`` is shown as is; ``transient``: the same call may succeed later."""
        super().__init__(message)
        self.transient = transient


def job_fields(options: TranscribeOptions, model: str | None) -> dict[str, str]:
    """The form fields of a job that the server reads back into ``options`` exactly.

    Only options that differ from their defaults are sent (the server's defaults are the
    same). The job's own format is ``verbose_json``: the transcript is fetched in it.

    Args:
        options: The decoding options.
        model: The model to ask for; None: the server's default model.

    Returns:
        Field names and their text values.

    Raises:
        ValueError: if an option whose default is a value is None, which a form cannot say
            (the command line never gives that).
    """
    fields = {"response_format": "verbose_json"}
    if model is not None:
        fields["model"] = model
    for name, value in options.model_dump(mode="json", exclude_defaults=True).items():
        if value is None:
            raise ValueError(f"{name}=None cannot be sent as a form field")
        fields[name] = _temperatures(value) if name == "temperature" else _form_value(value)
    return fields


def _temperatures(values: list[float]) -> str:
    """A ladder as the ``temperature`` field: always with a comma, since OpenAI's lone value
    ``0`` stands for Whisper's whole ladder, while ``0,`` is the list of just 0."""
    text = ",".join(repr(float(value)) for value in values)
    return text if len(values) > 1 else text + ","


def _form_value(value: Any) -> str:
    """An option's JSON value as the form text :class:`TranscribeOptions` parses."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_form_value(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def speaker_fields(
    diarization: DiarizationOptions | None, references: Sequence[tuple[str, str]] = ()
) -> dict[str, str]:
    """The form fields of a job that the server reads back into ``diarization`` exactly.

    ``mode="speakers"`` is ``diarize=true`` (with ``num_speakers`` if set, and the known
    speakers), ``mode="channels"`` is ``multichannel=true`` (the channel names as
    ``known_speaker_names[]``). ``min_speakers`` and ``max_speakers`` are sent where they
    differ from what the server assumes without them (1, and 8 or the least if more). Names
    and references go as one JSON array each, which the server reads item by item whatever
    commas they hold.

    Args:
        diarization: The diarization asked for (:func:`~whisperd.cli_speakers.
            diarization_from_flags`); None: none, no fields.
        references: The known speakers' names and data URLs of their clips (:func:`data_url`),
            in order; used with ``mode="speakers"`` only.

    Returns:
        Field names and their text values (empty without diarization).
    """
    if diarization is None:
        return {}
    if diarization.mode == "channels":
        fields = {"multichannel": "true"}
        names = list(diarization.channel_names)
    else:
        fields = {"diarize": "true"}
        names = [name for name, _ in references]
        if diarization.num_speakers is not None:
            fields["num_speakers"] = str(diarization.num_speakers)
        if references:
            urls = [url for _, url in references]
            fields["known_speaker_references[]"] = json.dumps(urls)
    if diarization.min_speakers != DEFAULT_MIN_SPEAKERS:
        fields["min_speakers"] = str(diarization.min_speakers)
    if diarization.max_speakers != max(DEFAULT_MAX_SPEAKERS, diarization.min_speakers):
        fields["max_speakers"] = str(diarization.max_speakers)
    if names:
        fields["known_speaker_names[]"] = json.dumps(names)
    return fields


def data_url(data: bytes | Path) -> str:
    """A known speaker's clip as the data URL the server reads
    (``data:audio/wav;base64,...``; the type is guessed from a file's name, the server
    detects the format from the bytes whatever it says).

    Args:
        data: The clip's bytes, or the path of its file.

    Raises:
        OSError: if the file cannot be read.
    """
    kind = "application/octet-stream"
    if isinstance(data, Path):
        kind = mimetypes.guess_type(data.name)[0] or kind
        data = data.read_bytes()
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"


def idempotency_key(digest: str, fields: Mapping[str, str]) -> str:
    """The ``Idempotency-Key`` of a file's job: the same for the same content and fields.

    Args:
        digest: The SHA-256 of the file's bytes (hex).
        fields: The job's form fields (:func:`job_fields` and :func:`speaker_fields`; known
            speakers' clips count whole, being hashed with the rest).

    Returns:
        ``whisperd-cli-`` and 64 hex digits.
    """
    text = json.dumps({"file": digest, "fields": dict(sorted(fields.items()))})
    return "whisperd-cli-" + hashlib.sha256(text.encode()).hexdigest()


def transcript_of_verbose(body: Mapping[str, Any], *, words: bool) -> Transcript:
    """The transcript a ``verbose_json`` body (with ``segments``) was rendered from.

    Every format of :mod:`whisperd.audio.formats` renders it exactly as it renders the
    original: segments keep their fields (``speaker`` too, when the job labelled speakers),
    and the words (with ``words``, each with its ``speaker``) are given back to the segments
    in order. What ``verbose_json`` does not carry, and no format shows, is left
    empty: the language's probability, the duration after VAD and the model (a word's
    probability too, from a server whose words do not carry one).

    Raises:
        RemoteError: if the body is not ``verbose_json``.
    """
    try:
        segments = [_segment(item) for item in body["segments"]]
        if words:
            segments = _with_words(segments, [_word(item) for item in body["words"]])
        return Transcript(
            segments=tuple(segments),
            language=_language_code(str(body["language"])),
            language_probability=0.0,
            duration=float(body["duration"]),
            task=str(body["task"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise RemoteError(f"The server's transcript is not verbose_json: {error!r}") from None


def _segment(item: Mapping[str, Any]) -> Segment:
    return Segment(
        id=int(item["id"]),
        seek=int(item["seek"]),
        start=float(item["start"]),
        end=float(item["end"]),
        text=str(item["text"]),
        tokens=tuple(int(token) for token in item["tokens"]),
        temperature=float(item["temperature"]),
        avg_logprob=float(item["avg_logprob"]),
        compression_ratio=float(item["compression_ratio"]),
        no_speech_prob=float(item["no_speech_prob"]),
        speaker=_speaker(item),
    )


def _word(item: Mapping[str, Any]) -> Word:
    probability = float(item.get("probability", 0.0))
    start, end = float(item["start"]), float(item["end"])
    return Word(start, end, str(item["word"]), probability, speaker=_speaker(item))


def _speaker(item: Mapping[str, Any]) -> str | None:
    """The ``speaker`` of a segment or word; None where there is none (no diarization)."""
    speaker = item.get("speaker")
    return None if speaker is None else str(speaker)


def _with_words(segments: list[Segment], words: list[Word]) -> list[Segment]:
    """Give each segment the words, in order, from its start to the next segment's start."""
    owned: list[list[Word]] = [[] for _ in segments]
    index = 0
    for word in words:
        while index + 1 < len(segments) and segments[index + 1].start <= word.start:
            index += 1
        if owned:
            owned[index].append(word)
    return [
        Segment(**{**_fields(segment), "words": tuple(mine)})
        for segment, mine in zip(segments, owned, strict=True)
    ]


def _fields(segment: Segment) -> dict[str, Any]:
    return {name: getattr(segment, name) for name in Segment.__slots__}


def _language_code(name: str) -> str:
    """Whisper's code of the language ``verbose_json`` names (``english`` -> ``en``)."""
    return next((code for code, known in LANGUAGES.items() if known == name), name)


class JobsClient:
    """Calls the jobs API of one server (``base_url``), with an API key if given."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        """Prepare a client; ``timeout_s`` bounds each read and write (connecting: 10 s)."""
        self.base_url = base_url.rstrip("/")
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx2.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx2.Timeout(timeout_s, connect=10.0),
            transport=transport,
            trust_env=False,
        )

    async def submit(
        self, path: Path, fields: Mapping[str, str], key: str
    ) -> tuple[dict[str, Any], bool]:
        """Upload ``path`` as a new job with ``fields``, under the idempotency ``key``.

        Returns:
            The job object, and whether it is an earlier job of the same key (replayed).

        Raises:
            RemoteError: if the server refuses the job or cannot be reached.
            OSError: if the file cannot be read.
        """
        with path.open("rb") as file:
            response = await self._call(
                "POST",
                "/v1/jobs",
                files={"file": (path.name, file)},
                data=dict(fields),
                headers={"idempotency-key": key},
            )
        replayed = response.headers.get("idempotent-replayed") == "true"
        return _object(response), replayed

    async def job(self, job_id: str) -> dict[str, Any]:
        """The job object (``status``, ``progress``, ``error``, ...).

        Raises:
            RemoteError: as :meth:`submit`.
        """
        return _object(await self._call("GET", f"/v1/jobs/{job_id}"))

    async def transcript(self, job_id: str, *, words: bool) -> Transcript:
        """The transcript of a succeeded job, with its words if ``words``.

        Raises:
            RemoteError: as :meth:`submit`, or if the answer is not ``verbose_json``.
        """
        granularities = ["segment", "word"] if words else ["segment"]
        params = {"response_format": "verbose_json", "timestamp_granularities[]": granularities}
        response = await self._call("GET", f"/v1/jobs/{job_id}/result", params=params)
        return transcript_of_verbose(_object(response), words=words)

    async def delete(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job; delete a finished one.

        Returns:
            The job as it ends (cancelled, or as it was before it was deleted).

        Raises:
            RemoteError: as :meth:`submit`.
        """
        return _object(await self._call("DELETE", f"/v1/jobs/{job_id}"))

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def _call(self, method: str, url: str, **kwargs: Any) -> httpx2.Response:
        """One request; its answer if the status is below 400.

        Raises:
            RemoteError: with the server's message for an error status, or the connection's
                failure; ``transient`` where a later try may succeed.
        """
        where = self.base_url
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx2.ConnectError as error:
            message = f"Cannot reach the server at {where}: {error}"
            raise RemoteError(message, transient=True) from None
        except httpx2.TimeoutException:
            message = f"The server at {where} did not answer in time."
            raise RemoteError(message, transient=True) from None
        except httpx2.HTTPError as error:
            message = f"The connection to {where} failed: {error}"
            raise RemoteError(message, transient=True) from None
        if response.status_code >= 400:
            message = f"{_message(response)} (HTTP {response.status_code} from {where})"
            raise RemoteError(message, transient=response.status_code in _TRANSIENT_STATUSES)
        return response


def _message(response: httpx2.Response) -> str:
    """The message of an error answer: the envelope's ``error.message`` (OpenAI's shape) or
    ``detail`` (the native API's), else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(body.get("detail"), str):
            return str(body["detail"])
    text = response.text.strip()[:200]
    return text or response.reason_phrase or "The server answered with an error"


def _object(response: httpx2.Response) -> dict[str, Any]:
    """The JSON object of a successful answer.

    Raises:
        RemoteError: if the body is not a JSON object (not a whisperd server?).
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise RemoteError(f"The answer of {response.url} is not a JSON object: is it whisperd?")
    return body

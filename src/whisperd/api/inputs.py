"""Read a request's form: its fields in every spelling, the fields it ignores, and its audio
source (an upload, a file part without a filename, a URL or base64 bytes)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
from collections.abc import AsyncIterator, Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from starlette.datastructures import FormData, UploadFile

from whisperd.audio.decode import AudioSource
from whisperd.errors import AudioError, EmptyAudioError, UrlError
from whisperd.schemas.form_fields import ArrayField, looks_like_text, part_bytes, read_fields

if TYPE_CHECKING:
    from starlette.responses import Response

    from whisperd.audio.fetch import AudioFetcher

logger = logging.getLogger(__name__)

IGNORED_FIELDS_HEADER: Final = "X-Whisperd-Ignored-Fields"
"""Response header naming, comma-separated, the request fields whisperd ignored."""

_SHOWN_AS_IS: Final = "".join(chr(code) for code in range(0x20, 0x7F) if chr(code) not in "%,")
"""Characters of a field name that :func:`report_ignored` writes as they are."""


@dataclass(frozen=True, slots=True)
class ParsedForm:
    """A multipart form split into its text fields and its file part."""

    fields: dict[str, Any]
    """Text fields by name (see :func:`~whisperd.schemas.form_fields.read_fields`): arrays as
    tuples under their ``name[]`` wire names, objects as dicts, others as their last value."""
    file: UploadFile | str | None
    """The ``file`` part: an upload, or text (a URL, or a part sent without a filename)."""

    def unknown(self, known: Collection[str]) -> tuple[str, ...]:
        """The fields, by the names sent, that are not in ``known``, sorted."""
        return tuple(sorted(name for name in self.fields if name not in known))


def parse_form(
    form: FormData,
    *,
    file_field: str = "file",
    arrays: Iterable[ArrayField] = (),
    objects: Iterable[str] = (),
) -> ParsedForm:
    """Split ``form`` into its fields and its ``file_field`` part.

    Raises:
        InvalidOptionError: if an array or object field is malformed.
    """
    items = [
        (key, value)
        for key, value in form.multi_items()
        if key != file_field and not isinstance(value, UploadFile)
    ]
    fields = read_fields(items, arrays=arrays, objects=objects)
    return ParsedForm(fields, form.get(file_field))


def report_ignored(response: Response, names: Iterable[str], *, route: str) -> Response:
    """Name the ``names`` of fields whisperd ignored in a response header and a log line.

    The header lets a client see at once that a field it relies on did nothing, without a
    request failing for a field meant for another server; the log line tells the operator.
    A name is percent-encoded (UTF-8) where it holds anything but printable ASCII other than
    ``%`` and ``,``: a header value must be Latin-1 without control characters (RFC 9110
    section 5.5), and the comma separates names.
    """
    ignored = sorted({quote(name, safe=_SHOWN_AS_IS) for name in names})
    if ignored:
        response.headers[IGNORED_FIELDS_HEADER] = ", ".join(ignored)
        logger.info("%s: ignored request fields: %s", route, ", ".join(ignored))
    return response


def file_bytes(value: str, *, param: str) -> bytes:
    """The audio of a file part that arrived as text because it had no ``filename`` (or only
    RFC 5987's ``filename*``, which forms may not use).

    Raises:
        AudioError: if the part holds short printable text, not audio.
    """
    if looks_like_text(value):
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise AudioError(
            f"{param} holds the text {shown!r}, not audio: send the audio bytes as the "
            f"{param} part (a filename is optional), or an http(s) URL.",
            param=param,
        )
    return part_bytes(value)


def _is_url(value: str) -> bool:
    return "://" in value[:16] or value.startswith("data:")


def _base64_audio(value: str) -> bytes:
    try:
        data = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise AudioError("audio_base64 is not valid base64.", param="audio_base64") from None
    if not data:
        raise EmptyAudioError("audio_base64 holds no bytes.", param="audio_base64")
    return data


@contextlib.asynccontextmanager
async def audio_source(form: ParsedForm, fetcher: AudioFetcher) -> AsyncIterator[AudioSource]:
    """Yield the request's audio; a fetched URL's temporary file is removed afterwards.

    Raises:
        AudioError: if no source, several sources, or an unusable one is given.
        UrlError: if a URL cannot be fetched.
    """
    url = form.fields.get("audio_url") or None
    groq_url = form.fields.get("url") or None  # Groq's name for audio_url
    encoded = form.fields.get("audio_base64") or None
    upload: UploadFile | bytes | None = None
    file_url: str | None = None
    if isinstance(form.file, str):
        if _is_url(form.file.strip()):
            file_url = form.file.strip()
        elif form.file:  # an empty text part is no file at all
            upload = file_bytes(form.file, param="file")
    else:
        upload = form.file
    sources = (
        ("file", upload if file_url is None else file_url),
        ("audio_url", url),
        ("url", groq_url),
        ("audio_base64", encoded),
    )
    given = [name for name, v in sources if v is not None]
    url = url or groq_url or file_url
    if not given:
        raise AudioError(
            "No file or url in the request: send 'file' (an upload or a URL), "
            "'audio_url' (or 'url') or 'audio_base64'.",
            param="file",
        )
    if len(given) > 1:
        raise AudioError(f"Send only one audio source; got {', '.join(given)}.", param=given[1])
    if isinstance(upload, bytes):
        yield AudioSource(upload)
    elif upload is not None:
        yield AudioSource(await upload.read())
    elif encoded is not None:
        yield AudioSource(_base64_audio(encoded))
    else:
        assert url is not None
        try:
            path = await fetcher.fetch(url)
        except UrlError as error:
            error.param = given[0]  # the field the client sent the URL in
            raise
        try:
            yield AudioSource(path)
        finally:
            path.unlink(missing_ok=True)

"""Turn a request's form into an audio source: an upload, a URL or base64 bytes."""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.datastructures import FormData, UploadFile

from whisperd.audio.decode import AudioSource
from whisperd.errors import AudioError, EmptyAudioError

if TYPE_CHECKING:
    from whisperd.audio.fetch import AudioFetcher


@dataclass(frozen=True, slots=True)
class ParsedForm:
    """A multipart form split into its scalar fields and its file part."""

    fields: dict[str, Any]
    """Scalar fields; ``name[]`` fields become tuples under the same name."""
    file: UploadFile | str | None


def parse_form(form: FormData) -> ParsedForm:
    """Split ``form``; the last value wins for repeated scalar fields."""
    fields: dict[str, Any] = {}
    for key in set(form.keys()):
        values = [v for v in form.getlist(key) if not isinstance(v, UploadFile)]
        if key.endswith("[]"):
            fields[key] = tuple(str(v) for v in values)
        elif values:
            fields[key] = str(values[-1])
    file = form.get("file")
    return ParsedForm(fields, file)


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
    encoded = form.fields.get("audio_base64") or None
    upload = form.file
    if isinstance(upload, str):
        if not _is_url(upload.strip()):
            raise AudioError(
                "file must be an uploaded file or an http(s) URL string.", param="file"
            )
        url, upload = upload.strip(), None
    given = [
        name
        for name, v in (("file", upload), ("audio_url", url), ("audio_base64", encoded))
        if v is not None
    ]
    if not given:
        raise AudioError(
            "No file or url in the request: send 'file' (an upload or a URL), "
            "'audio_url' or 'audio_base64'.",
            param="file",
        )
    if len(given) > 1:
        raise AudioError(f"Send only one audio source; got {', '.join(given)}.", param=given[1])
    if upload is not None:
        yield AudioSource(await upload.read())
    elif encoded is not None:
        yield AudioSource(_base64_audio(encoded))
    else:
        assert url is not None
        path = await fetcher.fetch(url)
        try:
            yield AudioSource(path)
        finally:
            path.unlink(missing_ok=True)

"""Form spellings of structured request fields, and file parts that came without a filename.

Form encoders disagree on how an array goes into ``multipart/form-data`` or a URL-encoded body.
OpenAI's SDKs send ``timestamp_granularities[]=word`` once per item; PHP-style encoders send
``x[0]=a&x[1]=b``; curl users write ``-F x=word`` (repeated or not), ``-F x=word,segment`` or
``-F 'x=["word","segment"]'``. :func:`read_fields` accepts all of them for the fields declared
as arrays, and reads an object field either as one value (``chunking_strategy=auto``, a JSON
object) or bracket-flattened (``chunking_strategy[type]=server_vad``), as the SDKs send
objects.

A part whose ``Content-Disposition`` has no ``filename`` (curl's ``-F file=<audio.wav``), or
only RFC 5987's ``filename*`` (which RFC 7578 section 4.2 forbids in forms, so Starlette does
not read it), is delivered as text rather than as a file. :func:`part_bytes` gets its bytes back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from whisperd.errors import InvalidOptionError

__all__ = ["ArrayField", "looks_like_text", "part_bytes", "read_fields"]

_KEY: Final = re.compile(r"(?P<name>[^\[\]]+)(?:\[(?P<sub>[^\[\]]*)\])?")
"""A form key: ``name``, ``name[]``, ``name[0]`` or ``name[key]``."""

_TEXT_LIMIT: Final = 2048
"""Longest printable part value taken for text (a URL, a path) rather than audio bytes. Audio
is never all printable (headers and compressed frames hold control bytes), and 2 KiB of raw
16 kHz PCM is 64 ms, under the 0.1 s any transcription needs."""


@dataclass(frozen=True, slots=True)
class ArrayField:
    """A request field whose value is a list of strings."""

    name: str
    """The field's name without brackets (``include`` for ``include[]``)."""
    comma_separated: bool = True
    """Whether one value may hold several items separated by commas (not for items that may
    contain commas themselves, like data URLs)."""
    paired: bool = False
    """Whether the items pair up by position with another array's (known speakers' names and
    clips), so a repeated item is kept rather than dropped."""


def _array_items(field: ArrayField, value: str) -> list[str]:
    """The items of one value of an array field: a JSON array, a comma list or one item.

    Raises:
        InvalidOptionError: if the value starts like a JSON array but is not an array of
            strings or numbers.
    """
    text = value.strip()
    if text.startswith("["):
        try:
            parsed: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidOptionError(
                f"{field.name}[] is not a valid JSON array: {exc.msg}.", param=f"{field.name}[]"
            ) from None
        if not isinstance(parsed, list) or not all(
            isinstance(item, str | int | float) for item in parsed
        ):
            raise InvalidOptionError(
                f"{field.name}[] must be a JSON array of strings.", param=f"{field.name}[]"
            )
        return [str(item).strip() for item in parsed if str(item).strip()]
    if field.comma_separated:
        return [part.strip() for part in text.split(",") if part.strip()]
    return [text] if text else []


def read_fields(
    items: Iterable[tuple[str, str]],
    *,
    arrays: Iterable[ArrayField] = (),
    objects: Iterable[str] = (),
) -> dict[str, Any]:
    """Gather a form's text fields by name, in every spelling of arrays and objects.

    Args:
        items: ``(key, value)`` pairs in the order they arrived (file parts left out).
        arrays: The array fields: every ``name``, ``name[]`` and ``name[N]`` value adds its
            items (see :func:`_array_items`), in order, without repeats unless ``paired``.
        objects: The object fields: ``name[key]=value`` pairs build a dict of strings; a bare
            ``name=value`` stays a string for the field's own validation.

    Returns:
        ``{name: value}``: a tuple of strings under ``name[]`` (the spelling OpenAI's SDKs
        send) for an array field that was sent, a dict or a string for an object field, else
        the key as sent with its last value (so an unknown ``foo[]`` stays ``foo[]``).

    Raises:
        InvalidOptionError: on a malformed JSON array, or an object field sent both as one
            value and bracket-flattened.
    """
    array_fields = {field.name: field for field in arrays}
    object_names = frozenset(objects)
    lists: dict[str, list[str]] = {}
    dicts: dict[str, dict[str, str]] = {}
    fields: dict[str, Any] = {}
    for key, value in items:
        match = _KEY.fullmatch(key)
        name, sub = (match["name"], match["sub"]) if match else (key, None)
        if name in array_fields and (sub is None or sub == "" or sub.isdigit()):
            found = lists.setdefault(name, [])
            field = array_fields[name]
            for item in _array_items(field, value):
                if field.paired or item not in found:
                    found.append(item)
        elif name in object_names and sub:
            dicts.setdefault(name, {})[sub] = value
        else:
            fields[key] = value
    for name, parts in dicts.items():
        if name in fields:
            raise InvalidOptionError(
                f"Send {name} either as one value or as {name}[key] fields, not both.",
                param=name,
            )
        fields[name] = parts
    fields.update((f"{name}[]", tuple(found)) for name, found in lists.items())
    return fields


def looks_like_text(value: str) -> bool:
    """Whether a text part is short printable text (a URL, a path, a word), not audio bytes."""
    return len(value) <= _TEXT_LIMIT and value.isprintable()


def part_bytes(text: str) -> bytes:
    """The bytes of a form part that arrived as text (it had no ``filename``).

    Starlette decodes such a part as UTF-8 when it can and as Latin-1 otherwise
    (``starlette.formparsers._user_safe_decode``), for forms without a ``charset`` (what every
    client sends). Latin-1 maps each byte to one character, so that text encodes back to the
    exact bytes; it is told apart by those bytes not being UTF-8. Audio is never valid UTF-8
    beyond a few bytes, so the one ambiguous case, UTF-8 text of Latin-1 letters, is text.

    Args:
        text: The part's value as the form parser gave it.

    Returns:
        The part's bytes as the client sent them.
    """
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    return text.encode("utf-8")

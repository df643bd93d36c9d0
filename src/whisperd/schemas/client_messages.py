"""A stream client's JSON text message, read into one of its protocol's events or refused.

Both stream protocols tag their client messages with ``type``; a protocol's messages are a
discriminated union in a :class:`~pydantic.RootModel`. A message that is not JSON, not an
object, of an unknown type or with a malformed field becomes a :class:`Rejection` that names the
field at fault in OpenAI's terms (``param``, ``code``), so the stream can answer with an error
and go on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import RootModel, ValidationError

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

E = TypeVar("E")

Reason = Literal["not_json", "not_an_object", "unknown_type", "invalid_field"]


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a client message is not an event of the protocol."""

    reason: Reason
    code: str
    """OpenAI's error code: ``invalid_json``, ``invalid_event``, ``missing_required_parameter``,
    ``invalid_type`` or ``invalid_value``."""
    message: str
    param: str | None = None
    """Dotted path of the field at fault (``session.audio.input.format``)."""
    event_type: object = None
    """The ``type`` the message gave (None when it gave none)."""
    event_id: str | None = None
    """The ``event_id`` the message gave, if it gave a string."""


def read_message(events: type[RootModel[E]], text: str) -> E | Rejection:
    """The event ``text`` holds, or why it holds none."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        return Rejection("not_json", "invalid_json", "The event is not valid JSON.")
    if not isinstance(data, dict):
        return Rejection("not_an_object", "invalid_event", "An event must be a JSON object.")
    event_type, event_id = data.get("type"), data.get("event_id")
    if not isinstance(event_id, str):
        event_id = None
    try:
        return events.model_validate(data).root
    except ValidationError as exc:
        return _rejection(exc.errors()[0], event_type, event_id)


def _rejection(error: ErrorDetails, event_type: object, event_id: str | None) -> Rejection:
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return Rejection(
            "unknown_type",
            "invalid_event",
            f"Unsupported event type {event_type!r}.",
            event_type=event_type,
            event_id=event_id,
        )
    loc = error["loc"][1:] if error["loc"][:1] == (event_type,) else error["loc"]
    param = field_path(loc) or None
    code, message = _problem(error, f"'{param}'" if param else "the event")
    return Rejection("invalid_field", code, message, param, event_type, event_id)


def field_path(loc: tuple[int | str, ...]) -> str:
    """A validation error's location as a dotted path, list indexes in brackets."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _problem(error: ErrorDetails, where: str) -> tuple[str, str]:
    kind = error["type"]
    if kind == "missing":
        return "missing_required_parameter", f"Missing required parameter: {where}."
    cause: Any = error.get("ctx", {}).get("error") if kind == "value_error" else None
    text = error["msg"] if cause is None else str(cause)
    if kind.endswith(("_type", "_parsing")):
        return "invalid_type", f"Invalid type for {where}: {text.rstrip('.')}."
    return "invalid_value", f"Invalid value for {where}: {text.rstrip('.')}."

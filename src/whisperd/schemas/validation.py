"""The one wording of failed validations, for the HTTP APIs, the streams and the command line.

pydantic and FastAPI report each problem as a location (``("body", "beam_size")``,
``("streaming_params", "sample_rate")``) and a message. :func:`problems` reads them once and
:func:`describe` turns them into text, so every surface names the field at fault the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

__all__ = ["Problem", "ValidationFailure", "describe", "problems"]

_REQUEST_PARTS: Final = frozenset({"body", "query", "path", "header", "cookie"})
"""The first part of FastAPI's locations: where in the request the value was, not which one."""


class ValidationFailure(Protocol):
    """What :func:`problems` reads: a pydantic ``ValidationError`` or FastAPI's
    ``RequestValidationError``."""

    def errors(self) -> Sequence[Mapping[str, Any]]:
        """One mapping per problem, with ``loc`` (a sequence) and ``msg`` (a string)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One invalid value."""

    location: tuple[str, ...]
    """Field names and list indices leading to the value, outermost first; ``()`` when the
    whole input is at fault (for example malformed JSON)."""
    message: str
    """What is wrong with it, as pydantic words it."""

    @property
    def field(self) -> str | None:
        """The top-level field at fault (a request's ``param``), or ``None``."""
        return self.location[0] if self.location else None

    def describe(self, name: Callable[[str], str] = str) -> str:
        """``Invalid value for 'a.b[1]': message``, or just the message without a location.

        Nested fields are joined with dots, list positions written in brackets.

        Args:
            name: Spelling of the top-level field, e.g. ``beam_size`` as the flag
                ``--beam-size`` (nested parts keep their own names).
        """
        if not self.location:
            return self.message
        first, *rest = self.location
        where = name(first) + "".join(
            f"[{part}]" if part.isdigit() else f".{part}" for part in rest
        )
        return f"Invalid value for '{where}': {self.message}"


def problems(failure: ValidationFailure) -> list[Problem]:
    """Every problem of a failed validation, in the order pydantic found them.

    FastAPI's leading request part (``body``, ``query``, ...) is dropped from locations, so a
    form field reads the same whether FastAPI or a model of ours validated it.
    """
    found = []
    for error in failure.errors():
        location = tuple(str(part) for part in error.get("loc", ()))
        if location and location[0] in _REQUEST_PARTS:
            location = location[1:]
        found.append(Problem(location, str(error.get("msg", "invalid value"))))
    return found


def describe(failure: ValidationFailure, *, name: Callable[[str], str] = str) -> str:
    """All problems of a failed validation as one line, joined by ``"; "``.

    Args:
        failure: The validation error.
        name: Spelling of location parts (see :meth:`Problem.describe`).

    Returns:
        For example ``Invalid value for 'beam_size': Input should be greater than or equal to
        1; Invalid value for 'language': ...``.
    """
    return "; ".join(problem.describe(name) for problem in problems(failure))

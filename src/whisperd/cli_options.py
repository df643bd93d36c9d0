"""Command-line flags generated from :class:`~whisperd.engine.options.TranscribeOptions`.

Each decoding option becomes one flag (``beam_size`` -> ``--beam-size``; booleans get a
``--no-`` form) whose help is the option's own documentation, so the CLI can never fall behind
the options the engine accepts. A flag left out keeps the option's default.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import click

from whisperd.engine.options import TranscribeOptions

_SCALARS: dict[type, click.ParamType[Any]] = {int: click.INT, float: click.FLOAT, str: click.STRING}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _base_type(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the underlying type."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _base_type(members[0])
    return annotation


def _click_type(annotation: Any) -> click.ParamType[Any]:
    base = _base_type(annotation)
    if typing.get_origin(base) is typing.Literal:
        return click.Choice([str(v) for v in typing.get_args(base)])
    return _SCALARS.get(base, click.STRING)


def option_params() -> list[click.Option]:
    """One click option per decoding option, all defaulting to "not given"."""
    params = []
    for name, field in TranscribeOptions.model_fields.items():
        help_text = " ".join((field.description or "").replace("``", "").split())
        if _base_type(field.annotation) is bool:
            flags = f"{_flag(name)}/--no-{name.replace('_', '-')}"
            params.append(click.Option([flags], default=None, help=help_text))
            continue
        params.append(
            click.Option(
                [_flag(name)],
                type=_click_type(field.annotation),
                default=None,
                help=help_text,
                metavar=_metavar(name, field.annotation),
            )
        )
    return params


def _metavar(name: str, annotation: Any) -> str | None:
    base = _base_type(annotation)
    if typing.get_origin(base) is typing.Literal:
        return None
    if typing.get_origin(base) is tuple:
        return "LIST"
    if name == "vad_parameters":
        return "JSON"
    return {int: "INT", float: "FLOAT"}.get(base, "TEXT")


def options_from_flags(values: dict[str, Any]) -> TranscribeOptions:
    """Build options from parsed flags, leaving out those not given.

    Raises:
        pydantic.ValidationError: if a value is out of range or malformed.
    """
    given = {
        name: value
        for name, value in values.items()
        if name in TranscribeOptions.model_fields and value is not None
    }
    return TranscribeOptions.model_validate(given)

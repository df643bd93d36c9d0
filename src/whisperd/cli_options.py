"""Command-line flags generated from :class:`~whisperd.engine.options.TranscribeOptions` and
:class:`~whisperd.config.Settings`.

Each decoding option becomes one flag (``beam_size`` -> ``--beam-size``) whose help is the
option's own documentation and shows its default, so the CLI can never fall behind the options
the engine accepts. A boolean is offered in the direction that changes something: one that is
off by default gets only its flag (``--word-timestamps``, ``--without-timestamps``), one that is
on gets a ``--no-`` form too (``--vad-filter/--no-vad-filter``). Options that change nothing in
the command's outputs are accepted but not listed.

Flags of settings (``--model``, ``--device``, ...) are :mod:`whisperd.cli_settings`'s.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import click
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from whisperd.audio.subtitles import SubtitleStyle
from whisperd.cli_settings import FINITE_FLOAT
from whisperd.engine.options import TranscribeOptions
from whisperd.errors import InvalidOptionError
from whisperd.schemas.subtitles import SHAPED_FORMATS, SubtitleFields
from whisperd.schemas.validation import describe

_SCALARS: Mapping[type, click.ParamType[Any]] = MappingProxyType(
    {int: click.INT, float: FINITE_FLOAT, str: click.STRING}
)
"""The click type of each scalar option type (floats must be finite)."""


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


_NO_EFFECT_ON_OUTPUTS = frozenset({"include_tokens", "segment_timestamps"})
"""Options the command sets itself or its outputs do not depend on (``verbose_json`` always
carries segment tokens; segment times are computed when a format shows them): accepted, so
scripts that pass them keep working, but not offered in ``--help``."""


def _help(field: FieldInfo) -> str:
    """A field's documentation as one line of help: markup dropped, ``None`` (a value the
    command line cannot give) said as leaving the flag out."""
    text = " ".join((field.description or "").replace("``", "").split())
    return re.sub(r"\bNone\b", "leaving it out", text)


def _shown(value: object) -> str:
    """A default as it is typed on the command line (``0,0.2,0.4``, not ``(0.0, 0.2, 0.4)``)."""
    if isinstance(value, tuple):
        return ",".join(_shown(item) for item in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def option_params() -> list[click.Option]:
    """One click option per decoding option, each showing its default in ``--help``."""
    params = []
    for name, field in TranscribeOptions.model_fields.items():
        hidden = name in _NO_EFFECT_ON_OUTPUTS
        if _base_type(field.annotation) is bool:
            negatable = field.default is not False  # on, or unset (the mode decides)
            flags = _flag(name) + (f"/--no-{name.replace('_', '-')}" if negatable else "")
            params.append(
                click.Option(
                    [flags],
                    is_flag=True,
                    default=field.default,
                    show_default=True,
                    help=_help(field),
                    hidden=hidden,
                )
            )
            continue
        params.append(
            click.Option(
                [_flag(name)],
                type=_click_type(field.annotation),
                default=None if field.default is None else _shown(field.default),
                show_default=True,
                help=_help(field),
                metavar=_metavar(name, field.annotation),
                hidden=hidden,
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
    """Build options from parsed flags; a flag left out holds its option's default, and
    ``None`` (no default value) is left out.

    Raises:
        pydantic.ValidationError: if a value is out of range or malformed.
    """
    given = {
        name: value
        for name, value in values.items()
        if name in TranscribeOptions.model_fields and value is not None
    }
    return TranscribeOptions.model_validate(given)


def subtitle_params() -> list[click.Option]:
    """The subtitle shaping flags, openai-whisper's (``--max-line-width`` and so on) plus
    ``--max-cue-duration``, each documented by its field of
    :class:`~whisperd.schemas.subtitles.SubtitleFields`."""
    params = []
    for name, field in SubtitleFields.model_fields.items():
        if name == "highlight_words":
            params.append(
                click.Option([_flag(name)], is_flag=True, default=False, help=_help(field))
            )
            continue
        seconds = name == "max_cue_duration"
        params.append(
            click.Option(
                [_flag(name)],
                type=FINITE_FLOAT if seconds else click.INT,
                default=None,
                help=_help(field),
                metavar="SECONDS" if seconds else "INT",
            )
        )
    return params


def subtitle_style(values: Mapping[str, Any], formats: tuple[str, ...]) -> SubtitleStyle | None:
    """The subtitle shaping the flags ask for (``None``: one cue per segment).

    Raises:
        click.UsageError: naming the flag, on a bad value, on ``--max-line-count`` without
            ``--max-line-width`` or ``--max-words-per-line``, or when no chosen format is srt
            or vtt.
    """
    given = {name: values.get(name) for name in SubtitleFields.model_fields}
    try:
        fields = SubtitleFields.model_validate({k: v for k, v in given.items() if v is not None})
        style = fields.style(SHAPED_FORMATS[0])
    except ValidationError as exc:
        raise click.UsageError(describe(exc, name=_flag)) from None
    except InvalidOptionError as exc:
        raise click.UsageError(f"{_flag(exc.param or '')}: {exc.message}") from None
    if style is not None and not set(SHAPED_FORMATS) & set(formats):
        first = next(name for name, value in given.items() if value not in (None, False))
        raise click.UsageError(
            f"{_flag(first)} shapes srt and vtt subtitles: add --format srt or --format vtt."
        )
    return style

"""Command-line flags generated from :class:`~whisperd.engine.options.TranscribeOptions` and
:class:`~whisperd.config.Settings`.

Each decoding option becomes one flag (``beam_size`` -> ``--beam-size``) whose help is the
option's own documentation and shows its default, so the CLI can never fall behind the options
the engine accepts. A boolean is offered in the direction that changes something: one that is
off by default gets only its flag (``--word-timestamps``, ``--without-timestamps``), one that is
on gets a ``--no-`` form too (``--vad-filter/--no-vad-filter``). Options that change nothing in
the command's outputs are accepted but not listed.

Flags of settings (``--model``, ``--device``, ...) are left unset unless given, so that
``WHISPERD_<NAME>`` still applies; their help names the variable and the default.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import click
from pydantic.fields import FieldInfo

from whisperd.cli_settings import FINITE_FLOAT, env_name
from whisperd.config import Settings
from whisperd.engine.options import TranscribeOptions

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


_NO_EFFECT_ON_OUTPUTS = frozenset({"include_tokens"})
"""Options the command's outputs do not depend on (``verbose_json`` always carries segment
tokens): accepted, so scripts that pass them keep working, but not offered in ``--help``."""


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
            flags = _flag(name) + (f"/--no-{name.replace('_', '-')}" if field.default else "")
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


def setting_option(
    name: str, *decls: str, help_text: str | None = None, **attrs: Any
) -> click.Option:
    """A flag for the setting ``name`` (``--models-dir`` for ``models_dir`` unless ``decls``
    says otherwise), left unset unless given so the environment still applies.

    Its help is ``help_text`` (default: the setting's documentation) followed by the environment
    variable and the default, as ``whisperd serve`` shows them:
    ``[env: WHISPERD_DEVICE; default: auto]``. Literal settings become choices, paths folders,
    booleans flags; ``attrs`` go to click.
    """
    field = Settings.model_fields[name]
    extras = [f"env: {env_name(name)}"]
    if field.default not in (None, "", False) and field.default_factory is None:
        extras.append(f"default: {_shown(field.default)}")
    text = f"{help_text or _help(field)} [{'; '.join(extras)}]"
    base = _base_type(field.annotation)
    if base is bool:
        attrs.setdefault("is_flag", True)
        attrs.setdefault("default", False)
    elif base is Path:
        attrs.setdefault("type", click.Path(file_okay=False, path_type=Path))
    else:
        attrs.setdefault("type", _click_type(field.annotation))
    attrs.setdefault("default", None)
    return click.Option(list(decls) or [_flag(name)], help=text, **attrs)


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

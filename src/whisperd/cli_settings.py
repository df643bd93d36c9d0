"""Every setting of :class:`~whisperd.config.Settings` as a ``whisperd serve`` flag.

The flags are made from the settings themselves (name, type, documentation, default), so a new
setting is a new flag with nothing else to write. A flag that is not given leaves the setting
to the environment (``WHISPERD_<NAME>``), then ``.env``, then its default.

Number flags take finite numbers only (:data:`FINITE_FLOAT`): ``inf``, ``nan`` and ``1e309``
are usage errors naming the flag, as they are in every other surface; a setting declared with
``allow_inf_nan=True`` (``inf`` turns it off) keeps click's plain float.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

import click
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from whisperd.config import Settings

F = TypeVar("F", bound=Callable[..., Any])

_SHORT = {"model": "-m"}


class FiniteFloat(click.ParamType[float, Any]):
    """click's ``FLOAT`` without the non-finite values ``float()`` also reads (``inf``,
    ``-inf``, ``nan``, ``1e309``); those are usage errors naming the flag (exit status 2)."""

    name = "float"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        """The flag's value as a finite float.

        Raises:
            click.BadParameter: (through ``fail``) if it is not a number or not finite.
        """
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


FINITE_FLOAT: Final = FiniteFloat()
"""The click type of every float flag."""


def flag_name(field: str) -> str:
    """The flag of a setting: ``max_upload_mb`` -> ``--max-upload-mb``; a list setting's flag
    is singular and repeated (``api_keys`` -> ``--api-key``)."""
    flag = f"--{field.replace('_', '-')}"
    return flag.removesuffix("s") if _is_list(Settings.model_fields[field]) else flag


def env_name(field: str) -> str:
    """The environment variable of a setting: ``max_upload_mb`` -> ``WHISPERD_MAX_UPLOAD_MB``."""
    return f"WHISPERD_{field.upper()}"


def _plain(annotation: Any) -> Any:
    """``X | None`` -> ``X``; ``Annotated[X, ...]`` -> ``X``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return options[0] if len(options) == 1 else str
    return annotation


def _is_list(info: FieldInfo) -> bool:
    return typing.get_origin(_plain(info.annotation)) is list


def _click_type(annotation: Any) -> Any:
    plain = _plain(annotation)
    if typing.get_origin(plain) is typing.Literal:
        return click.Choice([str(value) for value in typing.get_args(plain)])
    if plain is Path:
        return click.Path(path_type=Path)
    if plain is float:
        return FINITE_FLOAT
    if plain in (int, str):
        return plain
    return str


def shown_default(field: str) -> str:
    """A setting's default as ``--help`` and ``whisperd config`` show it: ``none`` for no
    value, booleans in lower case, lists comma-separated."""
    info = Settings.model_fields[field]
    default = info.get_default(call_default_factory=True)
    if default is None or default == []:
        return "none"
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, list):
        return ",".join(str(item) for item in default)
    return str(default)


def _help(field: str, text: str | None = None) -> str:
    """A setting's documentation (or ``text``) on one line, then its variable and default."""
    text = " ".join(
        (text or Settings.model_fields[field].description or "").replace("``", "").split()
    )
    return f"{text} [env: {env_name(field)}; default: {shown_default(field)}]"


def _attrs(field: str) -> dict[str, Any]:
    """click's arguments of a setting's option: type, default (None: not given), help."""
    info = Settings.model_fields[field]
    annotation = _plain(info.annotation)
    if annotation is bool:
        return {"default": None, "show_default": False}
    if _is_list(info):
        argument = typing.get_args(annotation)[0]
        item = str if argument is SecretStr else _click_type(argument)
        return {"multiple": True, "type": item}
    kind = click.FLOAT if _allows_infinity(info) else _click_type(annotation)
    return {"type": kind, "default": None}


def _decls(field: str) -> list[str]:
    """A setting's flag (``--offline/--no-offline`` for a boolean), its short form, its name."""
    flag = flag_name(field)
    if _plain(Settings.model_fields[field].annotation) is bool:
        flag = f"{flag}/--no-{flag.removeprefix('--')}"
    return [flag, *([_SHORT[field]] if field in _SHORT else []), field]


def setting_option(field: str, *, help_text: str | None = None) -> click.Option:
    """The option of the setting ``field``, as ``whisperd serve`` has it, for other commands
    (``help_text`` replaces the setting's documentation, not the variable and default)."""
    return click.Option(_decls(field), help=_help(field, help_text), **_attrs(field))


def _allows_infinity(info: FieldInfo) -> bool:
    """Whether a setting takes ``inf`` (it says so with ``Field(allow_inf_nan=True)`` and
    refuses ``nan`` with its bounds), so its flag must not refuse it first."""
    return any(getattr(item, "allow_inf_nan", None) is True for item in info.metadata)


def settings_options(command: F) -> F:
    """Add one option per setting to ``command``, in the settings' order."""
    for field in reversed(list(Settings.model_fields)):
        command = click.option(*_decls(field), help=_help(field), **_attrs(field))(command)
    return command


def given_settings(flags: dict[str, Any]) -> dict[str, Any]:
    """The settings a command line gave (flags left out and empty repeats dropped)."""
    return {key: value for key, value in flags.items() if value not in (None, ())}

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
    """The flag of a setting: ``max_upload_mb`` -> ``--max-upload-mb``."""
    return f"--{field.replace('_', '-')}"


def env_name(field: str) -> str:
    """The environment variable of a setting: ``max_upload_mb`` -> ``WHISPERD_MAX_UPLOAD_MB``."""
    return f"WHISPERD_{field.upper()}"


def _plain(annotation: Any) -> Any:
    """``X | None`` -> ``X``; ``Annotated[X, ...]`` -> ``X``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return options[0] if len(options) == 1 else str
    return annotation


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


def _help(field: str, description: str | None, default: Any) -> str:
    text = " ".join((description or "").replace("``", "").split())
    shown = (
        "none"
        if default in (None, [])
        else str(default).lower()
        if isinstance(default, bool)
        else default
    )
    return f"{text} [env: {env_name(field)}; default: {shown}]"


def _option(field: str) -> Callable[[F], F]:
    info = Settings.model_fields[field]
    default = None if info.default_factory is not None else info.default
    names = [flag_name(field), *([_SHORT[field]] if field in _SHORT else [])]
    help_text = _help(field, info.description, default)
    annotation = _plain(info.annotation)
    if annotation is bool:
        secondary = f"--no-{field.replace('_', '-')}"
        return click.option(
            f"{names[0]}/{secondary}", field, default=None, help=help_text, show_default=False
        )
    if typing.get_origin(annotation) is list:
        argument = typing.get_args(annotation)[0]
        singular = names[0].removesuffix("s")
        item = str if argument is SecretStr else _click_type(argument)
        return click.option(singular, field, multiple=True, type=item, help=help_text)
    kind = click.FLOAT if _allows_infinity(info) else _click_type(annotation)
    return click.option(*names, field, type=kind, default=None, help=help_text)


def _allows_infinity(info: FieldInfo) -> bool:
    """Whether a setting takes ``inf`` (it says so with ``Field(allow_inf_nan=True)`` and
    refuses ``nan`` with its bounds), so its flag must not refuse it first."""
    return any(getattr(item, "allow_inf_nan", None) is True for item in info.metadata)


def settings_options(command: F) -> F:
    """Add one option per setting to ``command``, in the settings' order."""
    for field in reversed(list(Settings.model_fields)):
        command = _option(field)(command)
    return command


def given_settings(flags: dict[str, Any]) -> dict[str, Any]:
    """The settings a command line gave (flags left out and empty repeats dropped)."""
    return {key: value for key, value in flags.items() if value not in (None, ())}

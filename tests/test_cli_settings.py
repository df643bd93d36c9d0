"""Every setting is a ``whisperd serve`` flag that reaches its setting."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from pydantic import SecretStr, ValidationError

from whisperd.cli import cli
from whisperd.cli_settings import env_name, flag_name, given_settings, settings_options
from whisperd.config import Settings


def _probe() -> click.Command:
    seen: dict[str, Any] = {}

    @click.command()
    @settings_options
    def probe(**flags: Any) -> None:
        seen["settings"] = Settings(_env_file=None, **given_settings(flags))

    probe.seen = seen  # type: ignore[attr-defined]
    return probe


_TEXTS = ("x-value", "https://x.example", "whsec_" + "A" * 32)
"""Text values tried in turn: the first a setting's validators accept is used."""


def _accepted(field: str, value: Any) -> bool:
    try:
        Settings(_env_file=None, **{field: value})  # type: ignore[call-arg]
    except ValidationError:
        return False
    return True


def _plain(annotation: Any) -> tuple[Any, ...]:
    """The types a setting's annotation allows, ``None`` left out."""
    members = (
        typing.get_args(annotation)
        if typing.get_origin(annotation)
        in (
            typing.Union,
            types.UnionType,
        )
        else (annotation,)
    )
    return tuple(member for member in members if member is not type(None))


def _scalar(field: str, kind: Any) -> tuple[str, Any]:
    """A value of type ``kind`` other than the default that the setting accepts, as typed on
    the command line and as the setting holds it."""
    default = Settings.model_fields[field].default
    if typing.get_origin(kind) is typing.Literal:
        value = next(a for a in typing.get_args(kind) if a != default)
        return str(value), value
    if kind is Path:
        return "/srv/models", Path("/srv/models")
    if kind in (str, SecretStr):
        text = next(t for t in _TEXTS if _accepted(field, t))
        return text, text
    base = default if isinstance(default, int | float) else 0
    candidates = [base + 1, base - 1, 1, 2, 1024, 8080]
    value = next(kind(c) for c in candidates if kind(c) != default and _accepted(field, kind(c)))
    return str(value), value


def _value_for(field: str) -> tuple[list[str], Any]:
    """Command-line words setting ``field`` to a value other than its default, and that value
    (a secret's as its text)."""
    info = Settings.model_fields[field]
    (kind,) = _plain(info.annotation)
    if kind is bool:
        words = [flag_name(field) if not info.default else f"--no-{flag_name(field)[2:]}"]
        return words, not info.default
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind)
        first, first_value = _scalar(field, item)
        words = [flag_name(field), first, flag_name(field), first]
        return words, [first_value, first_value]
    text, value = _scalar(field, kind)
    return [flag_name(field), text], value


def _revealed(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, list):
        return [_revealed(item) for item in value]
    return value


@pytest.mark.parametrize("field", list(Settings.model_fields))
def test_every_setting_has_a_flag_that_sets_it(field: str) -> None:
    probe = _probe()
    words, value = _value_for(field)
    result = CliRunner().invoke(probe, words)
    assert result.exit_code == 0, result.output
    got = getattr(probe.seen["settings"], field)  # type: ignore[attr-defined]
    assert _revealed(got) == value


def test_serve_help_names_every_environment_variable_and_default() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for field in Settings.model_fields:
        assert flag_name(field) in result.output
        assert env_name(field) in result.output
    assert "default: large-v3-turbo" in result.output


def test_a_bad_setting_names_its_environment_variable() -> None:
    result = CliRunner().invoke(cli, ["serve", "--max-batch-size", "0"])
    assert result.exit_code == 2
    assert "WHISPERD_MAX_BATCH_SIZE" in result.output


def test_serve_has_exactly_one_flag_per_setting() -> None:
    serve = cli.commands["serve"]
    names = [param.name for param in serve.params if isinstance(param, click.Option)]
    assert sorted(names) == sorted(Settings.model_fields)

"""Every setting is a ``whisperd serve`` flag that reaches its setting."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

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


def _value_for(field: str) -> tuple[list[str], Any]:
    """Command-line words setting ``field`` to a value other than its default, and that value."""
    info = Settings.model_fields[field]
    annotation = info.annotation
    args = typing.get_args(annotation)
    if annotation is bool:
        return [flag_name(field) if not info.default else f"--no-{flag_name(field)[2:]}"], (
            not info.default
        )
    if typing.get_origin(annotation) is typing.Literal:
        value = next(a for a in args if a != info.default)
        return [flag_name(field), str(value)], value
    if field == "api_keys":
        return ["--api-key", "k1", "--api-key", "k2"], ["k1", "k2"]
    if field == "webhook_secret":
        return [flag_name(field), "whsec_" + "A" * 32], "whsec_" + "A" * 32
    if Path in args:
        return [flag_name(field), "/srv/models"], Path("/srv/models")
    if str in args or annotation is str:
        return [flag_name(field), "x-value"], "x-value"
    default = info.default
    value = type(default)(default + 1) if default < 4096 else type(default)(default - 1)
    try:
        Settings(_env_file=None, **{field: value})  # type: ignore[call-arg]
    except ValidationError:  # the default is the field's largest value
        value = type(default)(default - 1)
    return [flag_name(field), str(value)], value


@pytest.mark.parametrize("field", list(Settings.model_fields))
def test_every_setting_has_a_flag_that_sets_it(field: str) -> None:
    probe = _probe()
    words, value = _value_for(field)
    result = CliRunner().invoke(probe, words)
    assert result.exit_code == 0, result.output
    got = getattr(probe.seen["settings"], field)  # type: ignore[attr-defined]
    if field == "api_keys":
        got = [key.get_secret_value() for key in got]
    elif field == "webhook_secret":
        got = got.get_secret_value()
    assert got == value


def test_serve_help_names_every_environment_variable_and_default() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for field in Settings.model_fields:
        assert flag_name(field) in result.output or field == "api_keys"
        assert env_name(field) in result.output
    assert "default: large-v3-turbo" in result.output


def test_a_bad_setting_names_its_environment_variable() -> None:
    result = CliRunner().invoke(cli, ["serve", "--max-batch-size", "0"])
    assert result.exit_code == 2
    assert "WHISPERD_MAX_BATCH_SIZE" in result.output

"""``whisperd config``: the settings ``whisperd serve`` would run with, and where each came from.

It takes every flag ``serve`` takes (:mod:`whisperd.cli_settings`), so ``whisperd config
--port 9000`` shows what ``whisperd serve --port 9000`` would use. Each setting is printed as
an environment line, ``WHISPERD_<NAME>=value  # source``, where the source is the one
pydantic-settings took it from, in its order of precedence: ``flag``, ``environment``,
``.env`` (the file in the working directory), else ``default``.

Secrets never leave the process: secret settings (API keys, the webhook secret, the LLM's key)
print as ``********`` when set, and the password of any URL (``database_url``,
``postgresql://user:********@host/db``) is masked the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias
from urllib.parse import urlsplit, urlunsplit

import click
from pydantic import SecretStr, ValidationError
from pydantic_settings import DotEnvSettingsSource, EnvSettingsSource

from whisperd.cli_settings import env_name, given_settings, settings_options
from whisperd.config import Settings
from whisperd.schemas.validation import describe

__all__ = ["MASK", "Source", "SourcedSetting", "config", "effective_settings", "masked"]

MASK: Final = "********"
"""What a secret, or a URL's password, is printed as."""

Source: TypeAlias = Literal["flag", "environment", ".env", "default"]
"""Where a setting's value came from, highest precedence first."""

ENV_FILE: Final = Path(".env")
"""The dotenv file settings are read from (:class:`~whisperd.config.Settings`' ``env_file``)."""


@dataclass(frozen=True, slots=True)
class SourcedSetting:
    """One effective setting.

    Attributes:
        name: The field of :class:`~whisperd.config.Settings` (``max_upload_mb``).
        value: Its value as text, secrets masked (empty: no value).
        source: Where the value came from.
    """

    name: str
    value: str
    source: Source


def _masked_url(text: str) -> str:
    """``text`` with the password of a URL in it masked; other text as is."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    if not parts.scheme or parts.password is None:
        return text
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def masked(value: object) -> str:
    """A setting's value as printed: secrets and URL passwords masked, lists comma-separated,
    booleans in lower case, no value as the empty string."""
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return ",".join(masked(item) for item in value)
    return _masked_url(str(value))


def _sources(flags: Mapping[str, Any], env_file: Path) -> dict[str, Source]:
    """The source of every setting that is not at its default."""
    sources: dict[str, Source] = {}
    if env_file.is_file():
        for name in DotEnvSettingsSource(Settings, env_file=env_file)():
            sources[name] = ".env"
    for name in EnvSettingsSource(Settings)():
        sources[name] = "environment"
    for name in flags:
        sources[name] = "flag"
    return sources


def effective_settings(
    flags: Mapping[str, Any], *, env_file: Path = ENV_FILE
) -> list[SourcedSetting]:
    """Every setting ``whisperd serve`` would run with given ``flags``, in the settings' order.

    Args:
        flags: The settings given as flags (by field name).
        env_file: The dotenv file to read, as the settings do.

    Raises:
        pydantic.ValidationError: if a value is invalid, as ``whisperd serve`` would refuse it.
    """
    settings = Settings(_env_file=env_file, **flags)
    sources = _sources(flags, env_file)
    return [
        SourcedSetting(name, masked(getattr(settings, name)), sources.get(name, "default"))
        for name in Settings.model_fields
    ]


@click.command()
@settings_options
def config(**flags: Any) -> None:
    """Print the settings `whisperd serve` would run with (given the same flags), one
    WHISPERD_<NAME>=value line each, with where it came from: flag, environment, .env or
    default. Secrets and URL passwords are masked."""
    try:
        settings = effective_settings(given_settings(flags))
    except ValidationError as exc:
        raise click.UsageError(describe(exc, name=env_name)) from None
    for setting in settings:
        click.echo(f"{env_name(setting.name)}={setting.value}  # {setting.source}")

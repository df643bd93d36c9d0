"""``whisperd config``: every effective setting, with its source, secrets masked."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from whisperd.cli import cli
from whisperd.cli_config import MASK, effective_settings, masked
from whisperd.cli_settings import env_name
from whisperd.config import Settings

SECRET = "whsec_" + "QUJD" * 8
"""A valid webhook secret (24 bytes), also used as the text of every other secret."""


def _lines(output: str) -> dict[str, tuple[str, str]]:
    """``WHISPERD_X=value  # source`` lines as {variable: (value, source)}."""
    found = {}
    for line in output.splitlines():
        assignment, _, source = line.partition("  # ")
        name, _, value = assignment.partition("=")
        found[name] = (value, source)
    return found


def _secret_fields() -> list[str]:
    def secret(annotation: object) -> bool:
        return SecretStr in (annotation, *typing.get_args(annotation)) or any(
            secret(arg) for arg in typing.get_args(annotation)
        )

    return [name for name, info in Settings.model_fields.items() if secret(info.annotation)]


def test_every_setting_is_printed_once_with_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("WHISPERD_MAX_STREAMS=3\nWHISPERD_PORT=7000\n")
    monkeypatch.setenv("WHISPERD_MODEL_TTL", "300")
    monkeypatch.setenv("WHISPERD_PORT", "8001")
    monkeypatch.setenv("WHISPERD_HOST", "0.0.0.0")
    result = CliRunner().invoke(
        cli, ["config", "--host", "::1", "--allowed-model", "known", "--allowed-model", "Sys/*"]
    )
    assert result.exit_code == 0, result.output
    lines = _lines(result.output)
    assert len(result.output.splitlines()) == len(Settings.model_fields)
    assert set(lines) == {env_name(field) for field in Settings.model_fields}
    assert lines["WHISPERD_MAX_STREAMS"] == ("3", ".env")
    assert lines["WHISPERD_PORT"] == ("8001", "environment")  # the environment beats .env
    assert lines["WHISPERD_MODEL_TTL"] == ("300.0", "environment")
    assert lines["WHISPERD_HOST"] == ("::1", "flag")  # a flag beats the environment
    assert lines["WHISPERD_ALLOWED_MODELS"] == ("known,Sys/*", "flag")
    assert lines["WHISPERD_MODEL"] == ("large-v3-turbo", "default")
    assert lines["WHISPERD_MODELS_DIR"] == ("", "default")
    assert lines["WHISPERD_OFFLINE"] == ("false", "default")


def test_secrets_and_url_passwords_are_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    secrets = _secret_fields()
    assert {"api_keys", "webhook_secret"} <= set(secrets)
    for field in secrets:
        monkeypatch.setenv(env_name(field), SECRET)
    monkeypatch.setenv("WHISPERD_DATABASE_URL", "postgresql://bob:hunter2@db.internal/jobs")
    result = CliRunner().invoke(cli, ["config", "--api-key", "sesame-1", "--api-key", "sesame-2"])
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    assert "sesame" not in result.output
    assert "hunter2" not in result.output
    lines = _lines(result.output)
    assert lines["WHISPERD_API_KEYS"] == (f"{MASK},{MASK}", "flag")
    assert lines["WHISPERD_WEBHOOK_SECRET"] == (MASK, "environment")
    for field in secrets:
        assert MASK in lines[env_name(field)][0]
    assert lines["WHISPERD_DATABASE_URL"] == (
        f"postgresql://bob:{MASK}@db.internal/jobs",
        "environment",
    )


def test_a_bad_setting_is_refused_naming_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WHISPERD_MAX_LOADED_MODELS", "-1")
    result = CliRunner().invoke(cli, ["config"])
    assert result.exit_code == 2
    assert "WHISPERD_MAX_LOADED_MODELS" in result.output


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, ""),
        (True, "true"),
        (["a", "b"], "a,b"),
        (SecretStr("x"), MASK),
        ("https://user:pw@example.com:8443/v1", f"https://user:{MASK}@example.com:8443/v1"),
        ("https://example.com/v1", "https://example.com/v1"),
        ("sqlite:////var/lib/jobs.sqlite3", "sqlite:////var/lib/jobs.sqlite3"),
        (Path("/srv/models"), "/srv/models"),
    ],
)
def test_values_are_shown_as_typed_with_secrets_masked(value: object, shown: str) -> None:
    assert masked(value) == shown


def test_effective_settings_reads_the_given_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / "other.env"
    env_file.write_text("WHISPERD_MAX_LOADED_MODELS=2\n")
    found = {s.name: s for s in effective_settings({"port": 9}, env_file=env_file)}
    assert (found["max_loaded_models"].value, found["max_loaded_models"].source) == ("2", ".env")
    assert (found["port"].value, found["port"].source) == ("9", "flag")

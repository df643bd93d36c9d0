"""Settings come from WHISPERD_* variables and flags, validated at startup."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from whisperd.config import Settings


def test_defaults() -> None:
    settings = Settings(_env_file=None)
    assert settings.model == "large-v3-turbo"
    assert settings.device == "auto"
    assert settings.compute_type == "auto"
    assert settings.offline is False
    assert settings.api_keys == []
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WHISPERD_MODEL", "small")
    monkeypatch.setenv("WHISPERD_DEVICE", "cpu")
    monkeypatch.setenv("WHISPERD_OFFLINE", "true")
    monkeypatch.setenv("WHISPERD_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("WHISPERD_API_KEYS", "k1, k2,")
    settings = Settings(_env_file=None)
    assert settings.model == "small"
    assert settings.device == "cpu"
    assert settings.offline is True
    assert settings.models_dir == tmp_path
    assert [key.get_secret_value() for key in settings.api_keys] == ["k1", "k2"]


def test_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISPERD_MODEL", "small")
    assert Settings(_env_file=None, model="tiny").model == "tiny"


def test_env_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("WHISPERD_PORT=9123\n")
    monkeypatch.chdir(tmp_path)
    assert Settings().port == 9123


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("device", "tpu"),
        ("compute_type", "int4"),
        ("port", 70000),
        ("max_audio_seconds", 0),
        ("engine", "tensorrt"),
        ("max_decode_rows", -1),
        ("cuda_graph_rows", -1),
        ("cuda_graph_rows", 4096),
    ],
)
def test_nonsense_is_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, **{field: value})


def test_api_keys_are_secret() -> None:
    settings = Settings(_env_file=None, api_keys=["s3cret"])
    assert "s3cret" not in repr(settings)


def test_every_setting_is_documented() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, name

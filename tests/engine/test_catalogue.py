"""Tests of the model catalogue: every known name, its aliases, its flags, and read-only-ness."""

from __future__ import annotations

import dataclasses

import pytest

from whisperd.engine.catalogue import DEFAULT_MODEL, KNOWN_MODELS, known_model


def test_every_faster_whisper_name_is_known_with_its_repo_id() -> None:
    # Parity check against faster-whisper's own table; only tests read it.
    from faster_whisper.utils import _MODELS

    for name, repo_id in _MODELS.items():
        model = known_model(name)
        assert model is not None, name
        assert model.repo_id == repo_id, name


def test_default_model_is_turbo() -> None:
    assert DEFAULT_MODEL == "large-v3-turbo"
    assert DEFAULT_MODEL in KNOWN_MODELS


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("turbo", "large-v3-turbo"),
        ("whisper-1", "large-v3-turbo"),
        ("whisper-large-v3-turbo", "large-v3-turbo"),
        ("large", "large-v3"),
        ("distil-whisper-large-v3", "distil-large-v3"),
        ("distil-whisper-medium.en", "distil-medium.en"),
        ("distil-whisper-small.en", "distil-small.en"),
        ("Large-V3", "large-v3"),
    ],
)
def test_aliases(alias: str, canonical: str) -> None:
    model = known_model(alias)
    assert model is not None
    assert model.name == canonical
    assert model is KNOWN_MODELS[canonical]


def test_aliases_are_not_canonical_names() -> None:
    aliases = [alias for model in KNOWN_MODELS.values() for alias in model.aliases]
    assert len(aliases) == len(set(aliases))
    assert not set(aliases) & set(KNOWN_MODELS)


@pytest.mark.parametrize(
    ("name", "english_only", "translates"),
    [
        ("tiny", False, True),
        ("tiny.en", True, False),
        ("medium.en", True, False),
        ("large-v3", False, True),
        ("large-v3-turbo", False, True),
        ("distil-large-v3", False, False),
        ("distil-large-v3.5", False, False),
        ("distil-small.en", True, False),
    ],
)
def test_capability_flags(name: str, english_only: bool, translates: bool) -> None:
    model = KNOWN_MODELS[name]
    assert model.english_only is english_only
    assert model.supports_translation is translates


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        KNOWN_MODELS["mine"] = KNOWN_MODELS["tiny"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        KNOWN_MODELS["tiny"].repo_id = "x/y"  # type: ignore[misc]

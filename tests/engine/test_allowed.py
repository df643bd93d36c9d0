"""The allow-list of models clients may ask for."""

from __future__ import annotations

import pytest

from whisperd.engine.allowed import ModelAllowList
from whisperd.errors import ModelNotAllowedError, UnknownModelError


@pytest.mark.parametrize(
    ("patterns", "name", "allowed"),
    [
        (("known",), "small", True),
        (("known",), "Systran/faster-whisper-small", True),
        (("known",), "openai/whisper-small", True),  # the original checkpoint (torch engine)
        (("known",), "turbo", True),
        (("known",), "SMALL", True),
        (("known",), "someone/whisper-finetune", False),
        (("known",), "/srv/models/mine", False),
        ((), "small", False),
        (("Systran/*",), "Systran/faster-whisper-small", True),
        (("Systran/*",), "small", True),  # by its repository
        (("Systran/*",), "large-v3-turbo", False),  # its repository is mobiuslabsgmbh's
        (("small*",), "Systran/faster-whisper-small", True),  # by its name
        (("/srv/models/*",), "/srv/models/mine", True),
        (("/srv/models/*",), "/srv/models/mine/", True),
        (("/srv/models/*",), "/srv/other", False),
        (("*",), "anyone/anything", True),
    ],
)
def test_patterns(patterns: tuple[str, ...], name: str, allowed: bool) -> None:
    assert ModelAllowList(patterns, default="tiny").allows(name) is allowed


@pytest.mark.parametrize(
    "name", ["", " ", "tiny", "Systran/faster-whisper-tiny", "openai/whisper-tiny"]
)
def test_the_default_model_is_always_allowed_by_any_of_its_names(name: str) -> None:
    assert ModelAllowList((), default="tiny").allows(name)


def test_a_directory_default_is_allowed_by_its_own_name_only() -> None:
    allow_list = ModelAllowList((), default="/srv/models/mine")
    assert allow_list.allows("/srv/models/mine")
    assert not allow_list.allows("/srv/models/other")


def test_a_refusal_is_a_model_not_found_naming_the_setting() -> None:
    with pytest.raises(ModelNotAllowedError) as refused:
        ModelAllowList(("known",), default="tiny").check("someone/whisper-finetune")
    assert isinstance(refused.value, UnknownModelError)
    assert refused.value.code == "model_not_found"
    assert refused.value.param == "model"
    assert "'someone/whisper-finetune'" in refused.value.message
    assert "WHISPERD_ALLOWED_MODELS" in refused.value.message

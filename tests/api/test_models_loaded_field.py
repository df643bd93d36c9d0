"""``/v1/models`` entries say whether their model is loaded, in OpenAI's shape (an extra field
the openai SDK keeps in ``model_extra``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from whisperd.config import Settings
from whisperd.testing import ScriptedModel
from whisperd.testing.hub import hub_cache

REPOS = ["Systran/faster-whisper-tiny", "Systran/faster-whisper-base"]


@pytest.fixture(scope="module")
def cache(scripted_model: ScriptedModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An offline Hub cache holding tiny and base (the scripted model's files)."""
    return hub_cache(tmp_path_factory.mktemp("hub"), scripted_model.path, REPOS)


def test_entries_follow_loads_and_unloads(
    serve_fake: Callable[..., Any], settings_for: Callable[..., Settings], cache: Path
) -> None:
    settings = settings_for(model="tiny", models_dir=cache)
    with serve_fake(settings) as server, server.http() as http:
        client = server.client()

        def loaded() -> dict[str, bool]:
            return {model.id: (model.model_extra or {})["loaded"] for model in client.models.list()}

        before = loaded()
        # The default model and OpenAI's ids of it are loaded; nothing else is.
        assert before["tiny"] is True
        assert before["whisper-1"] is True
        assert before["base"] is False
        assert before["small"] is False
        assert {model for model, is_loaded in before.items() if is_loaded} == {
            "tiny",
            "whisper-1",
            "whisper-large-v3-turbo",
            "openai/whisper-large-v3-turbo",
        }

        assert http.post("/v1/loaded_models/base").status_code == 200
        assert loaded()["base"] is True
        assert (client.models.retrieve("base").model_extra or {})["loaded"] is True
        # A known repo id is shown as its model's entry, loaded or not.
        by_repo = http.get("/v1/models/Systran/faster-whisper-base").json()
        assert (by_repo["id"], by_repo["loaded"]) == ("Systran/faster-whisper-base", True)

        assert http.delete("/v1/loaded_models/base").status_code == 200
        assert loaded()["base"] is False
        assert http.delete("/v1/loaded_models/whisper-1").status_code == 200
        after = loaded()
        assert after["tiny"] is False
        assert after["whisper-1"] is False
        # The rest of each entry keeps OpenAI's shape.
        entry = http.get("/v1/models/tiny").json()
        assert (entry["object"], entry["owned_by"], entry["loaded"]) == ("model", "whisperd", False)
        assert isinstance(entry["created"], int)

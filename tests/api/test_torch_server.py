"""A server on the torch engine: the default model comes from the Hub cache as a checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from whisperd.testing import ScriptedModel, build_test_model
from whisperd.testing.hub import hub_cache

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> ScriptedModel:
    root = tmp_path_factory.mktemp("torch-server")
    return build_test_model(root / "turbo", n_words=12, model_format="huggingface")


def test_openai_sdk_transcribes_on_the_torch_engine(
    settings_for, serve, checkpoint: ScriptedModel, tmp_path: Path
) -> None:
    cache = hub_cache(tmp_path / "hub", checkpoint.path, ["openai/whisper-large-v3-turbo"])
    settings = settings_for(
        engine="torch", model="large-v3-turbo", models_dir=cache, compute_type="auto"
    )
    with serve(settings) as running:
        client = running.client()
        with (DATA / "speech.wav").open("rb") as audio:
            result = client.audio.transcriptions.create(
                model="whisper-1", file=audio, response_format="verbose_json"
            )
        models = running.http().get("/v1/models").json()
    assert result.text.strip().startswith(checkpoint.text.strip().split()[0])
    assert result.segments
    assert result.segments[0].text == checkpoint.text
    assert any(model["id"] == "large-v3-turbo" for model in models["data"])

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
        with running.http() as http:
            models = http.get("/v1/models").json()
    assert result.text.strip().startswith(checkpoint.text.strip().split()[0])
    assert result.segments
    assert result.segments[0].text == checkpoint.text
    assert any(model["id"] == "large-v3-turbo" for model in models["data"])


def test_a_beam_wider_than_the_decoder_is_a_400_in_openais_envelope(
    settings_for, serve, checkpoint: ScriptedModel
) -> None:
    settings = settings_for(engine="torch", model=str(checkpoint.path), max_decode_rows=2)
    with serve(settings) as running, running.http() as http:
        response = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("speech.wav", (DATA / "speech.wav").read_bytes())},
            data={"model": "whisper-1", "beam_size": "5", "vad_filter": "false"},
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert "decoder rows" in error["message"]
    assert error["type"] == "invalid_request_error"

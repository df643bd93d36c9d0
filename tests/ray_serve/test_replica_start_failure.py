"""A replica whose model cannot be had fails the deployment with the model's error, instead of
leaving ``serve`` waiting (the driver's own check is skipped here: ``deploy`` is called
directly, as a Serve config file's builder would be)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ray_cluster import free_port, local_ray, ray_settings

from whisperd.errors import StartupError
from whisperd.ray_serve.run import deploy
from whisperd.testing import ScriptedModel

pytestmark = pytest.mark.slow


def test_a_model_the_replicas_cannot_load_fails_the_deployment(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    settings = ray_settings(scripted_model, free_port(), replicas=1)
    broken = settings.model_copy(update={"model": str(tmp_path / "missing-model")})
    with local_ray(tmp_path / "ray"), pytest.raises(StartupError) as failed:
        deploy(broken)
    message = str(failed.value)
    assert message.startswith("Ray Serve could not deploy whisperd: ")
    assert "\n" not in message
    assert str(tmp_path / "missing-model") in message

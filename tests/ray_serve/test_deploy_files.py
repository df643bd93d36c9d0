"""The Serve config file and the KubeRay manifest under deploy/: Serve's own schema accepts
their application, whisperd's builder accepts its arguments, and every Ray container runs
whisperd's proxy middlewares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ray_cluster import serve

from whisperd.ray_serve import app_builder
from whisperd.ray_serve.proxy import PROXY_CALLBACK, PROXY_CALLBACK_VARIABLE

DEPLOY = Path(__file__).parents[2] / "deploy"


def _check_serve_config(config: dict[str, Any]) -> None:
    from ray._common.utils import import_attr
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary
    from ray.serve.schema import ServeDeploySchema

    schema = ServeDeploySchema.model_validate(config)
    (application,) = schema.applications
    builder = import_attr(application.import_path)  # as Serve imports it
    assert builder is app_builder
    built = call_user_app_builder_with_args_if_necessary(builder, application.args)
    assert isinstance(built, serve.Application)


def test_the_serve_config_file_deploys_whisperd() -> None:
    _check_serve_config(yaml.safe_load((DEPLOY / "ray" / "serve-config.yaml").read_text()))


def test_the_rayservice_runs_whisperd_with_the_proxy_middlewares_everywhere() -> None:
    documents = list(yaml.safe_load_all((DEPLOY / "kuberay" / "rayservice.yaml").read_text()))
    (service,) = [d for d in documents if d["kind"] == "RayService"]
    _check_serve_config(yaml.safe_load(service["spec"]["serveConfigV2"]))
    cluster = service["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    for group in groups:
        for container in group["template"]["spec"]["containers"]:
            env = {item["name"]: item.get("value") for item in container.get("env", [])}
            assert env[PROXY_CALLBACK_VARIABLE] == PROXY_CALLBACK, container["name"]
    assert any(d["kind"] == "NetworkPolicy" for d in documents)


def test_a_builder_argument_that_is_no_setting_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown whisperd settings.*'replcas'"):
        app_builder({"replcas": 2})

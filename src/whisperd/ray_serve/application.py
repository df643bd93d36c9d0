"""whisperd's Serve application: the deployment bound to its settings, for ``serve.run``, and
the builder that Serve config files (``serve run`` / ``serve deploy``) name."""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve import Application, Deployment

from whisperd.config import Settings
from whisperd.ray_serve.options import check_ray_settings, deployment_options
from whisperd.ray_serve.replica import WhisperdReplica

__all__ = ["app_builder", "build_application"]


def build_application(settings: Settings) -> Application:
    """The Serve application of ``settings``: one deployment of :class:`WhisperdReplica`.

    Raises:
        StartupError: for settings that cannot work across replicas.
    """
    check_ray_settings(settings)
    deployment: Deployment = serve.deployment(**deployment_options(settings))(WhisperdReplica)
    return deployment.bind(settings)


def app_builder(args: dict[str, Any]) -> Application:
    """The application of a Serve config file: ``import_path:
    whisperd.ray_serve:app_builder``, whose ``args`` are settings by name (``model: small``,
    ``replicas: 2``); the others come from ``WHISPERD_*`` variables (``runtime_env``).

    Raises:
        ValueError: for a name that is no setting.
        pydantic.ValidationError: for an invalid setting.
        StartupError: for settings that cannot work across replicas.
    """
    unknown = sorted(set(args) - set(Settings.model_fields))
    if unknown:
        raise ValueError(f"unknown whisperd settings in the application's args: {unknown}")
    return build_application(Settings(**args))

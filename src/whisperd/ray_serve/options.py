"""Settings to the options of whisperd's Serve deployment. Pure: no Ray import, no cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from whisperd.errors import StartupError
from whisperd.jobs.database_url import is_postgres_url

if TYPE_CHECKING:
    from whisperd.config import Settings

__all__ = ["DEPLOYMENT_NAME", "check_ray_settings", "deployment_options", "replica_settings"]

DEPLOYMENT_NAME: Final = "whisperd"
"""The name of the Serve application and of its one deployment."""

_CANCEL_GRACE_S: Final = 5.0
"""Room past ``shutdown_timeout_s`` for cancelled work to answer before Ray kills a replica."""


def deployment_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of ``serve.deployment(...).options()`` for ``settings``.

    Each replica reserves ``replica_cpus`` cores and ``replica_gpus`` GPUs; there are
    ``replicas`` of them, or between ``replicas`` and ``max_replicas`` scaled by ongoing
    requests (``replica_target_requests`` per replica). A replica takes as many requests and
    streams as whisperd admits (``max_pending_requests + max_streams``), so a full replica
    answers 503 with ``Retry-After`` itself rather than Ray queueing the request. A stopping
    replica gets ``shutdown_timeout_s`` (plus a grace) for its work in flight.
    """
    options: dict[str, Any] = {
        "name": DEPLOYMENT_NAME,
        "ray_actor_options": {
            "num_cpus": settings.replica_cpus,
            "num_gpus": settings.replica_gpus,
        },
        "max_ongoing_requests": settings.max_pending_requests + settings.max_streams,
        "graceful_shutdown_timeout_s": settings.shutdown_timeout_s + _CANCEL_GRACE_S,
        "graceful_shutdown_wait_loop_s": 1.0,
        "health_check_period_s": 5.0,
        "health_check_timeout_s": 30.0,
    }
    if settings.max_replicas is None:
        options["num_replicas"] = settings.replicas
    else:
        options["autoscaling_config"] = {
            "min_replicas": settings.replicas,
            "initial_replicas": settings.replicas,
            "max_replicas": settings.max_replicas,
            "target_ongoing_requests": settings.replica_target_requests,
        }
    return options


def replica_settings(settings: Settings, name: str) -> Settings:
    """The settings of one replica called ``name``: ``replica_name`` set, ``device`` ``cpu``
    where ``auto`` would look for a GPU the replica did not reserve, and no separate metrics
    port (``/metrics`` goes through the proxy)."""
    update: dict[str, Any] = {"replica_name": name, "metrics_port": None, "ray": False}
    if settings.replica_gpus == 0 and settings.device == "auto":
        update["device"] = "cpu"
    return settings.model_copy(update=update)


def check_ray_settings(settings: Settings) -> None:
    """Refuse settings that cannot work across replicas, before anything starts.

    Raises:
        StartupError: naming the setting: a separate metrics port (replicas share the proxy's
            port), or jobs on SQLite with more than one replica (each would run its own queue:
            jobs across replicas need PostgreSQL).
    """
    if settings.metrics_port is not None:
        raise StartupError(
            "WHISPERD_METRICS_PORT cannot be used with --ray: each replica serves /metrics "
            "through Ray's proxy (labelled with its replica); unset it."
        )
    several = settings.replicas > 1 or (settings.max_replicas or 1) > 1
    if settings.data_dir is not None and several and not is_postgres_url(settings.database_url):
        raise StartupError(
            "Jobs across several Ray replicas need the PostgreSQL store: set "
            "WHISPERD_DATABASE_URL=postgresql://... (SQLite is one server's), or run one replica."
        )

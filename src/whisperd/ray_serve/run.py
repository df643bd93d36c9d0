"""``whisperd serve --ray``: deploy whisperd on Ray Serve, serve until told to stop, remove it.

Without ``ray_address`` a Ray instance of this machine is started (and stopped at the end),
without Ray's dashboard; with one, the application is deployed to that cluster and deleted from
it at the end (the cluster keeps running).
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import ray
from ray import serve

from whisperd.config import export_to_children
from whisperd.errors import StartupError
from whisperd.jobs import check_jobs
from whisperd.ray_serve.application import build_application
from whisperd.ray_serve.options import DEPLOYMENT_NAME, check_ray_settings
from whisperd.ray_serve.placement import check_placement, cluster_nodes
from whisperd.ray_serve.proxy import PROXY_CALLBACK, PROXY_CALLBACK_VARIABLE
from whisperd.service.loading import check_default_model

if TYPE_CHECKING:
    from whisperd.config import Settings

__all__ = ["check_port_free", "deploy", "run_on_ray", "start_ray"]

logger = logging.getLogger(__name__)

_DELETE_GRACE_S = 15.0
"""Room past ``shutdown_timeout_s`` for Ray to stop the replicas and confirm."""


def start_ray(settings: Settings, *, temp_dir: Path | None = None) -> None:
    """Connect to the cluster at ``ray_address``, or start a Ray of this machine (its files in
    ``temp_dir``, Ray's default without; no dashboard), with whisperd's proxy middlewares on its
    processes."""
    export_to_children(PROXY_CALLBACK_VARIABLE, PROXY_CALLBACK)
    if settings.ray_address is not None:
        ray.init(address=settings.ray_address, namespace="serve", log_to_driver=True)
        return
    ray.init(
        include_dashboard=False,
        namespace="serve",
        log_to_driver=True,
        _temp_dir=str(temp_dir) if temp_dir is not None else None,
    )


def deploy(settings: Settings) -> None:
    """Check the cluster can place the replicas, start Serve's proxy on ``host:port`` and
    deploy whisperd; return once every replica has loaded its model.

    Raises:
        StartupError: if the replicas do not fit the cluster, or the deployment failed (a
            replica could not start: its first error line is given).
    """
    check_placement(settings, cluster_nodes())
    serve.start(
        proxy_location="EveryNode", http_options={"host": settings.host, "port": settings.port}
    )
    try:
        serve.run(build_application(settings), name=DEPLOYMENT_NAME, route_prefix="/")
    except RuntimeError as exc:
        reason = _replica_failure() or _last_line(str(exc))
        raise StartupError(f"Ray Serve could not deploy whisperd: {reason}") from exc


def _last_line(text: str) -> str:
    """The last non-empty line of ``text`` (of a traceback: the exception and its message)."""
    return next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")


def _replica_failure() -> str | None:
    """Why whisperd's deployment failed, as Serve recorded it (a replica's exception)."""
    try:
        application = serve.status().applications.get(DEPLOYMENT_NAME)
    except Exception:  # only a better message is lost
        return None
    if application is None:
        return None
    messages = [d.message for d in application.deployments.values() if d.message]
    return _last_line(messages[-1]) if messages else None


def check_port_free(host: str, port: int) -> None:
    """Check that Serve's proxy can listen on ``host:port`` of this machine (Ray would retry a
    port in use forever).

    Raises:
        StartupError: naming the address and the reason.
    """
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise StartupError(
            f"Cannot serve on {host}:{port}: {exc.strerror or exc}. Choose a free port."
        ) from exc


def _stop_on_signals() -> threading.Event:
    """An event set by the first SIGTERM or SIGINT from now on (replacing Ray's handler, which
    would abort the process); after it a second one acts at once (SIGINT raises
    ``KeyboardInterrupt``, SIGTERM ends the process)."""
    stop = threading.Event()

    def first(number: int, _frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        logger.info("%s: stopping", signal.Signals(number).name)

    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, first)
    return stop


def _remove(settings: Settings) -> None:
    """Delete the application (its replicas drain), waiting at most as long as they may.

    Ray may be gone already (a signal sent to the whole process group reaches Ray's own
    processes too); then nothing is left to delete, and the wait ends at its bound.
    """
    deleting = threading.Thread(
        target=serve.delete, args=(DEPLOYMENT_NAME,), name="whisperd-ray-delete", daemon=True
    )
    deleting.start()
    deleting.join(settings.shutdown_timeout_s + _DELETE_GRACE_S)
    if deleting.is_alive():
        logger.warning("Ray did not confirm that whisperd was removed; stopping anyway")


def run_on_ray(settings: Settings) -> None:
    """Serve whisperd on Ray Serve until SIGTERM or SIGINT, then remove it (each replica
    drains: work in flight gets ``shutdown_timeout_s``).

    Raises:
        StartupError: for settings that cannot work across replicas, a port in use (a Ray of
            this machine), replicas that do not fit the cluster (0 GPUs where each needs one),
            or a deployment that failed.
        ModelError: if the default model cannot be had (checked before Ray starts).
        JobStoreUnavailableError: if jobs are on and their database cannot be used.
    """
    check_ray_settings(settings)
    check_default_model(settings)
    check_jobs(settings)
    if settings.ray_address is None:
        check_port_free(settings.host, settings.port)
    start_ray(settings)
    stop = _stop_on_signals()
    try:
        deploy(settings)
        logger.info(
            "whisperd on Ray Serve: http://%s:%d (%s)",
            settings.host,
            settings.port,
            _replicas(settings),
        )
        while not stop.wait(1.0):
            pass
        logger.info("Stopping: the replicas drain, then whisperd is removed from Ray")
        _remove(settings)
    finally:
        ray.shutdown()  # stops the processes of a Ray this process started


def _replicas(settings: Settings) -> str:
    if settings.max_replicas is None:
        return f"{settings.replicas} replica(s)"
    return f"{settings.replicas} to {settings.max_replicas} replicas"

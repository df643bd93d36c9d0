"""Whether a Ray cluster can place whisperd's replicas, checked before deploying: Serve would
otherwise wait for the resources forever (a hang, not an error)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from whisperd.errors import StartupError

if TYPE_CHECKING:
    from whisperd.config import Settings

__all__ = ["check_placement", "cluster_nodes"]

NodeResources = Mapping[str, float]
"""One node's resources as Ray counts them: ``{"CPU": 16.0, "GPU": 2.0, ...}``."""


def cluster_nodes() -> list[NodeResources]:
    """The resources of every live node of the Ray cluster this process is connected to."""
    import ray

    nodes = ray.nodes()  # type: ignore[no-untyped-call]
    return [node["Resources"] for node in nodes if node.get("Alive")]


def check_placement(settings: Settings, nodes: Sequence[NodeResources]) -> None:
    """Check that one replica fits on some node and that the (fewest) replicas fit together.

    Args:
        settings: ``replicas``, ``replica_gpus`` and ``replica_cpus`` are read.
        nodes: Each live node's resources (:func:`cluster_nodes`).

    Raises:
        StartupError: naming the flag and what the cluster has, for GPUs and CPU cores.
    """
    for resource, each, flag in (
        ("GPU", settings.replica_gpus, "--replica-gpus"),
        ("CPU", settings.replica_cpus, "--replica-cpus"),
    ):
        if each == 0:
            continue
        unit = "GPU(s)" if resource == "GPU" else "CPU core(s)"
        per_node = [float(node.get(resource, 0.0)) for node in nodes]
        largest = max(per_node, default=0.0)
        if largest < each:
            raise StartupError(
                f"Each replica needs {each:g} {unit} ({flag}), but no node of the Ray cluster "
                f"has that many (the most on one node: {largest:g})."
            )
        fitting = sum(int(available // each) for available in per_node)
        if fitting < settings.replicas:
            raise StartupError(
                f"{settings.replicas} replicas of {each:g} {unit} ({flag}) do not fit: the Ray "
                f"cluster has room for {fitting} ({sum(per_node):g} {unit} in all)."
            )

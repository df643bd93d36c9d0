"""``/metrics`` of a replica: every sample of the app's registry labelled with the replica.

Through Ray's proxy each scrape is answered by one replica; the ``replica`` label keeps the
series of different replicas apart instead of mixing their counters.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

__all__ = ["label_metrics"]

REPLICA_LABEL = "replica"
"""The label every sample of a replica's ``/metrics`` carries."""


class _ReplicaLabelled(Collector):
    """Everything ``source`` collects, with ``replica="<name>"`` added to each sample."""

    def __init__(self, source: CollectorRegistry, name: str) -> None:
        self._source = source
        self._name = name

    def collect(self) -> Iterator[Metric]:
        for family in self._source.collect():
            labelled = Metric(family.name, family.documentation, family.type, family.unit)
            for sample in family.samples:
                labelled.add_sample(
                    sample.name,
                    {**sample.labels, REPLICA_LABEL: self._name},
                    sample.value,
                    sample.timestamp,
                    sample.exemplar,
                )
            yield labelled


def label_metrics(app: FastAPI, name: str) -> None:
    """Serve ``app``'s metrics (``app.state.metrics_registry``, set by ``create_app``) with the
    label ``replica=name`` on every sample; the metrics themselves stay where they are."""
    labelled = CollectorRegistry(auto_describe=False)
    labelled.register(_ReplicaLabelled(app.state.metrics_registry, name))
    app.state.metrics_registry = labelled

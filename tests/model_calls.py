"""Counting a service's model calls, from its batch-size metric."""

from __future__ import annotations

from whisperd.service import TranscriptionService


def encodes(service: TranscriptionService) -> float:
    """Encoder calls the service's model has made so far."""
    for metric in service.metrics.batch_size.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels.get("kind") == "encode":
                return sample.value
    return 0.0

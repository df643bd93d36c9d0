"""What the service has done and holds now, as Prometheus metrics (``prometheus_client``).

:class:`ServiceMetrics` is one service's set of instruments. It is a Prometheus *collector*,
registered by the app on its own ``CollectorRegistry`` (never the library's global one), so
every app and every test has its own counts. Two kinds of metric live here:

- counted as things happen (the service, the schedulers and the job runner call the
  ``record_*`` methods): audio transcribed, real-time factors, failures, batch sizes and
  waits, stream final latencies, model load times, jobs;
- read when scraped (:meth:`ServiceMetrics.watch`): requests in flight and waiting, queued
  audio, open streams, loaded models, admission rejections.

Every label takes values from a fixed set (a priority class, a failure reason, a model-call
kind, a job state), so no client input can grow the number of series; the loaded models'
names are the one label from configuration, bounded by the models a server holds at once.
Names follow Prometheus' conventions (``_total`` counters, base units: seconds).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from whisperd.errors import (
    AudioError,
    CancelledError,
    InvalidOptionError,
    ModelError,
    TranscriptionError,
    UrlError,
)

if TYPE_CHECKING:
    from prometheus_client.metrics import MetricWrapperBase
    from prometheus_client.metrics_core import Metric

    from whisperd.engine.base import Engine, ModelInfo
    from whisperd.engine.hub import ResolvedModel
    from whisperd.engine.manager import Loader
    from whisperd.scheduler.admission import Admission
    from whisperd.scheduler.batcher import Priority

__all__ = ["FAILURE_REASONS", "REJECTION_REASONS", "ServiceMetrics", "failure_reason"]

FAILURE_REASONS: Final = ("audio", "url", "options", "model", "transcription", "cancelled")
"""The ``reason`` label of ``whisperd_transcription_failures_total``."""

REJECTION_REASONS: Final = ("requests", "wait", "audio", "streams", "decoded_audio")
"""The ``reason`` label of ``whisperd_admission_rejections_total``: every request slot taken,
the estimated wait over its bound, the queued audio budget, every stream slot taken, the
decoded-audio memory budget (:mod:`whisperd.scheduler.admission`,
:mod:`whisperd.service.decoding_budget`)."""

_FAILURES: Final[tuple[tuple[type[BaseException], str], ...]] = (
    (asyncio.CancelledError, "cancelled"),  # the client went away
    (AudioError, "audio"),
    (UrlError, "url"),
    (InvalidOptionError, "options"),
    (ModelError, "model"),
    (CancelledError, "cancelled"),
    (TranscriptionError, "transcription"),
)

_RTF_BUCKETS: Final = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, float("inf"))
"""Real-time factor (processing seconds per audio second): below 1 is faster than real time."""
_BATCH_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, float("inf"))
_WAIT_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf")
)  # fmt: skip
_LATENCY_BUCKETS: Final = (
    0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, float("inf")
)  # fmt: skip
_LOAD_BUCKETS: Final = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, float("inf"))


def failure_reason(error: BaseException) -> str | None:
    """The ``reason`` label of a failed transcription, or None for what is not a failure of
    the transcription (a capacity refusal is an admission rejection, anything else a 500)."""
    for kind, reason in _FAILURES:
        if isinstance(error, kind):
            return reason
    return None


@dataclass(frozen=True, slots=True)
class _Watched:
    """What a scrape reads: the service's admission, loaded models and decoded-audio refusals."""

    admission: Admission
    loaded: Callable[[], Iterable[ModelInfo]]
    decoded_audio_rejections: Callable[[], int]


class ServiceMetrics(Collector):
    """One service's Prometheus instruments (see the module's docstring for the names).

    Safe to record from any thread. Register it on a ``CollectorRegistry`` to expose it.
    """

    def __init__(self) -> None:
        """Create the instruments, registered nowhere (``registry=None``)."""
        self.audio_seconds = Counter(
            "whisperd_audio_seconds",
            "Seconds of audio transcribed by requests and jobs, by priority class.",
            ["priority"],
            registry=None,
        )
        self.real_time_factor = Histogram(
            "whisperd_real_time_factor",
            "Seconds spent transcribing per second of audio (below 1: faster than real time).",
            ["priority"],
            buckets=_RTF_BUCKETS,
            registry=None,
        )
        self.failures = Counter(
            "whisperd_transcription_failures",
            "Transcriptions that failed, by reason: "
            + ", ".join(FAILURE_REASONS)
            + " (capacity refusals are admission rejections).",
            ["reason"],
            registry=None,
        )
        self.batch_size = Histogram(
            "whisperd_batch_size",
            "Request calls merged into one model call, by kind of call.",
            ["kind"],
            buckets=_BATCH_BUCKETS,
            registry=None,
        )
        self.batch_wait = Histogram(
            "whisperd_batch_wait_seconds",
            "How long the oldest call of a model call waited in the scheduler's queue.",
            ["kind"],
            buckets=_WAIT_BUCKETS,
            registry=None,
        )
        self.stream_final_latency = Histogram(
            "whisperd_stream_final_latency_seconds",
            "Seconds from asking for a stream utterance's final to its transcript (queue, decode).",
            buckets=_LATENCY_BUCKETS,
            registry=None,
        )
        self.model_load = Histogram(
            "whisperd_model_load_seconds",
            "Seconds to load a model (resolving and reading the weights; downloads apart).",
            buckets=_LOAD_BUCKETS,
            registry=None,
        )
        self.jobs_submitted = Counter(
            "whisperd_jobs_submitted", "Durable jobs accepted (new, not idempotent repeats).",
            registry=None,
        )  # fmt: skip
        self.jobs_finished = Counter(
            "whisperd_jobs_finished",
            "Durable jobs that ended, by state (succeeded, failed, cancelled).",
            ["state"],
            registry=None,
        )
        self.jobs_running = Gauge(
            "whisperd_jobs_running", "Durable jobs running on this server now.", registry=None
        )
        self._instruments: tuple[MetricWrapperBase, ...] = (
            self.audio_seconds,
            self.real_time_factor,
            self.failures,
            self.batch_size,
            self.batch_wait,
            self.stream_final_latency,
            self.model_load,
            self.jobs_submitted,
            self.jobs_finished,
            self.jobs_running,
        )
        self._lock = threading.Lock()
        self._watched: _Watched | None = None
        for reason in FAILURE_REASONS:
            self.failures.labels(reason)  # every reason shows, at 0, from the start

    def watch(
        self,
        admission: Admission,
        loaded: Callable[[], Iterable[ModelInfo]],
        decoded_audio_rejections: Callable[[], int],
    ) -> None:
        """Read the gauges of a scrape from ``admission`` (event-loop counters, read without
        changing them), ``loaded`` (the loaded models) and ``decoded_audio_rejections``."""
        with self._lock:
            self._watched = _Watched(admission, loaded, decoded_audio_rejections)

    def record_transcribed(self, priority: Priority, audio_s: float, elapsed_s: float) -> None:
        """Count ``audio_s`` seconds of audio transcribed in ``elapsed_s`` seconds."""
        label = priority.name.lower()
        self.audio_seconds.labels(label).inc(audio_s)
        if audio_s > 0:
            self.real_time_factor.labels(label).observe(elapsed_s / audio_s)

    def record_failure(self, error: BaseException) -> None:
        """Count a failed transcription, if ``error`` is one (see :func:`failure_reason`)."""
        reason = failure_reason(error)
        if reason is not None:
            self.failures.labels(reason).inc()

    def record_batch(self, kind: str, calls: int, waited_s: float) -> None:
        """A :data:`~whisperd.scheduler.batcher.BatchObserver`: one model call of ``kind``
        merging ``calls`` request calls, the oldest of which waited ``waited_s`` seconds."""
        self.batch_size.labels(kind).observe(calls)
        self.batch_wait.labels(kind).observe(waited_s)

    def timed(self, loader: Loader) -> Loader:
        """``loader``, timing each load it makes in ``whisperd_model_load_seconds``."""

        def load(model: ResolvedModel, device: str, compute_type: str) -> Engine:
            started = time.monotonic()
            engine = loader(model, device, compute_type)
            self.model_load.observe(time.monotonic() - started)
            return engine

        return load

    def collect(self) -> Iterator[Metric]:
        """Every metric, the gauges read now (called by the registry on each scrape)."""
        for instrument in self._instruments:
            yield from instrument.collect()
        with self._lock:
            watched = self._watched
        if watched is not None:
            yield from _state(watched)


def _state(watched: _Watched) -> Iterator[Metric]:
    """The metrics read from the service's state at scrape time."""
    admission = watched.admission
    yield GaugeMetricFamily(
        "whisperd_requests_in_flight",
        "Transcription requests admitted and not finished (running or waiting).",
        value=admission.in_flight,
    )
    yield GaugeMetricFamily(
        "whisperd_requests_waiting",
        "Admitted requests not yet running on the model (decoding audio or queued).",
        value=admission.waiting,
    )
    yield GaugeMetricFamily(
        "whisperd_queued_audio_seconds",
        "Seconds of audio admitted and not yet transcribed (requests and stream decodes).",
        value=admission.audio_seconds,
    )
    yield GaugeMetricFamily(
        "whisperd_streams_active", "Real-time streams open now.", value=admission.streams
    )
    rejections = CounterMetricFamily(
        "whisperd_admission_rejections",
        "New work refused at capacity (503 or close code 1013), by reason: "
        + ", ".join(REJECTION_REASONS)
        + ".",
        labels=["reason"],
    )
    counts = dict(admission.rejections)
    counts["decoded_audio"] = watched.decoded_audio_rejections()
    for reason in REJECTION_REASONS:
        rejections.add_metric([reason], counts.get(reason, 0))
    yield rejections
    models = list(watched.loaded())
    yield GaugeMetricFamily("whisperd_models_loaded", "Models loaded now.", value=len(models))
    info = GaugeMetricFamily(
        "whisperd_model_loaded_info",
        "One series per loaded model, valued 1: its name, device and compute type.",
        labels=["model", "device", "compute_type"],
    )
    for model in models:
        info.add_metric([model.name, model.device, model.compute_type], 1)
    yield info

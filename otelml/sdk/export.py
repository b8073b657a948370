"""Send otelml's metrics: a background thread collects every interval and exports with the OTLP exporters.

The standard OpenTelemetry exporters do the transport (endpoint, headers, TLS, compression and timeouts from the
``OTEL_EXPORTER_OTLP_*`` variables, retries with back-off). otelml hands them a ready protobuf request, because it
encodes its histograms itself (see ``otelml.sdk.encode``). A request that still fails is kept and sent again at the next
interval, oldest first; past ``max_pending`` requests the oldest is dropped, counted and logged. The caller of a
predict function never waits for any of this.
"""

from __future__ import annotations

import math
import os
import random
import threading
import time
from collections import deque

from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as _GrpcExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as _HttpExporter
from opentelemetry.sdk.metrics.export import MetricExportResult

from . import encode
from .health import EXPORT_FAILED, INTERNAL_ERROR, Health
from .recorder import Registry


class _GrpcRequestExporter(_GrpcExporter):
    """The SDK's gRPC metric exporter, fed an encoded ``ExportMetricsServiceRequest``."""

    def _translate_data(self, data):
        return data

    def _count_data(self, data):
        return _points(data)


class _HttpRequestExporter(_HttpExporter):
    """The SDK's HTTP/protobuf metric exporter, fed an encoded ``ExportMetricsServiceRequest``."""

    def export(self, metrics_data, timeout_millis=None, **kwargs):
        if self._shutdown:
            return MetricExportResult.FAILURE
        return self._export_batch(metrics_data)


def _points(request) -> int:
    total = 0
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                total += len(getattr(m, m.WhichOneof("data")).data_points) if m.WhichOneof("data") else 0
    return total


def otlp_exporter(
    grpc_class,
    http_class,
    http_path: str,
    protocol: str,
    endpoint: str | None,
    headers: dict | None,
    timeout_s: float | None,
):
    """An exporter of ``grpc_class`` or ``http_class`` for ``protocol`` (``grpc``, ``http/protobuf``);
    ``endpoint`` is the base endpoint (``http_path`` such as ``/v1/metrics`` is appended for HTTP); ``None`` values
    come from the ``OTEL_EXPORTER_OTLP_*`` environment, as the exporters read it."""
    kwargs = {}
    if headers:
        kwargs["headers"] = headers
    if timeout_s is not None:
        kwargs["timeout"] = timeout_s
    if protocol == "grpc":
        if endpoint:
            kwargs["endpoint"] = endpoint
            if endpoint.startswith("http://"):
                kwargs["insecure"] = True
        return grpc_class(**kwargs)
    if protocol in ("http/protobuf", "http"):
        if endpoint:
            kwargs["endpoint"] = endpoint.rstrip("/") + http_path
        return http_class(**kwargs)
    raise ValueError(f"unsupported OTLP protocol {protocol!r}; use 'grpc' or 'http/protobuf'")


def metric_exporter(protocol: str, endpoint: str | None, headers: dict | None, timeout_s: float | None):
    """An OTLP metric exporter that takes encoded requests."""
    return otlp_exporter(
        _GrpcRequestExporter, _HttpRequestExporter, "/v1/metrics", protocol, endpoint, headers, timeout_s
    )


class MetricsPump:
    """Collects a registry every ``interval_s`` seconds and exports it, on a daemon thread."""

    def __init__(
        self,
        registry: Registry,
        exporter_factory,
        resource_attributes: dict,
        scope_version: str,
        interval_s: float,
        health: Health | None = None,
        max_pending: int = 60,
    ):
        self.registry = registry
        self.health = health or registry.health
        self._flush_guard = self.health.guard(INTERNAL_ERROR, "metrics export step failed: ", exc_info=True)
        self._exporter_factory = exporter_factory
        self.exporter = exporter_factory()
        self.resource_attributes = resource_attributes
        self.scope_version = scope_version
        self.interval_s = interval_s
        self._pending: deque = deque()
        self._max_pending = max_pending
        self._export_lock = threading.Lock()
        self._stop = threading.Event()
        self._last_ns = time.time_ns()
        self._thread: threading.Thread | None = None
        self._phase = random.uniform(0.25, 0.75)  # where in each interval this process collects; see next_export_delay
        self.exported = 0  # requests delivered, for tests and status

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="otelml-metrics", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(next_export_delay(time.time(), self.interval_s, self._phase)):
            self.flush()

    def flush(self) -> bool:
        """Collect now and export, with anything still pending; ``True`` when nothing is left undelivered."""
        with self._export_lock:
            with self._flush_guard:  # never let the thread die
                self._collect()
                return self._deliver()
            return False

    def _collect(self) -> None:
        now = time.time_ns()
        snapshots = self.registry.collect()
        dropped = self.health.take_pending()
        window, self._last_ns = (self._last_ns, now), now
        if snapshots or dropped:
            request = encode.encode(self.resource_attributes, self.scope_version, snapshots, dropped, window)
            self._pending.append(request)
        while len(self._pending) > self._max_pending:
            lost = self._pending.popleft()
            self.health.drop(
                EXPORT_FAILED,
                f"metrics backend unreachable for {self._max_pending} intervals; oldest interval dropped",
                count=_points(lost),
            )

    def _deliver(self) -> bool:
        while self._pending:
            result = self.exporter.export(self._pending[0])
            if result != MetricExportResult.SUCCESS:
                return False
            self._pending.popleft()
            self.exported += 1
        return True

    def shutdown(self) -> bool:
        """Stop the thread, export what is left once, and shut the exporter down."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.interval_s + 30)
        delivered = self.flush()
        self.abandon("the backend did not take them at shutdown")
        self.exporter.shutdown()
        return delivered

    def abandon(self, reason: str) -> None:
        """Give up on what is still pending (at shutdown, or when shutdown ran out of time): counted as dropped,
        once."""
        pending, self._pending = self._pending, deque()
        if pending:
            self.health.drop(
                EXPORT_FAILED, f"{len(pending)} metric requests undelivered: {reason}",
                count=sum(_points(r) for r in pending),
            )  # fmt: skip

    def after_fork(self) -> None:
        """In a forked child: a new exporter (connections are not shared across fork), nothing pending, a new thread."""
        self.exporter = self._exporter_factory()
        self._export_lock = threading.Lock()
        self._pending = deque()
        self._last_ns = time.time_ns()
        if self._thread is not None:
            self.start()


def next_export_delay(now_s: float, interval_s: float, phase: float) -> float:
    """Seconds until the next collection: at ``phase`` (a share of the interval) past a multiple of the interval on
    the wall clock (at least a hundredth of an interval away, so a wake-up a moment early does not collect twice).

    A fixed cadence, not ``interval`` after the last export ended: waiting a full interval after each export makes the
    period an interval plus the export's own time, so the collections drift through the analyzer's windows and, with an
    interval as long as the window, every so often one window gets no export and the next gets two. On the wall-clock
    grid, an interval that divides the window gives every window the same number of exports, each ending away from
    the window's edges (a phase between a quarter and three quarters of an interval, random per process so replicas do
    not all send at once); a collection held up past its time is followed by the next one on the grid, not by a burst.

    Example:
        >>> next_export_delay(100.2, 1.0, 0.5), next_export_delay(100.499, 1.0, 0.5), next_export_delay(100.0, 10.0, 0.5)
        (0.3, 1.001, 5.0)
    """
    target = (math.floor(now_s / interval_s) + phase) * interval_s
    while target - now_s < interval_s / 100:
        target += interval_s
    return round(target - now_s, 9)


def env_interval_s(default_s: float) -> float:
    """``OTEL_METRIC_EXPORT_INTERVAL`` (milliseconds) in seconds, or the default."""
    raw = os.environ.get("OTEL_METRIC_EXPORT_INTERVAL")
    try:
        return float(raw) / 1000.0 if raw else default_s
    except ValueError:
        return default_s

"""The analyzer's own health as OpenTelemetry metrics, read from its counters when a reader collects.

Exported with OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``) is set in the
analyzer's environment; ``GET /api/health`` shows the same numbers either way.
"""

from __future__ import annotations

import os

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from .. import semconv
from .._version import __version__

OUTCOMES = ("received", "accepted", "rejected", "ignored", "late", "stale")


def instrument(analyzer, provider: MeterProvider) -> None:
    """Register observable instruments for ``analyzer`` on ``provider``."""
    meter = provider.get_meter(semconv.ANALYZER_SCOPE_NAME, __version__)

    def points(options: CallbackOptions):
        counts = analyzer.health()["points"]
        return [Observation(counts.get(o, 0), {semconv.ANALYZER_OUTCOME: o}) for o in OUTCOMES]

    def single(read):
        return lambda options: [Observation(read())]

    meter.create_observable_counter(semconv.METRIC_ANALYZER_POINTS, [points], unit=semconv.UNIT_ANALYZER_POINTS,
                                    description="Data points received, by what became of them.")
    meter.create_observable_counter(
        semconv.METRIC_ANALYZER_SPANS, [single(lambda: analyzer.health()["points"].get("spans", 0))],
        unit=semconv.UNIT_ANALYZER_SPANS, description="Spans received.")
    meter.create_observable_counter(
        semconv.METRIC_ANALYZER_WINDOWS_CLOSED, [single(lambda: analyzer.health()["windows_closed"])],
        unit=semconv.UNIT_ANALYZER_WINDOWS_CLOSED, description="Windows closed.")
    meter.create_observable_counter(
        semconv.METRIC_ANALYZER_REQUESTS_REFUSED, [single(lambda: analyzer.health()["overloaded"])],
        unit=semconv.UNIT_ANALYZER_REQUESTS_REFUSED, description="Requests refused because the analyzer was busy.")
    meter.create_observable_counter(
        semconv.METRIC_ANALYZER_STORE_TIME, [single(lambda: analyzer.health()["store_seconds"])],
        unit=semconv.UNIT_ANALYZER_STORE_TIME, description="Time spent writing and reading the store.")
    meter.create_observable_gauge(
        semconv.METRIC_ANALYZER_MODELS, [single(lambda: analyzer.health()["models"])],
        unit=semconv.UNIT_ANALYZER_MODELS, description="Model versions known.")


def start(analyzer) -> MeterProvider | None:
    """A meter provider exporting the analyzer's health over OTLP, if the environment names an endpoint."""
    if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")):
        return None
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "otelml-analyzer")})
    provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())], resource=resource)
    instrument(analyzer, provider)
    return provider

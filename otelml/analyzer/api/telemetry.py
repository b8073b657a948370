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

from ... import semconv
from ..._version import __version__

OUTCOMES = ("received", "accepted", "rejected", "ignored", "late", "stale")
DRIFT_DETECTORS = ("input drift", "output drift", "prediction drift", "label mix", "category drift")


def instrument(analyzer, provider: MeterProvider) -> None:
    """Register observable instruments for ``analyzer`` on ``provider``."""
    meter = provider.get_meter(semconv.ANALYZER_SCOPE_NAME, __version__)

    def points(options: CallbackOptions):
        counts = analyzer.health()["points"]
        return [Observation(counts.get(o, 0), {semconv.ANALYZER_OUTCOME: o}) for o in OUTCOMES]

    meter.create_observable_counter(
        semconv.METRIC_ANALYZER_POINTS,
        [points],
        unit=semconv.UNIT_ANALYZER_POINTS,
        description="Data points received, by what became of them.",
    )
    singles = [
        (
            meter.create_observable_counter,
            semconv.METRIC_ANALYZER_SPANS,
            semconv.UNIT_ANALYZER_SPANS,
            "Spans received.",
            lambda h: h["points"].get("spans", 0),
        ),
        (
            meter.create_observable_counter,
            semconv.METRIC_ANALYZER_WINDOWS_CLOSED,
            semconv.UNIT_ANALYZER_WINDOWS_CLOSED,
            "Windows closed.",
            lambda h: h["windows_closed"],
        ),
        (
            meter.create_observable_counter,
            semconv.METRIC_ANALYZER_REQUESTS_REFUSED,
            semconv.UNIT_ANALYZER_REQUESTS_REFUSED,
            "Requests refused because the analyzer was busy.",
            lambda h: h["overloaded"],
        ),
        (
            meter.create_observable_counter,
            semconv.METRIC_ANALYZER_STORE_TIME,
            semconv.UNIT_ANALYZER_STORE_TIME,
            "Time spent writing and reading the store.",
            lambda h: h["store_seconds"],
        ),
        (
            meter.create_observable_gauge,
            semconv.METRIC_ANALYZER_MODELS,
            semconv.UNIT_ANALYZER_MODELS,
            "Model versions known.",
            lambda h: h["models"],
        ),
    ]

    def drift_scores(options: CallbackOptions):
        return [
            Observation(
                summary["detectors"][detector]["value"],
                {
                    semconv.MODEL_NAME: summary["model"],
                    semconv.MODEL_VERSION: summary["version"],
                    semconv.ANALYZER_DETECTOR: detector,
                },
            )
            for summary in analyzer.models()
            for detector in DRIFT_DETECTORS
            if detector in summary["detectors"]
        ]

    meter.create_observable_gauge(
        semconv.METRIC_ANALYZER_DRIFT_SCORE,
        [drift_scores],
        unit=semconv.UNIT_ANALYZER_DRIFT_SCORE,
        description="Latest log statistic of each drift detector per model version; it alarms at ln A.",
    )
    for create, name, unit, description, read in singles:
        create(
            name,
            [lambda options, read=read: [Observation(read(analyzer.health()))]],
            unit=unit,
            description=description,
        )


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

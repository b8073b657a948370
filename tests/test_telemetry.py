"""The analyzer's own OpenTelemetry metrics, read through an in-memory reader."""

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otelml import semconv
from otelml.analyzer.api import telemetry


class Analyzer:
    """What the instruments read: ``health()`` and ``models()`` as the service returns them."""

    def health(self):
        return {"points": {"received": 5}, "windows_closed": 2, "overloaded": 0, "store_seconds": 0.1, "models": 2}

    def models(self):
        return [
            {"model": "churn", "version": "1", "detectors": {"input drift": {"value": 17.5}, "latency": {"value": 1}}},
            {"model": "fraud", "version": "7", "detectors": {}},
        ]


def test_drift_scores_are_a_gauge_per_model_version_and_detector():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    telemetry.instrument(Analyzer(), provider)
    metrics = {
        m.name: m
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if sm.scope.name == semconv.ANALYZER_SCOPE_NAME
    }
    provider.shutdown()
    [point] = metrics[semconv.METRIC_ANALYZER_DRIFT_SCORE].data.data_points
    assert point.value == 17.5
    assert dict(point.attributes) == {
        semconv.MODEL_NAME: "churn",
        semconv.MODEL_VERSION: "1",
        semconv.ANALYZER_DETECTOR: "input drift",
    }
    assert metrics[semconv.METRIC_ANALYZER_DRIFT_SCORE].unit == semconv.UNIT_ANALYZER_DRIFT_SCORE
    assert metrics[semconv.METRIC_ANALYZER_MODELS].data.data_points[0].value == 2

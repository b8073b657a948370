"""End to end over loopback: the real OpenTelemetry OTLP exporters (gRPC and HTTP) to a real receiver, asserting
on the decoded wire data."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import otelml
from otelml import semconv
from otelml.testing import OTLPSink, attributes, free_port

ROWS_SINGLE, BATCHES, BATCH_ROWS = 300, 4, 1500


def send_traffic():
    rng = np.random.default_rng(0)

    @otelml.monitor(model="credit", version="2", feature_names=["income", "debt", "age"], classes=["deny", "grant"])
    def score(x):
        x = np.atleast_2d(x)
        p = 1 / (1 + np.exp(-(x[:, 0] - x[:, 1])))
        return np.column_stack([1 - p, p])

    for _ in range(ROWS_SINGLE):
        score(rng.normal(size=3))
    for _ in range(BATCHES):
        batch = rng.normal(size=(BATCH_ROWS, 3))
        batch[:, 2] -= 5.0  # negative values travel too (the SDK's record() would drop them)
        score(batch)
    otelml.record_outcome("grant", model="credit", version="2", predicted="deny")


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_spans_histograms_and_exemplars_arrive_intact(sink, protocol):
    endpoint = sink.grpc_endpoint if protocol == "grpc" else sink.http_endpoint
    otelml.configure(endpoint=endpoint, protocol=protocol, service_name="scoring-api", set_global_tracer_provider=False)
    send_traffic()
    assert otelml.shutdown()
    transport = "grpc" if protocol == "grpc" else "http"
    assert sink.transports[transport] >= 2 and sink.transports[{"grpc": "http", "http": "grpc"}[transport]] == 0

    calls, rows = ROWS_SINGLE + BATCHES, ROWS_SINGLE + BATCHES * BATCH_ROWS
    spans = sink.spans()
    assert len(spans) == calls and {s.name for s in spans} == {"predict credit"}
    span_traces = {s.trace_id for s in spans}

    features = sink.metric_points(semconv.METRIC_FEATURE_VALUE)
    by_feature = {}
    for resource, attrs, point in features:
        assert resource["service.name"] == "scoring-api"
        assert attrs[semconv.MODEL_NAME] == "credit" and attrs[semconv.MODEL_VERSION] == "2"
        by_feature[attrs[semconv.FEATURE_NAME]] = by_feature.get(attrs[semconv.FEATURE_NAME], 0) + point.count
        assert point.count == point.zero_count + sum(point.positive.bucket_counts) + sum(point.negative.bucket_counts)
        assert point.start_time_unix_nano < point.time_unix_nano
        for exemplar in point.exemplars:
            assert exemplar.trace_id in span_traces
    assert by_feature == {"income": rows, "debt": rows, "age": rows}
    assert any(p.exemplars for _, _, p in features)
    assert any(sum(p.negative.bucket_counts) for _, a, p in features if a[semconv.FEATURE_NAME] == "age")

    assert sum(p.count for _, _, p in sink.metric_points(semconv.METRIC_CONFIDENCE)) == rows
    assert sum(p.count for _, _, p in sink.metric_points(semconv.METRIC_MARGIN)) == rows
    assert sum(p.count for _, _, p in sink.metric_points(semconv.METRIC_DURATION)) == calls
    assert sum(p.as_int for _, _, p in sink.metric_points(semconv.METRIC_CALLS)) == calls
    assert sum(p.as_int for _, _, p in sink.metric_points(semconv.METRIC_ROWS)) == rows
    labels = {a[semconv.PREDICTION_LABEL]: p.as_int for _, a, p in sink.metric_points(semconv.METRIC_PREDICTIONS)}
    assert set(labels) == {"deny", "grant"} and sum(labels.values()) == rows
    outcomes = sink.metric_points(semconv.METRIC_OUTCOMES)
    assert [(a[semconv.PREDICTION_LABEL], a[semconv.TRUE_LABEL], p.as_int) for _, a, p in outcomes] == [
        ("deny", "grant", 1)
    ]


def test_a_wide_range_feature_travels_with_its_zero_threshold(sink):
    otelml.configure(endpoint=sink.http_endpoint, create_tracer_provider=False)
    rng = np.random.default_rng(5)
    x = rng.normal(1000.0, 1.0, size=(5000, 1))
    x[::100] = 1e-9

    @otelml.monitor(model="wide", version="1", task="regression")
    def predict(rows):
        return rows[:, 0]

    predict(x)
    assert otelml.shutdown()
    [(_, _, point)] = sink.metric_points(semconv.METRIC_FEATURE_VALUE)
    assert point.zero_count == 50 and 0 < point.zero_threshold < 1000 and point.scale >= 10
    assert sum(p.count for _, _, p in sink.metric_points(semconv.METRIC_PREDICTION_VALUE)) == 5000


def test_a_dead_collector_costs_the_caller_nothing_and_nothing_is_lost_once_it_is_back(dropped):
    port = free_port()
    otelml.configure(
        endpoint=f"http://127.0.0.1:{port}", create_tracer_provider=False, export_interval_s=3600, timeout_s=0.5
    )
    predict = otelml.monitor(model="m", version="1")(lambda x: np.full((len(x), 2), 0.5))
    results = [predict(np.ones((10, 3))) for _ in range(20)]
    assert all(r.shape == (10, 2) for r in results)
    assert not otelml.force_flush()  # nobody is listening: kept for the next interval
    predict(np.ones((5, 3)))
    with OTLPSink(http_port=port) as sink:
        assert otelml.shutdown()
        rows = sum(p.as_int for _, _, p in sink.metric_points(semconv.METRIC_ROWS))
    assert rows == 205
    assert "export_failed" not in dropped()


def test_configuration_from_opentelemetry_environment_variables_alone(sink):
    """An application that only calls otelml.configure(): endpoint, protocol and resource come from the env."""
    program = textwrap.dedent(
        """
        import numpy as np, otelml
        otelml.configure()
        predict = otelml.monitor(model="env", version="1")(lambda x: np.full((len(x), 2), 0.5))
        predict(np.ones((7, 2)))
        raise SystemExit(0 if otelml.shutdown() else 1)
        """
    )
    env = dict(
        os.environ,
        OTEL_SERVICE_NAME="from-env",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test,team=risk",
        OTEL_EXPORTER_OTLP_ENDPOINT=sink.grpc_endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_INSECURE="true",
    )
    subprocess.run([sys.executable, "-c", program], env=env, check=True, timeout=60)
    assert sink.transports == {"grpc": 2, "http": 0}
    [(resource, _, point)] = sink.metric_points(semconv.METRIC_ROWS)
    assert point.as_int == 7
    assert resource["service.name"] == "from-env" and resource["team"] == "risk"
    [span] = sink.spans()
    [rs] = sink.requests["traces"][0].resource_spans
    assert attributes(rs.resource.attributes)["deployment.environment"] == "test" and span.name == "predict env"


def test_an_application_tracer_provider_is_used_not_replaced(sink, spans):
    otelml.configure(endpoint=sink.http_endpoint, tracer_provider=spans[0], service_name="app")
    otelml.monitor(model="m", version="1")(lambda x: np.zeros(len(x)))(np.ones((2, 2)))
    assert otelml.shutdown()
    assert len(spans[1].get_finished_spans()) == 1 and sink.spans() == []
    assert sum(p.as_int for _, _, p in sink.metric_points(semconv.METRIC_ROWS)) == 2


def test_configure_is_idempotent_and_rejects_unknown_settings():
    first = otelml.configure(export_metrics=False, create_tracer_provider=False)
    assert otelml.configure(export_metrics=False, create_tracer_provider=False) is first
    with pytest.raises(TypeError, match="unknown settings"):
        otelml.configure(endpoint_url="x")
    assert otelml.shutdown()

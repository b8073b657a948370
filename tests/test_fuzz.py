"""The analyzer under fuzzing (bench/fuzzing.py, as bench/fuzz.py runs it for longer): a real analyzer process gets
seeded mutations of real SDK requests over OTLP/gRPC and OTLP/HTTP (protobuf, JSON, gzip) and must answer each with
2xx, 4xx or a retryable overload, keep its RSS bounded, go on accepting a valid sender's data and closing its windows,
and come back after kill -9; plus the regressions the fuzzing found."""

import json
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

from otelml import semconv
from otelml.analyzer.ingest.decode import decode_metrics_request
from otelml.analyzer.ingest.histograms import MAX_COUNT
from otelml.histogram import merge_all

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import fuzzing  # noqa: E402


def _request(*metrics):
    return metrics_pb.ExportMetricsServiceRequest(
        resource_metrics=[metrics_pb2.ResourceMetrics(scope_metrics=[metrics_pb2.ScopeMetrics(metrics=list(metrics))])]
    )


def _shapes_request(now):
    """Rows as a valid monotonic sum (7), rows as an explicit histogram, and calls as a non-monotonic sum of -3."""
    attributes = [KeyValue(key=semconv.MODEL_NAME, value=AnyValue(string_value="shapes"))]
    times = {"attributes": attributes, "start_time_unix_nano": now - 10**9, "time_unix_nano": now}
    delta = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
    return _request(
        metrics_pb2.Metric(
            name=semconv.METRIC_ROWS,
            sum=metrics_pb2.Sum(
                aggregation_temporality=delta,
                is_monotonic=True,
                data_points=[metrics_pb2.NumberDataPoint(as_int=7, **times)],
            ),
        ),
        metrics_pb2.Metric(
            name=semconv.METRIC_ROWS,
            histogram=metrics_pb2.Histogram(
                aggregation_temporality=delta,
                data_points=[metrics_pb2.HistogramDataPoint(count=1, bucket_counts=[1], **times)],
            ),
        ),
        metrics_pb2.Metric(
            name=semconv.METRIC_CALLS,
            sum=metrics_pb2.Sum(
                aggregation_temporality=delta, data_points=[metrics_pb2.NumberDataPoint(as_int=-3, **times)]
            ),
        ),
    )


def test_otelml_metrics_of_another_shape_are_rejected_not_a_500(server):
    """Found by the fuzzer: otelml.inference.rows sent as an explicit histogram was added to the row count (TypeError
    after the request was journaled: 500 over HTTP, UNKNOWN over gRPC, for data that was kept), and a call count
    sent as a sum that is not monotonic could go negative. otelml's own metrics have one shape each: others are
    rejected at decode time, the rest of the request is kept."""
    decoded = decode_metrics_request(_shapes_request(time.time_ns()))
    assert [(p.key.metric, p.value) for p in decoded.points] == [(semconv.METRIC_ROWS, 7)]
    assert decoded.rejected == 2 and len(decoded.errors) == 2
    assert "otelml defines otelml.inference.rows as a monotonic sum; this is a histogram" in decoded.errors[0]

    s = server()
    request = urllib.request.Request(
        f"http://127.0.0.1:{s.http.port}/v1/metrics",
        data=_shapes_request(time.time_ns()).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # raised HTTPError 500 before
        reply = metrics_pb.ExportMetricsServiceResponse.FromString(response.read())
    assert reply.partial_success.rejected_data_points == 2
    with urllib.request.urlopen(f"http://127.0.0.1:{s.api.port}/api/models", timeout=30) as response:
        (model,) = json.load(response)["models"]
    assert (model["model"], model["rows"], model["calls"]) == ("shapes", 7, 0)


REQUESTS = 2000


def test_fuzzing_over_both_transports_leaves_the_analyzer_healthy_and_restartable(tmp_path):
    """A bounded, seeded run of bench/fuzz.py's machinery. Made sharp by hand: without the lower bound on bucket
    offsets in decode.index_range, or without the rejection of negative monotonic sums, this test fails."""
    report = fuzzing.run(tmp_path, seed=1, requests=REQUESTS, check_every=REQUESTS // 2, processes=0, threads=4)
    summary = fuzzing.table(report)
    print(summary)
    counts = report.tally.counts
    assert report.tally.requests == REQUESTS, summary
    assert not counts.get("failure") and not counts.get("wedge"), summary  # no 5xx but 503, no INTERNAL/UNKNOWN
    assert counts.get("ok", 0) > REQUESTS // 4 and counts.get("rejected", 0) > REQUESTS // 10, summary
    assert not report.check_errors, summary  # alive, health within its bound, RSS bounded, the canary accepted
    assert report.checks == 3 and report.max_rss_mb < fuzzing.MAX_RSS_MB, summary
    assert not report.slow_health and report.max_health_s < fuzzing.HEALTH_BOUND_S, summary
    assert report.restart_error is None and report.restart_s is not None, summary  # ready after kill -9, accepts data
    # the failures the analyzer isolates (a detector or a window that raised) are counted and logged, not answered:
    # the fuzzing must not cause any (a negative call count once failed the availability detector)
    assert report.health["detector_failures"] == 0 and report.health["window_failures"] == 0, summary
    sent = {family for family, _ in report.tally.families}
    assert {"offsets", "scales", "bucket-lengths", "names", "numbers", "flood"} <= sent, summary
    assert {"json-types", "json-deep", "transport:bomb", "transport:bad-gzip", "flip", "truncate"} <= sent, summary
    assert min(report.tally.transports.get(t, 0) for t in ("grpc", "http")) > REQUESTS // 5, summary


def _feature_request(now, model, features):
    """One delta exponential-histogram point of otelml.feature.value per ``features`` item: a name, a number, or
    None for no name at all."""
    points = []
    for feature in features:
        attributes = [KeyValue(key=semconv.MODEL_NAME, value=AnyValue(string_value=model))]
        if isinstance(feature, str):
            attributes.append(KeyValue(key=semconv.FEATURE_NAME, value=AnyValue(string_value=feature)))
        elif feature is not None:
            attributes.append(KeyValue(key=semconv.FEATURE_NAME, value=AnyValue(int_value=feature)))
        points.append(
            metrics_pb2.ExponentialHistogramDataPoint(
                attributes=attributes,
                start_time_unix_nano=now - 10**8,
                time_unix_nano=now,
                count=40,
                scale=2,
                positive=metrics_pb2.ExponentialHistogramDataPoint.Buckets(offset=0, bucket_counts=[10, 10, 10, 10]),
            )
        )
    histogram = metrics_pb2.ExponentialHistogram(
        aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_DELTA, data_points=points
    )
    return _request(metrics_pb2.Metric(name=semconv.METRIC_FEATURE_VALUE, exponential_histogram=histogram))


def test_feature_points_without_a_string_feature_name_are_rejected_not_a_detector_failure(server):
    """Found by the fuzzer (a byte flip in the attribute key): an otelml.feature.value point without
    otelml.feature.name was kept, and the input drift and range detectors of its model then raised KeyError at
    every window (isolated, but the model went unwatched); one named by a number mixed ints into the feature names."""
    s = server(window=1, lateness=0, warmup=40)
    start = time.time_ns() // 10**9 * 10**9
    post = urllib.request.Request(f"http://127.0.0.1:{s.http.port}/v1/metrics", method="POST")
    post.add_header("Content-Type", "application/x-protobuf")
    rejected = []
    for second in range(4):  # the first window warms up and pins a reference; the others are judged against it
        features = ["x"] if second == 0 else ["x", None, 7]
        body = _feature_request(start + second * 10**9 + 5 * 10**8, "named", features).SerializeToString()
        with urllib.request.urlopen(post, data=body, timeout=30) as response:
            reply = metrics_pb.ExportMetricsServiceResponse.FromString(response.read())
        rejected.append(reply.partial_success.rejected_data_points)
    assert rejected == [0, 2, 2, 2]
    assert s.analyzer.tick(start + 300 * 10**9) > 0  # past the idle timeout: the last window closes too
    health = s.analyzer.health()
    assert health["detector_failures"] == 0 and health["window_failures"] == 0, health
    with urllib.request.urlopen(f"http://127.0.0.1:{s.api.port}/api/models", timeout=30) as response:
        (model,) = json.load(response)["models"]
    assert model["features"] == ["x"] and model["windows_closed"] >= 3


def test_otelml_counters_past_max_count_are_rejected_so_totals_stay_finite(server):
    """Found by the fuzzer: rows sent as the double 1e308, twice, summed to infinity; references built from such
    windows then failed (OverflowError) at every window of the model's next version."""
    now = time.time_ns()
    attributes = [KeyValue(key=semconv.MODEL_NAME, value=AnyValue(string_value="huge"))]
    points = [
        metrics_pb2.NumberDataPoint(
            attributes=attributes, start_time_unix_nano=now - 10**9, time_unix_nano=now, as_double=value
        )
        for value in (1e308, 1e308, 5.0, float(MAX_COUNT))
    ]
    rows = metrics_pb2.Sum(aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_DELTA, is_monotonic=True)
    rows.data_points.extend(points)
    decoded = decode_metrics_request(_request(metrics_pb2.Metric(name=semconv.METRIC_ROWS, sum=rows)))
    assert [p.value for p in decoded.points] == [5.0, MAX_COUNT] and decoded.rejected == 2

    s = server()
    body = _request(metrics_pb2.Metric(name=semconv.METRIC_ROWS, sum=rows)).SerializeToString()
    post = urllib.request.Request(f"http://127.0.0.1:{s.http.port}/v1/metrics", data=body, method="POST")
    post.add_header("Content-Type", "application/x-protobuf")
    urllib.request.urlopen(post, timeout=30).close()
    with urllib.request.urlopen(f"http://127.0.0.1:{s.api.port}/api/models", timeout=30) as response:
        answer = json.loads(response.read(), parse_constant=lambda name: pytest.fail(f"{name} in /api/models"))
    (model,) = answer["models"]
    assert MAX_COUNT <= model["rows"] <= MAX_COUNT + 8  # finite: 5 + MAX_COUNT as a double


def test_histogram_counts_past_max_count_are_rejected_so_merged_counts_never_wrap():
    """Found by the fuzzer: exponential histograms of 2^62 observations were accepted (anything below 2^63 was),
    the reference merged from a few of them wrapped round int64 to a negative count, and the drift detectors of the
    model's next version failed at every window (math domain error)."""

    def request(count):
        point = metrics_pb2.ExponentialHistogramDataPoint(
            attributes=[KeyValue(key=semconv.MODEL_NAME, value=AnyValue(string_value="m"))],
            start_time_unix_nano=1,
            time_unix_nano=2,
            count=count,
            scale=0,
            positive=metrics_pb2.ExponentialHistogramDataPoint.Buckets(offset=1, bucket_counts=[count]),
        )
        histogram = metrics_pb2.ExponentialHistogram(
            aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_DELTA, data_points=[point]
        )
        return _request(metrics_pb2.Metric(name="m", exponential_histogram=histogram))

    assert decode_metrics_request(request(2**62)).rejected == 1
    (kept,) = decode_metrics_request(request(MAX_COUNT)).points
    merged = merge_all([kept.value] * 512)  # more than a window or a reference of real data ever holds
    assert merged.count == 512 * MAX_COUNT and int(merged.positive.sum()) == merged.count

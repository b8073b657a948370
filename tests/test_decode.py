"""The analyzer's OTLP decoder: SDK and otelml round trips, OTLP/JSON, whole-body errors, per-point validation."""

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue, KeyValueList
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource as SDKResource
from opentelemetry.trace import Status, StatusCode

from otelml.analyzer import DecodeError, decode_metrics, decode_traces
from otelml.analyzer.ingest.decode import decode_metrics_request
from otelml.analyzer.ingest.histograms import index_range
from otelml.analyzer.ingest.otlp_json import parse_otlp_json
from otelml.analyzer.ingest.points import Exemplar
from otelml.histogram import MAX_SCALE, MIN_SCALE, ExpHistogram
from otelml.sdk.encode import encode, key_values
from otelml.sdk.outputs import read_outputs
from otelml.sdk.recorder import Exemplar as CallExemplar
from otelml.sdk.recorder import Registry

PROTOBUF, JSON = "application/x-protobuf", "application/json"
DELTA = pb.AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = pb.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
T0, T1 = 1_700_000_000_000_000_000, 1_700_000_010_000_000_000
EXP = "exponential_histogram"
TRACE_ID, SPAN_ID = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"


# --- building requests ------------------------------------------------------------------------------------------------
def metrics_request(*metrics, resource=None, scope="otelml") -> ExportMetricsServiceRequest:
    return ExportMetricsServiceRequest(
        resource_metrics=[
            pb.ResourceMetrics(
                resource=Resource(attributes=key_values(resource or {"service.name": "svc"})),
                scope_metrics=[pb.ScopeMetrics(scope=InstrumentationScope(name=scope), metrics=list(metrics))],
            )
        ]
    )


def metric(name: str, kind: str, points, temporality=DELTA, monotonic=False) -> pb.Metric:
    """A metric of ``kind`` (gauge, sum, histogram, exponential_histogram, summary) holding ``points``."""
    m = pb.Metric(name=name)
    data = getattr(m, kind)
    data.data_points.extend(points)
    if kind in ("sum", "histogram", "exponential_histogram"):
        data.aggregation_temporality = temporality
    if kind == "sum":
        data.is_monotonic = monotonic
    return m


def exp_point(h: ExpHistogram, attributes=None, start=T0, end=T1) -> pb.ExponentialHistogramDataPoint:
    point = pb.ExponentialHistogramDataPoint(
        attributes=key_values(attributes or {}),
        start_time_unix_nano=start,
        time_unix_nano=end,
        count=h.count,
        sum=h.sum,
        scale=h.scale,
        zero_count=h.zero_count,
        zero_threshold=h.zero_threshold,
    )
    if math.isfinite(h.min):
        point.min = h.min
    if math.isfinite(h.max):
        point.max = h.max
    point.positive.offset, point.negative.offset = h.positive_offset, h.negative_offset
    point.positive.bucket_counts.extend(h.positive.tolist())
    point.negative.bucket_counts.extend(h.negative.tolist())
    return point


def roundtrip(request: ExportMetricsServiceRequest):
    return decode_metrics(request.SerializeToString(), PROTOBUF)


def facts(point) -> tuple:
    """Everything a point says, comparable with ==."""
    value = point.value
    if point.kind == "explicit":
        value = (value.bounds, value.counts.tolist(), value.count, value.sum, value.min, value.max)
    return (
        point.key,
        point.kind,
        point.start_unix_nano,
        point.time_unix_nano,
        point.cumulative,
        point.monotonic,
        point.exemplars,
        value,
    )


def by_metric(decoded) -> dict:
    found = {}
    for point in decoded.points:
        found.setdefault(point.key.metric, []).append(point)
    return found


# --- round trips --------------------------------------------------------------------------------------------------
def test_sdk_metrics_round_trip(spans):
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        metric_readers=[reader],
        resource=SDKResource({"service.name": "svc", "host.name": "h1", "deployment.environment": "prod"}),
        views=[View(instrument_name="latency", aggregation=ExponentialBucketHistogramAggregation())],
    )
    meter = provider.get_meter("scope.a")
    latency, sizes = meter.create_histogram("latency"), meter.create_histogram("sizes")
    calls, temperature = meter.create_counter("calls"), meter.create_gauge("temperature")
    with spans[0].get_tracer("t").start_as_current_span("predict") as span:
        for v in (0.0, 0.5, 1.0, 2.0, 3.5, 1e6):
            latency.record(v, {"route": "/a"})
        sizes.record(7, {"route": "/a"})
        sizes.record(250)
    calls.add(3, {"ok": True})
    temperature.set(21.5)
    request = encode_metrics(reader.get_metrics_data())
    provider.shutdown()

    decoded = roundtrip(request)
    assert decoded.rejected == 0 and decoded.errors == []
    points = by_metric(decoded)
    [exp] = points["latency"]
    assert exp.kind == "exponential" and exp.cumulative
    assert exp.key.resource == (("host.name", "h1"), ("service.name", "svc"))
    assert exp.key.scope == "scope.a" and exp.key.attributes == (("route", "/a"),)
    sent = request.resource_metrics[0].scope_metrics[0].metrics
    sdk = next(m for m in sent if m.name == "latency").exponential_histogram.data_points[0]
    h = exp.value
    assert (h.count, h.zero_count, h.scale, h.min, h.max, h.sum) == (6, 1, sdk.scale, 0.0, 1e6, sdk.sum)
    assert h.positive_offset == sdk.positive.offset and h.positive.tolist() == list(sdk.positive.bucket_counts)
    assert h.negative.tolist() == list(sdk.negative.bucket_counts) and h.positive.dtype == np.int64
    [ex] = [e for e in exp.exemplars if e.value == 1e6]
    context = span.get_span_context()
    assert (ex.trace_id, ex.span_id) == (format(context.trace_id, "032x"), format(context.span_id, "016x"))

    explicit = {p.key.attributes: p.value for p in points["sizes"]}
    assert explicit[(("route", "/a"),)].count == 1 and explicit[()].sum == 250
    assert len(explicit[()].counts) == len(explicit[()].bounds) + 1 and int(explicit[()].counts.sum()) == 1
    [counter] = points["calls"]
    assert (counter.kind, counter.value, counter.monotonic, counter.cumulative) == ("sum", 3, True, True)
    assert counter.key.attributes == (("ok", True),)
    [gauge] = points["temperature"]
    assert (gauge.kind, gauge.value, gauge.cumulative) == ("gauge", 21.5, False)


def test_otelml_encoder_round_trip():
    registry = Registry()
    recorder = registry.recorder("churn", "3", "classification")
    rng = np.random.default_rng(0)
    numeric = np.column_stack([rng.normal(40, 10, 600), rng.lognormal(size=600)])
    proba = rng.dirichlet([1, 1], size=600)
    exemplar = CallExemplar(0xABC, 0xDEF, T1, {"age": 41.0}, 0.002, 0.75)
    recorder.record(
        ["age", "income"], numeric, None, read_outputs(proba, "auto", "classification", None), 0.002, None, exemplar
    )
    [snapshot] = registry.collect()
    resource = {"service.name": "svc", "service.instance.id": "i-1", "telemetry.sdk.name": "otelml"}
    request = encode(resource, "0.1", [snapshot], {"queue_full": 2}, (T0, T1))

    decoded = roundtrip(request)
    assert decoded.rejected == 0
    points = by_metric(decoded)
    for (name, extra), hist in snapshot.histograms.items():
        [point] = [p for p in points[name] if extra is None or extra in dict(p.key.attributes).values()]
        assert point.kind == "exponential" and not point.cumulative
        assert point.key.resource == (("service.instance.id", "i-1"), ("service.name", "svc"))
        assert dict(point.key.attributes)["otelml.model.name"] == "churn"
        assert point.value == hist
        assert (point.value.positive_offset, point.value.positive.tolist()) == (
            hist.positive_offset,
            hist.positive.tolist(),
        )
        assert (point.value.negative_offset, point.value.negative.tolist()) == (
            hist.negative_offset,
            hist.negative.tolist(),
        )
    [age] = [p for p in points["otelml.feature.value"] if p.key.attribute("otelml.feature.name") == "age"]
    assert age.exemplars[0].trace_id == format(0xABC, "032x") and age.exemplars[0].span_id == format(0xDEF, "016x")
    assert age.exemplars[0].value == 41.0
    counted = {(p.key.metric, p.key.attributes): p.value for p in decoded.points if p.kind == "sum"}
    assert sum(v for (name, _), v in counted.items() if name == "otelml.inference.rows") == 600
    [dropped] = points["otelml.telemetry.dropped"]
    assert dropped.value == 2 and dropped.monotonic and dropped.key.attribute("otelml.drop.reason") == "queue_full"


def test_sdk_spans_decode(spans):
    provider, exporter = spans
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("predict churn", attributes={"otelml.batch.size": 3}):
        with tracer.start_as_current_span("inner") as inner:
            inner.set_status(Status(StatusCode.ERROR))
    request = encode_spans(exporter.get_finished_spans())
    decoded = decode_traces(request.SerializeToString(), PROTOBUF)
    assert decoded.rejected == 0
    summaries = {s.name: s for s in decoded.spans}
    outer, failed = summaries["predict churn"], summaries["inner"]
    assert outer.attributes == {"otelml.batch.size": 3} and not outer.error and failed.error
    context = inner.get_span_context()
    assert (failed.trace_id, failed.span_id) == (format(context.trace_id, "032x"), format(context.span_id, "016x"))
    assert outer.trace_id == failed.trace_id and outer.start_unix_nano <= outer.end_unix_nano
    assert dict(outer.resource)["service.name"].startswith("unknown_service")


# --- OTLP/JSON ----------------------------------------------------------------------------------------------------
METRICS_JSON = """
{
  "resourceMetrics": [{
    "resource": {"attributes": [
      {"key": "service.name", "value": {"stringValue": "checkout"}},
      {"key": "cloud.region", "value": {"stringValue": "eu-west-1"}}
    ]},
    "scopeMetrics": [{
      "scope": {"name": "otelml", "version": "0.1"},
      "metrics": [
        {
          "name": "otelml.feature.value",
          "unit": "1",
          "exponentialHistogram": {
            "aggregationTemporality": 1,
            "dataPoints": [{
              "attributes": [
                {"key": "otelml.feature.name", "value": {"stringValue": "age"}},
                {"key": "tags", "value": {"arrayValue": {"values": [{"intValue": "1"}, {"boolValue": true}]}}}
              ],
              "startTimeUnixNano": "1700000000000000000",
              "timeUnixNano": "1700000010000000000",
              "count": "6",
              "sum": 41.5,
              "scale": 3,
              "zeroCount": "1",
              "zeroThreshold": 1e-9,
              "positive": {"offset": 4, "bucketCounts": ["2", "0", "1"]},
              "negative": {"offset": -2, "bucketCounts": [2]},
              "min": -0.5,
              "max": 22.5,
              "exemplars": [{
                "timeUnixNano": "1700000005000000000",
                "asDouble": 22.5,
                "traceId": "5b8efff798038103d269b633813fc60c",
                "spanId": "eee19b7ec3c1b174"
              }],
              "aFieldFromTheFuture": {"x": [1, 2]}
            }]
          }
        },
        {
          "name": "otelml.inference.calls",
          "sum": {
            "aggregationTemporality": "AGGREGATION_TEMPORALITY_CUMULATIVE",
            "isMonotonic": true,
            "dataPoints": [{"asInt": "12", "startTimeUnixNano": "1700000000000000000",
                            "timeUnixNano": "1700000010000000000"}]
          }
        },
        {
          "name": "latency",
          "histogram": {
            "aggregationTemporality": 2,
            "dataPoints": [{"count": "3", "sum": 1.5, "bucketCounts": ["1", "2", "0"], "explicitBounds": [0.5, 1],
                            "timeUnixNano": "1700000010000000000"}]
          }
        },
        {"name": "temperature", "gauge": {"dataPoints": [{"asDouble": 21.5, "timeUnixNano": "1700000010000000000"}]}}
      ]
    }]
  }]
}
"""


def test_otlp_json_metrics_decode_like_protobuf():
    exp = pb.ExponentialHistogramDataPoint(
        start_time_unix_nano=T0,
        time_unix_nano=T1,
        count=6,
        sum=41.5,
        scale=3,
        zero_count=1,
        zero_threshold=1e-9,
        min=-0.5,
        max=22.5,
        positive=pb.ExponentialHistogramDataPoint.Buckets(offset=4, bucket_counts=[2, 0, 1]),
        negative=pb.ExponentialHistogramDataPoint.Buckets(offset=-2, bucket_counts=[2]),
        exemplars=[
            pb.Exemplar(
                time_unix_nano=T0 + 5_000_000_000,
                as_double=22.5,
                trace_id=bytes.fromhex(TRACE_ID),
                span_id=bytes.fromhex(SPAN_ID),
            )
        ],
        attributes=key_values({"otelml.feature.name": "age", "tags": [1, True]}),
    )
    request = metrics_request(
        metric("otelml.feature.value", EXP, [exp], temporality=DELTA),
        metric(
            "otelml.inference.calls",
            "sum",
            [pb.NumberDataPoint(as_int=12, start_time_unix_nano=T0, time_unix_nano=T1)],
            CUMULATIVE,
            True,
        ),
        metric(
            "latency",
            "histogram",
            [
                pb.HistogramDataPoint(
                    count=3, sum=1.5, bucket_counts=[1, 2, 0], explicit_bounds=[0.5, 1.0], time_unix_nano=T1
                )
            ],
            CUMULATIVE,
        ),
        metric("temperature", "gauge", [pb.NumberDataPoint(as_double=21.5, time_unix_nano=T1)]),
        resource={"service.name": "checkout", "cloud.region": "eu-west-1"},
    )
    from_json = decode_metrics(METRICS_JSON.encode(), "application/json; charset=utf-8")
    from_protobuf = roundtrip(request)
    assert from_json.rejected == 0 and len(from_json.points) == 4
    assert [facts(p) for p in from_json.points] == [facts(p) for p in from_protobuf.points]
    first = from_json.points[0]
    assert first.exemplars[0].trace_id == TRACE_ID and first.exemplars[0].span_id == SPAN_ID
    assert first.key.attributes == (("otelml.feature.name", "age"), ("tags", (1, True)))
    assert first.key.resource == (("service.name", "checkout"),)


TRACES_JSON = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
            "scopeSpans": [
                {
                    "scope": {"name": "otelml"},
                    "spans": [
                        {
                            "traceId": TRACE_ID.upper(),
                            "spanId": SPAN_ID,
                            "parentSpanId": "",
                            "name": "predict churn",
                            "kind": 2,
                            "startTimeUnixNano": "1700000000000000000",
                            "endTimeUnixNano": "1700000000500000000",
                            "attributes": [{"key": "otelml.batch.size", "value": {"intValue": "3"}}],
                            "links": [{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331"}],
                            "status": {"code": 2, "message": "boom"},
                            "somethingNew": True,
                        }
                    ],
                }
            ],
        }
    ]
}


def test_otlp_json_traces_with_hex_ids():
    body = json.dumps(TRACES_JSON).encode()
    [summary] = decode_traces(body, "Application/JSON").spans
    assert (summary.trace_id, summary.span_id, summary.name) == (TRACE_ID, SPAN_ID, "predict churn")
    assert summary.attributes == {"otelml.batch.size": 3} and summary.error
    assert summary.resource == (("service.name", "api"),)
    assert (summary.start_unix_nano, summary.end_unix_nano) == (T0, T0 + 500_000_000)
    span = parse_otlp_json(body, ExportTraceServiceRequest).resource_spans[0].scope_spans[0].spans[0]
    assert span.links[0].trace_id.hex() == "0af7651916cd43dd8448eb211c80319c" and span.parent_span_id == b""
    assert span.kind == trace_pb2.Span.SPAN_KIND_SERVER


def test_otlp_json_accepts_proto_field_names_and_null_ids():
    body = b'{"resource_spans": [{"scope_spans": [{"spans": [{"trace_id": "%s", "span_id": "%s", "parent_span_id": null}]}]}]}'
    [summary] = decode_traces(body % (TRACE_ID.encode(), SPAN_ID.encode()), JSON).spans
    assert (summary.trace_id, summary.span_id) == (TRACE_ID, SPAN_ID)


# --- whole-body errors --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", ["application/x-protobuf", "APPLICATION/X-PROTOBUF; charset=binary"])
def test_protobuf_content_types(content_type):
    assert decode_metrics(b"", content_type).points == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/protobuf+json", "", "application/grpc"])
def test_unsupported_content_type_is_415(content_type):
    for decode in (decode_metrics, decode_traces):
        with pytest.raises(DecodeError, match="unsupported content type") as caught:
            decode(b"{}", content_type)
        assert caught.value.status == 415


@pytest.mark.parametrize(
    "body, content_type, message",
    [
        (b"\xff\xff\xff", PROTOBUF, "invalid OTLP protobuf: cannot parse ExportTraceServiceRequest"),
        (b"{", JSON, "invalid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        (b"[]", JSON, "invalid OTLP/JSON: the body is not a JSON object"),
        (b"\xff", JSON, "invalid JSON: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{}, {"traceId": "xyz"}]}]}]}',
            JSON,
            "invalid OTLP/JSON: resourceSpans[0].scopeSpans[0].spans[1].traceId must be a hex string, got 'xyz'",
        ),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "abc"}]}]}]}',
            JSON,
            "invalid OTLP/JSON: resourceSpans[0].scopeSpans[0].spans[0].spanId must be a hex string, got 'abc'",
        ),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5}]}]}]}',
            JSON,
            "invalid OTLP/JSON: resourceSpans.scopeSpans.spans.name: expected string or bytes-like object, got 'int'",
        ),
        (b"[" * 100_000, JSON, "invalid JSON: maximum recursion depth exceeded"),
    ],
)
def test_undecodable_bodies_are_400_with_a_precise_message(body, content_type, message):
    with pytest.raises(DecodeError) as caught:
        decode_traces(body, content_type)
    assert str(caught.value).startswith(message) and caught.value.status == 400
    assert len(str(caught.value)) < 300


@pytest.mark.parametrize(
    "body, message",
    [
        (
            {
                "resourceMetrics": [
                    {"scopeMetrics": [{"metrics": [{"sum": {"dataPoints": [{"asInt": "x" * 10_000}]}}]}]}
                ]
            },
            "invalid OTLP/JSON: resourceMetrics.scopeMetrics.metrics.dataPoints.asInt: invalid literal for int()",
        ),
        (
            {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "z" * 10_000}]}]}]},
            "invalid OTLP/JSON: resourceSpans[0].scopeSpans[0].spans[0].traceId must be a hex string, got 'zzz",
        ),
    ],
)
def test_messages_quoting_the_body_stay_short(body, message):
    with pytest.raises(DecodeError) as caught:
        (decode_metrics if "resourceMetrics" in body else decode_traces)(json.dumps(body).encode(), JSON)
    assert str(caught.value).startswith(message) and len(str(caught.value)) <= 200


# --- property tests -----------------------------------------------------------------------------------------------
DECODERS = [(decode_metrics, PROTOBUF), (decode_metrics, JSON), (decode_traces, PROTOBUF), (decode_traces, JSON)]


def decodes_or_raises_decode_error(decode, body, content_type):
    try:
        decode(body, content_type)
    except DecodeError as exc:
        assert exc.status == 400 and str(exc)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(DECODERS))
def test_arbitrary_bytes_raise_only_decode_error(body, decoder):
    decode, content_type = decoder
    decodes_or_raises_decode_error(decode, body, content_type)


def corrupted(valid: bytes):
    """``valid`` with a few bytes overwritten, inserted or cut: mostly still parses, into strange messages."""
    edits = st.lists(
        st.tuples(st.integers(0, len(valid)), st.binary(min_size=0, max_size=4), st.integers(0, 4)),
        min_size=1,
        max_size=4,
    )

    def apply(changes):
        body = valid
        for at, insert, cut in changes:
            body = body[:at] + insert + body[at + cut :]
        return body

    return edits.map(apply)


def traces_request(*spans, resource=None) -> ExportTraceServiceRequest:
    scope_spans = trace_pb2.ScopeSpans(spans=list(spans))
    resource = Resource(attributes=key_values(resource or {}))
    return ExportTraceServiceRequest(
        resource_spans=[trace_pb2.ResourceSpans(resource=resource, scope_spans=[scope_spans])]
    )


def roundtrip_traces(request: ExportTraceServiceRequest):
    return decode_traces(request.SerializeToString(), PROTOBUF)


SMALL_HISTOGRAM = ExpHistogram(scale=2, positive_offset=-3, positive=np.array([1, 2]), zero_count=1, count=4, sum=1.0)
VALID_METRICS = metrics_request(
    metric("e", EXP, [exp_point(SMALL_HISTOGRAM, {"k": "v"})]),
    metric(
        "h",
        "histogram",
        [pb.HistogramDataPoint(count=1, bucket_counts=[0, 1], explicit_bounds=[1.0], time_unix_nano=T1)],
    ),
    metric("s", "sum", [pb.NumberDataPoint(as_double=1.5, time_unix_nano=T1)], CUMULATIVE, True),
).SerializeToString()
SPAN = dict(
    trace_id=bytes.fromhex(TRACE_ID), span_id=bytes.fromhex(SPAN_ID), start_time_unix_nano=T0, end_time_unix_nano=T1
)
VALID_TRACES = traces_request(
    trace_pb2.Span(name="x", attributes=key_values({"a": [1, 2.5, "s"]}), **SPAN)
).SerializeToString()


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        corrupted(VALID_METRICS).map(lambda b: (decode_metrics, b)),
        corrupted(VALID_TRACES).map(lambda b: (decode_traces, b)),
    )
)
def test_corrupted_protobuf_raises_only_decode_error(decoder_body):
    decode, body = decoder_body
    decodes_or_raises_decode_error(decode, body, PROTOBUF)


OTLP_KEYS = """resourceMetrics scopeMetrics metrics name gauge sum histogram exponentialHistogram summary dataPoints
    asInt asDouble count bucketCounts explicitBounds positive offset scale exemplars traceId spanId attributes key value
    stringValue arrayValue kvlistValue values aggregationTemporality timeUnixNano resourceSpans scopeSpans spans links
    parentSpanId status code resource scope""".split()
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["", TRACE_ID, SPAN_ID, "AGGREGATION_TEMPORALITY_DELTA", "NaN", "1e999", "-5"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(OTLP_KEYS), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, st.sampled_from(DECODERS[1::2]))
def test_arbitrary_otlp_json_raises_only_decode_error(value, decoder):
    decode, content_type = decoder
    decodes_or_raises_decode_error(decode, json.dumps(value).encode(), content_type)


def json_paths(value, path=()):
    """Every place in a JSON document, as a tuple of keys and indices."""
    yield path
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from json_paths(child, (*path, key))


def with_replacement(document):
    """``document`` with one of its values (anywhere) replaced by arbitrary JSON."""
    places = list(json_paths(document))[1:]

    def apply(change):
        path, value = change
        result = json.loads(json.dumps(document))
        parent = result
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = value
        return result

    return st.tuples(st.sampled_from(places), json_values).map(apply)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        with_replacement(json.loads(METRICS_JSON)).map(lambda d: (decode_metrics, d)),
        with_replacement(TRACES_JSON).map(lambda d: (decode_traces, d)),
    )
)
def test_damaged_otlp_json_raises_only_decode_error(decoder_document):
    decode, document = decoder_document
    decodes_or_raises_decode_error(decode, json.dumps(document).encode(), JSON)


counts = st.integers(0, 2**40)
finite = st.floats(allow_nan=False, allow_infinity=False)
attribute_values = st.one_of(
    st.text(max_size=5),
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    finite,
    st.lists(st.integers(0, 9) | st.text(max_size=3), max_size=3),
)


@st.composite
def exp_histograms(draw) -> ExpHistogram:
    """Valid exponential histograms: any scale, bucket indices anywhere in the range of finite values at that scale,
    counts that add up."""
    scale = draw(st.integers(MIN_SCALE, MAX_SCALE))
    first, last = index_range(scale)
    positive = np.array(draw(st.lists(counts, max_size=min(40, last - first + 1))), dtype=np.int64)
    negative = np.array(draw(st.lists(counts, max_size=min(40, last - first + 1))), dtype=np.int64)
    zero_count = draw(counts)
    low, high = sorted(draw(st.lists(finite, min_size=2, max_size=2)))
    return ExpHistogram(
        scale=scale,
        zero_threshold=draw(st.floats(0, 1e300)),
        zero_count=zero_count,
        positive_offset=draw(st.integers(first, max(first, last - positive.size + 1))),
        positive=positive,
        negative_offset=draw(st.integers(first, max(first, last - negative.size + 1))),
        negative=negative,
        count=zero_count + int(positive.sum()) + int(negative.sum()),
        sum=draw(finite),
        min=draw(st.sampled_from([low, math.inf])),
        max=draw(st.sampled_from([high, -math.inf])),
    )


@settings(max_examples=200, deadline=None)
@given(exp_histograms(), st.dictionaries(st.text(max_size=5), attribute_values, max_size=4), st.integers(1, 2**63))
def test_valid_exponential_points_round_trip_exactly(h, attributes, end):
    [point] = roundtrip(metrics_request(metric("m", EXP, [exp_point(h, attributes, end, end)]))).points
    got = point.value
    assert got == h and got.sum == h.sum and (got.min, got.max) == (h.min, h.max)
    assert (got.positive_offset, got.positive.tolist()) == (h.positive_offset, h.positive.tolist())
    assert (got.negative_offset, got.negative.tolist()) == (h.negative_offset, h.negative.tolist())
    expected = {k: tuple(v) if isinstance(v, list) else v for k, v in attributes.items()}
    assert point.key.attributes == tuple(sorted(expected.items()))
    assert (point.start_unix_nano, point.time_unix_nano, point.cumulative) == (end, end, False)


@st.composite
def explicit_points(draw) -> pb.HistogramDataPoint:
    bounds = sorted(set(draw(st.lists(finite, max_size=6))))
    bucket_counts = draw(st.lists(counts, min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    low, high = sorted(draw(st.lists(finite, min_size=2, max_size=2)))
    return pb.HistogramDataPoint(
        start_time_unix_nano=T0,
        time_unix_nano=T1,
        count=sum(bucket_counts),
        explicit_bounds=bounds,
        bucket_counts=bucket_counts,
        sum=draw(finite),
        min=low,
        max=high,
    )


number_points = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(lambda v: pb.NumberDataPoint(as_int=v)),
    finite.map(lambda v: pb.NumberDataPoint(as_double=v)),
)
BASE_POINTS = {
    EXP: exp_histograms().map(exp_point),
    "histogram": explicit_points(),
    "sum": number_points.map(
        lambda p: pb.NumberDataPoint(
            start_time_unix_nano=T0, time_unix_nano=T1, **{p.WhichOneof("value"): getattr(p, p.WhichOneof("value"))}
        )
    ),
}
BASE_POINTS["gauge"] = BASE_POINTS["sum"]


def set_fields(**fields):
    def mutate(point, data):
        for name, value in fields.items():
            setattr(point, name, value)

    return mutate


def extend_buckets(sign: str, size: int, offset=None):
    def mutate(point, data):
        buckets = getattr(point, sign)
        buckets.bucket_counts.extend([0] * (size - len(buckets.bucket_counts)))
        if offset is not None:
            buckets.offset = offset

    return mutate


def temporality(value):
    def mutate(point, data):
        data.aggregation_temporality = value

    return mutate


def min_above_max(point, data):
    point.min, point.max = 2.0, 1.0


def add_count(point, data):
    point.count += 1


def add_bucket(point, data):
    point.bucket_counts.append(0)


def add_bounds(*bounds):
    def mutate(point, data):
        top = max(point.explicit_bounds, default=0.0)
        point.explicit_bounds.extend(top + b for b in bounds)
        point.bucket_counts.extend([0] * len(bounds))

    return mutate


def clear_value(point, data):
    point.ClearField("value")


def at_scale(scale, sign, offset):
    def mutate(point, data):
        point.scale = scale
        getattr(point, "negative" if sign == "positive" else "positive").offset = 0  # valid at any scale from 0 up
        buckets = getattr(point, sign)
        buckets.bucket_counts.extend([0] * (2 - len(buckets.bucket_counts)))
        buckets.offset = offset

    return mutate


def long_attribute(key, value):
    def mutate(point, data):
        point.attributes.extend(key_values({key: value}))

    return mutate


def monotonic_negative(point, data):
    data.is_monotonic = True
    point.as_double = -1.5


INVALID = [
    # (metric kind, mutation, reason)
    (EXP, set_fields(time_unix_nano=0), "time_unix_nano is 0"),
    (EXP, set_fields(start_time_unix_nano=T1 + 1), f"start_time_unix_nano {T1 + 1} > time_unix_nano {T1}"),
    (EXP, temporality(0), "aggregation temporality is unspecified"),
    (EXP, temporality(7), "aggregation temporality 7 is unknown"),
    (EXP, set_fields(scale=21), "exponential histogram scale 21 outside [-10, 20]"),
    (EXP, set_fields(scale=-11), "exponential histogram scale -11 outside [-10, 20]"),
    (EXP, extend_buckets("positive", 16385), "exponential histogram has 16385 positive buckets, more than 16384"),
    (EXP, extend_buckets("negative", 16385), "exponential histogram has 16385 negative buckets, more than 16384"),
    (EXP, extend_buckets("negative", 2, 2**31 - 1), "exponential histogram negative buckets 2147483647 to "),
    (EXP, at_scale(20, "positive", -(2**31)), "exponential histogram positive buckets -2147483648 to "),
    (
        EXP,
        at_scale(0, "negative", 1023),
        "exponential histogram negative buckets 1023 to ",
    ),
    (EXP, long_attribute("k", "x" * 1025), "attribute value of 1025 characters, more than 1024"),
    (EXP, long_attribute("k" * 257, "v"), "attribute key of 257 characters, more than 256"),
    (EXP, long_attribute("k", ["v"] * 129), "attribute value of 129 elements, more than 128"),
    (EXP, add_count, "exponential histogram count "),
    (EXP, set_fields(zero_threshold=-1.0), "exponential histogram zero_threshold -1.0 is negative or not finite"),
    (EXP, set_fields(zero_threshold=math.inf), "exponential histogram zero_threshold inf is negative or not finite"),
    (EXP, set_fields(zero_threshold=math.nan), "exponential histogram zero_threshold nan is negative or not finite"),
    (EXP, set_fields(sum=math.inf), "exponential histogram sum inf is not finite"),
    (EXP, set_fields(sum=math.nan), "exponential histogram sum nan is not finite"),
    (EXP, set_fields(max=math.nan), "exponential histogram max nan is not finite"),
    (EXP, min_above_max, "exponential histogram min 2.0 > max 1.0"),
    ("histogram", set_fields(time_unix_nano=0), "time_unix_nano is 0"),
    ("histogram", temporality(0), "aggregation temporality is unspecified"),
    ("histogram", add_bucket, "explicit histogram has "),
    ("histogram", add_bounds(math.inf), "explicit histogram bounds are not finite and strictly increasing"),
    ("histogram", add_bounds(1.0, 1.0), "explicit histogram bounds are not finite and strictly increasing"),
    ("histogram", add_count, "explicit histogram count "),
    ("histogram", set_fields(sum=-math.inf), "explicit histogram sum -inf is not finite"),
    ("histogram", min_above_max, "explicit histogram min 2.0 > max 1.0"),
    ("sum", set_fields(start_time_unix_nano=T1 + 1), "start_time_unix_nano"),
    ("sum", temporality(0), "aggregation temporality is unspecified"),
    ("sum", clear_value, "data point has no value"),
    ("sum", set_fields(as_double=math.nan), "value nan is not finite"),
    ("sum", monotonic_negative, "monotonic sum -1.5 is negative"),
    ("gauge", set_fields(as_double=-math.inf), "value -inf is not finite"),
    ("gauge", set_fields(time_unix_nano=0), "time_unix_nano is 0"),
]


@pytest.mark.parametrize("kind, mutate, reason", INVALID, ids=[f"{k}: {r}" for k, _, r in INVALID])
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_invalid_point_is_rejected_and_its_sibling_kept(kind, mutate, reason, data):
    good, bad = data.draw(BASE_POINTS[kind]), data.draw(BASE_POINTS[kind])
    bad_metric = metric("bad", kind, [bad])
    data_of_bad = getattr(bad_metric, kind)
    mutate(data_of_bad.data_points[0], data_of_bad)
    decoded = roundtrip(metrics_request(bad_metric, metric("good", kind, [good])))
    assert decoded.rejected == 1 and len(decoded.errors) == 1
    assert decoded.errors[0].startswith(f"metric 'bad': {reason}")
    assert [p.key.metric for p in decoded.points] == ["good"]


def test_bad_point_does_not_take_its_metric_with_it():
    good = pb.NumberDataPoint(as_int=1, time_unix_nano=T1)
    decoded = roundtrip(metrics_request(metric("m", "gauge", [pb.NumberDataPoint(as_int=2), good, good])))
    assert (decoded.rejected, len(decoded.points), decoded.errors) == (1, 2, ["metric 'm': time_unix_nano is 0"])
    decoded = roundtrip(metrics_request(metric("m", "gauge", [pb.NumberDataPoint(as_int=2)] * 3)))
    assert (decoded.rejected, decoded.errors) == (3, ["metric 'm': time_unix_nano is 0"])  # one message per reason


def test_summary_metrics_are_rejected():
    summary = metric("s", "summary", [pb.SummaryDataPoint(count=1, time_unix_nano=T1)] * 2)
    decoded = roundtrip(
        metrics_request(summary, metric("g", "gauge", [pb.NumberDataPoint(as_int=1, time_unix_nano=T1)]))
    )
    assert (decoded.rejected, decoded.errors) == (2, ["metric 's': summary metrics are not supported"])
    assert [p.key.metric for p in decoded.points] == ["g"]


def test_bucket_counts_are_summed_exactly():
    point = exp_point(ExpHistogram(count=0))
    point.positive.bucket_counts.extend([2**63, 2**63])  # wraps to 0 in uint64
    decoded = roundtrip(metrics_request(metric("m", EXP, [point])))
    assert decoded.errors == [f"metric 'm': exponential histogram count 0 != {2**64} in buckets"]


def test_explicit_histogram_without_buckets():
    point = pb.HistogramDataPoint(time_unix_nano=T1, explicit_bounds=[1.0, 2.0])
    [decoded] = roundtrip(metrics_request(metric("h", "histogram", [point]))).points
    assert decoded.value.counts.tolist() == [0, 0, 0] and decoded.value.sum is None and decoded.value.min is None


def test_points_without_a_recorded_value_are_skipped():
    stale = pb.NumberDataPoint(time_unix_nano=T1, as_double=0.0, flags=pb.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK)
    decoded = roundtrip(metrics_request(metric("c", "sum", [stale], CUMULATIVE, True)))
    assert (decoded.points, decoded.rejected) == ([], 0)


def test_exemplar_ids_of_the_wrong_length_are_dropped():
    point = pb.NumberDataPoint(time_unix_nano=T1, as_int=1, exemplars=[pb.Exemplar(trace_id=b"\x01" * 8, as_int=3)])
    [decoded] = roundtrip(metrics_request(metric("g", "gauge", [point]))).points
    assert decoded.exemplars == (Exemplar(trace_id="", span_id="", time_unix_nano=0, value=3.0),)


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"trace_id": b"\x01" * 15}, "trace id has 15 bytes, not 16"),
        ({"trace_id": b""}, "trace id has 0 bytes, not 16"),
        ({"span_id": b"\x01" * 9}, "span id has 9 bytes, not 8"),
        ({"end_time_unix_nano": T0 - 1}, f"end_time_unix_nano {T0 - 1} < start_time_unix_nano {T0}"),
        ({"name": "bad" + "x" * 300}, "span name of 303 characters, more than 256"),
    ],
)
def test_invalid_spans_are_rejected(fields, reason):
    request = traces_request(trace_pb2.Span(**{"name": "bad", **SPAN, **fields}), trace_pb2.Span(name="good", **SPAN))
    decoded = decode_traces(request.SerializeToString(), PROTOBUF)
    assert decoded.rejected == 1 and len(decoded.errors) == 1 and decoded.errors[0].endswith(reason)
    assert [s.name for s in decoded.spans] == ["good"]


def test_over_long_span_attributes_are_left_out_and_the_span_kept():
    """Spans pass through from every instrumentation: a 1 MB SQL statement costs its attribute, not the span."""
    attributes = key_values({"db.statement": "x" * 1_000_000, "k" * 300: "v", "ok": "yes"})
    decoded = roundtrip_traces(traces_request(trace_pb2.Span(name="s", attributes=attributes, **SPAN)))
    [span] = decoded.spans
    assert span.attributes == {"ok": "yes"} and decoded.rejected == 0


def test_an_over_long_resource_attribute_rejects_its_points_and_spans_only():
    long = {"service.name": "s" * 2_000}
    point = pb.NumberDataPoint(time_unix_nano=T1, as_int=1)
    request = metrics_request(metric("g", "gauge", [point, point]), resource=long)
    request.resource_metrics.extend(metrics_request(metric("g", "gauge", [point])).resource_metrics)
    decoded = roundtrip(request)
    assert (len(decoded.points), decoded.rejected) == (1, 2)
    assert decoded.errors == ["resource: attribute value of 2000 characters, more than 1024"]
    spans = roundtrip_traces(traces_request(trace_pb2.Span(name="s", **SPAN), resource=long))
    assert (spans.spans, spans.rejected) == ([], 1)


def test_attribute_values_become_hashable_python_values():
    kvlist = AnyValue(kvlist_value=KeyValueList(values=key_values({"b": 2, "a": [1.5, "x"]})))
    attributes = [
        KeyValue(key="kv", value=kvlist),
        KeyValue(key="raw", value=AnyValue(bytes_value=b"\x01\xff")),
        KeyValue(key="empty", value=AnyValue()),
        *key_values({"n": 1, "n2": 1, "f": 0.5, "ok": False}),
    ]
    point = pb.NumberDataPoint(as_int=1, time_unix_nano=T1, attributes=attributes)
    [decoded] = roundtrip(metrics_request(metric("g", "gauge", [point]))).points
    assert decoded.key.attributes == (
        ("empty", None),
        ("f", 0.5),
        ("kv", (("a", (1.5, "x")), ("b", 2))),
        ("n", 1),
        ("n2", 1),
        ("ok", False),
        ("raw", "01ff"),
    )
    hash(decoded.key)


def test_grpc_path_takes_parsed_requests():
    request = metrics_request(metric("g", "gauge", [pb.NumberDataPoint(as_int=4, time_unix_nano=T1)]))
    [point] = decode_metrics_request(request).points
    assert (point.key.metric, point.value, point.key.scope) == ("g", 4, "otelml")

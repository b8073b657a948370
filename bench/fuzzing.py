"""Fuzzing the analyzer's receivers: seeded mutations of real SDK requests, sent to a real analyzer process over
OTLP/gRPC and OTLP/HTTP (protobuf, JSON, gzip), with the analyzer's health watched throughout.

Shared by ``bench/fuzz.py`` (the long run, one command) and ``tests/test_fuzz.py`` (a bounded run in the suite).

- Seeds: requests the otelml SDK really sends (a classifier with numeric, categorical and non-finite features,
  callers and fingerprints; a regressor), captured once from its real exporters by an :class:`OTLPSink`.
- Cases: request ``index`` of run ``seed`` is :func:`make_case` ``(seeds, seed, index)``, the same bytes on every
  run but for the timestamps, which follow the clock. Each case is one mutation family (``FAMILIES``): byte-level
  damage of the serialized protobuf, structured mutations of the decoded message (bucket offsets, scales and
  lengths; NaN, infinite and negative numbers; timestamps; names and values near and over the caps; floods of
  distinct names; unknown models; temporality), JSON-level damage (wrong types, deep nesting, bad ids and text) and
  transport-level damage (content types, bad gzip, gzip bombs, tokens).
- Classes of answers: ``ok`` (2xx), ``rejected`` (4xx, or a gRPC status that says the input is bad), ``overload``
  (503, 429, UNAVAILABLE, RESOURCE_EXHAUSTED: retryable), ``failure`` (any other 5xx, gRPC INTERNAL or UNKNOWN and
  the like) and ``wedge`` (connection reset, time-out). Each failure and wedge is kept with its body under the output
  directory, to replay with ``bench/fuzz.py --seed S --start INDEX --requests 1``.
- Checks (:class:`Target`): the analyzer is alive, ``/api/health`` answers within a bound, its RSS stays under a
  bound, a valid request of a canary model (its own source) is accepted and the canary's windows go on closing;
  at the end, ``kill -9`` and a restart on the same state directory, which must become ready and accept data.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from otelml import semconv
from otelml.analyzer.ingest.attributes import MAX_ITEMS, MAX_NAME, MAX_VALUE
from otelml.analyzer.ingest.histograms import MAX_BUCKETS, index_range
from otelml.histogram import MAX_SCALE, MIN_SCALE

TOKEN = "fuzz-token"
CANARY_INSTANCE = "fuzz-canary"
CANARY_FEATURES = {("canary-clf", "1"): ("a", "c"), ("canary-reg", "2"): ("x0", "x1")}  # the seed models' numbers
MAX_RSS_MB = 500.0
HEALTH_BOUND_S = 5.0  # /api/health must answer within this, under load
REQUEST_TIMEOUT_S = 30.0  # longer than this without an answer: a wedge
MESSAGES = {"metrics": ExportMetricsServiceRequest, "traces": ExportTraceServiceRequest}
GRPC_METHODS = {
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
}
CLASSES = ("ok", "rejected", "overload", "failure", "wedge")
_OVERLOAD_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}
_FAILURE_CODES = {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DATA_LOSS,
    grpc.StatusCode.UNIMPLEMENTED,
}
_INT32, _INT64, _UINT64 = 2**31, 2**63, 2**64


# --- seeds ------------------------------------------------------------------------------------------------------------
def capture_seeds() -> dict:
    """Requests the otelml SDK sends, through its real exporters to an OTLP sink: ``{"metrics": [bytes], "traces":
    [bytes], "captured_ns": int}``."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    import otelml
    from otelml.testing import OTLPSink

    with OTLPSink() as sink:
        provider = TracerProvider(resource=Resource({"service.name": "fuzz-seed"}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{sink.http_endpoint}/v1/traces")))
        otelml.configure(
            endpoint=sink.http_endpoint,
            service_name="fuzz-seed",
            tracer_provider=provider,
            create_tracer_provider=False,
            set_global_tracer_provider=False,
            export_interval_s=3600,
            caller_key="fuzz-key",
        )
        try:
            rng = np.random.default_rng(1)
            classify = otelml.monitor(
                model="seed-clf", version="1", classes=["ok", "bad"], caller="user", fingerprint_bits=64
            )(lambda rows, user=None: np.tile([0.8, 0.2], (len(rows), 1)))
            regress = otelml.monitor(model="seed-reg", version="2", task="regression")(lambda x: x.sum(axis=1))
            for i in range(4):
                rows = [
                    {"a": float(v), "b": "xyz"[i % 3], "c": math.nan if i == 1 else 1.0} for v in rng.normal(size=3)
                ]
                classify(rows, user=f"user-{i}")
                regress(rng.lognormal(size=(8, 2)))
            otelml.force_flush()
        finally:
            otelml.shutdown()
            provider.shutdown()
        seeds = {signal: [r.SerializeToString() for r in sink.requests[signal]] for signal in MESSAGES}
    assert seeds["metrics"] and seeds["traces"], "the SDK sent nothing to the sink"
    ends = [p.time_unix_nano for p in _points(MESSAGES["metrics"].FromString(seeds["metrics"][0]))]
    return seeds | {"captured_ns": max(ends)}


def _points(request):
    """Every data point of a metrics request."""
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind:
                    yield from getattr(metric, kind).data_points


def _metrics(request):
    return [m for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.WhichOneof("data")]


def _spans(request):
    return [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]


def restamped(seeds: dict, signal: str, which: int, now_ns: int):
    """Seed request ``which`` of ``signal`` as a message, its times moved so that its newest is ``now_ns``."""
    bodies = seeds[signal]
    message = MESSAGES[signal].FromString(bodies[which % len(bodies)])
    shift = now_ns - seeds["captured_ns"]
    if signal == "metrics":
        for point in _points(message):
            point.start_time_unix_nano += shift
            point.time_unix_nano += shift
            for exemplar in point.exemplars:
                exemplar.time_unix_nano += shift
    else:
        for span in _spans(message):
            span.start_time_unix_nano += shift
            span.end_time_unix_nano = max(span.end_time_unix_nano + shift, span.start_time_unix_nano)
    return message


def canary_request(seeds: dict, now_ns: int) -> bytes:
    """A valid metrics request from the canary's own source, of models ``canary-clf`` and ``canary-reg``."""
    message = restamped(seeds, "metrics", 0, now_ns)
    for rm in message.resource_metrics:
        rm.resource.attributes.append(KeyValue(key="service.instance.id", value=AnyValue(string_value=CANARY_INSTANCE)))
    for point in _points(message):
        for kv in point.attributes:
            if kv.key == semconv.MODEL_NAME:
                kv.value.string_value = kv.value.string_value.replace("seed-", "canary-")
    return message.SerializeToString()


# --- cases ------------------------------------------------------------------------------------------------------------
@dataclass
class Case:
    index: int
    family: str
    transport: str  # "grpc" or "http"
    signal: str  # "metrics" or "traces"
    body: bytes
    content_type: str | None = "application/x-protobuf"
    encoding: str | None = None  # Content-Encoding (HTTP only)
    token: str | None = TOKEN


def _pick_point(rng, request, kind: str | None = None):
    metrics = [
        m for m in _metrics(request) if m.WhichOneof("data") == kind or (kind is None and not m.HasField("summary"))
    ]
    metrics = [m for m in metrics if getattr(m, m.WhichOneof("data")).data_points]
    if not metrics:
        return None, None
    metric = rng.choice(metrics)
    return metric, rng.choice(getattr(metric, metric.WhichOneof("data")).data_points)


def _set_buckets(point, sign: str, offset: int, counts: list) -> None:
    buckets, other = getattr(point, sign), point.negative if sign == "positive" else point.positive
    buckets.offset = offset
    del buckets.bucket_counts[:]
    buckets.bucket_counts.extend(counts)
    point.count = (point.zero_count + sum(counts) + sum(other.bucket_counts)) % _UINT64


def _extreme_offsets(rng, request) -> None:
    """Bucket offsets at and past the ends of int32 and of the indices of finite values, with lengths that reach
    past them; counts kept consistent so that only the offsets are wrong (or right, at the very edge)."""
    for _ in range(rng.randint(1, 3)):
        _, point = _pick_point(rng, request, "exponential_histogram")
        if point is None:
            return
        kept = min(max(point.scale, MIN_SCALE), MAX_SCALE)
        point.scale = rng.choice([kept, MIN_SCALE, 0, MAX_SCALE, rng.randint(MIN_SCALE, MAX_SCALE)])
        low, high = index_range(point.scale)
        size = rng.choice([1, 2, 64, 1000])
        offset = rng.choice(
            [-_INT32, -_INT32 + 1, _INT32 - 1, _INT32 - size, low - 1, low, high, high - size + 1, high - size + 2]
            + [rng.randint(-_INT32, _INT32 - 1)]
        )
        _set_buckets(point, rng.choice(["positive", "negative"]), offset, [rng.randint(0, 3) for _ in range(size)])


def _scales(rng, request) -> None:
    for _ in range(rng.randint(1, 3)):
        _, point = _pick_point(rng, request, "exponential_histogram")
        if point is None:
            return
        point.scale = rng.choice([rng.randint(-100, 100), MIN_SCALE - 1, MAX_SCALE + 1, -_INT32, _INT32 - 1])


def _bucket_lengths(rng, request) -> None:
    _, point = _pick_point(rng, request, "exponential_histogram")
    if point is None:
        return
    size = rng.choice([MAX_BUCKETS - 1, MAX_BUCKETS, MAX_BUCKETS + 1, 4 * MAX_BUCKETS])
    point.scale = rng.choice([0, 4, MAX_SCALE])
    low, high = index_range(point.scale)
    offset = rng.choice([0, -size // 2, low, high - size + 1])
    counts = [1] * size if rng.random() < 0.5 else list(rng.randbytes(size))
    _set_buckets(point, rng.choice(["positive", "negative"]), offset, counts)


_BAD_DOUBLES = [math.nan, math.inf, -math.inf, -1.0, -1e308, 1e308, -0.0, 5e-324]
_BAD_INTS = [-1, -(2**63), 2**63 - 1, 0]
_BAD_UINTS = [0, 1, 2**63 - 1, 2**63, 2**64 - 1]


def _numbers(rng, request) -> None:
    """NaN, infinite and negative numbers, and counts that disagree, in every kind of point."""
    for _ in range(rng.randint(1, 4)):
        metric, point = _pick_point(rng, request)
        if point is None:
            return
        kind = metric.WhichOneof("data")
        if kind in ("sum", "gauge"):
            if rng.random() < 0.5:
                point.as_double = rng.choice(_BAD_DOUBLES)
            else:
                point.as_int = rng.choice(_BAD_INTS)
            continue
        if kind != "exponential_histogram":  # an explicit-bucket histogram, as other senders send (ignored)
            point.sum = rng.choice(_BAD_DOUBLES)
            continue
        name = rng.choice(["sum", "min", "max", "count", "zero_count", "zero_threshold", "bucket", "consistent"])
        if name in ("sum", "min", "max", "zero_threshold"):
            setattr(point, name, rng.choice(_BAD_DOUBLES))
        elif name in ("count", "zero_count"):
            setattr(point, name, rng.choice(_BAD_UINTS))
        elif name == "bucket" and point.positive.bucket_counts:
            point.positive.bucket_counts[rng.randrange(len(point.positive.bucket_counts))] = rng.choice(_BAD_UINTS)
        else:  # huge counts that add up, or overflow int64 together
            huge = rng.choice([2**62, 2**63 - 1, 2**64 - 1])
            _set_buckets(point, "positive", point.positive.offset, [huge, huge][: rng.randint(1, 2)])


def _times(rng, request, now_ns: int) -> None:
    choices = [0, 1, 2**63, 2**64 - 1, now_ns + 3600 * 10**9, now_ns + 700 * 10**9, now_ns - 365 * 86400 * 10**9]
    choices += [now_ns - 10**9, now_ns + 10**9, 10**18]
    for _ in range(rng.randint(1, 3)):
        _, point = _pick_point(rng, request)
        if point is None:
            return
        which = rng.choice(["start", "time", "both", "swap"])
        if which in ("start", "both"):
            point.start_time_unix_nano = rng.choice(choices)
        if which in ("time", "both"):
            point.time_unix_nano = rng.choice(choices)
        if which == "swap":
            point.start_time_unix_nano, point.time_unix_nano = (
                (point.time_unix_nano + 1) % _UINT64,
                point.start_time_unix_nano,
            )


def _time_jumps(rng, request, now_ns: int) -> None:
    """Every point minutes ahead of the clock, within the analyzer's max_future_s (600 s): its source's watermark
    jumps, and every model version of that source closes a window per second of the jump."""
    ahead = rng.choice([30, 120, 590]) * 10**9
    for point in _points(request):
        point.start_time_unix_nano += ahead
        point.time_unix_nano += ahead


def _long_text(rng, limit: int) -> str:
    size = rng.choice([limit - 1, limit, limit, limit + 1, limit + 1, 10 * limit] * 4 + [300 * limit])
    return rng.choice(["x", "é", "\U0001f600", "\n", "\x00"]) * size


def _names(rng, request) -> None:
    """Names and values near and over the caps, in every place a name or a value goes."""
    where = rng.choice(["metric", "key", "value", "model", "feature", "scope", "resource", "items", "bytes", "kvlist"])
    metric, point = _pick_point(rng, request)
    if point is None:
        return
    if where == "metric":
        metric.name = _long_text(rng, MAX_NAME)
    elif where == "key":
        point.attributes.add(key=_long_text(rng, MAX_NAME)).value.string_value = "v"
    elif where in ("value", "model", "feature"):
        keys = {"value": None, "model": semconv.MODEL_NAME, "feature": semconv.FEATURE_NAME}
        targets = [kv for kv in point.attributes if keys[where] in (None, kv.key)] or list(point.attributes)
        if targets:
            rng.choice(targets).value.string_value = _long_text(rng, MAX_VALUE)
    elif where == "scope":
        request.resource_metrics[0].scope_metrics[0].scope.name = _long_text(rng, MAX_NAME)
    elif where == "resource":
        resource = request.resource_metrics[0].resource
        resource.attributes.add(key="service.instance.id").value.string_value = _long_text(rng, MAX_VALUE)
    elif where == "items":
        values = point.attributes.add(key="list").value.array_value.values
        for i in range(rng.choice([MAX_ITEMS, MAX_ITEMS + 1, 10 * MAX_ITEMS])):
            values.add(int_value=i)
    elif where == "bytes":
        point.attributes.add(key="raw").value.bytes_value = os.urandom(rng.choice([MAX_VALUE // 2, MAX_VALUE // 2 + 1]))
    else:
        values = point.attributes.add(key="kv").value.kvlist_value.values
        for i in range(rng.choice([MAX_ITEMS, MAX_ITEMS + 1])):
            values.add(key=f"k{i}").value.double_value = i


def _flood(rng, request) -> None:
    """Distinct model, version, feature, category and metric names in every point: cardinality floods."""
    tag = f"{rng.getrandbits(48):012x}"
    for metric in _metrics(request):
        if rng.random() < 0.2:
            metric.name = f"fz.metric.{tag}"
        kind = metric.WhichOneof("data")
        for point in getattr(metric, kind).data_points:
            for kv in point.attributes:
                if kv.key in (semconv.MODEL_NAME, semconv.MODEL_VERSION, semconv.FEATURE_NAME) or rng.random() < 0.1:
                    kv.value.string_value = f"fz-{tag}-{rng.getrandbits(16):04x}"
            if rng.random() < 0.3:
                point.attributes.add(key=f"fz.key.{tag}").value.string_value = tag


def _unknown(rng, request) -> None:
    """Points of no model, of an empty model name, of a model named by a number, or of a task no one knows."""
    for point in _points(request):
        for kv in list(point.attributes):
            if kv.key == semconv.MODEL_NAME:
                change = rng.choice(["drop", "empty", "int", "unknown", "array"])
                if change == "drop":
                    point.attributes.remove(kv)
                elif change == "empty":
                    kv.value.string_value = ""
                elif change == "int":
                    kv.value.int_value = rng.choice([0, -1, 2**63 - 1])
                elif change == "unknown":
                    kv.value.string_value = f"unknown-{rng.randrange(1000)}"
                else:
                    kv.value.array_value.values.add(string_value="seed-clf")
            elif kv.key == semconv.MODEL_TASK:
                kv.value.string_value = rng.choice(["", "telepathy", "classification\n"])


def _temporality(rng, request) -> None:
    for metric in _metrics(request):
        kind = metric.WhichOneof("data")
        if kind in ("sum", "histogram", "exponential_histogram") and rng.random() < 0.5:
            data = getattr(metric, kind)
            data.aggregation_temporality = rng.choice([0, 1, 2, 3, 2**31 - 1, -1])
            if kind == "sum":
                data.is_monotonic = not data.is_monotonic


def _kinds(rng, request) -> None:
    """Metrics turned into kinds the SDK never sends: summaries, explicit histograms (well and badly formed),
    gauges of histograms' names, and metrics with no data at all."""
    metric, point = _pick_point(rng, request)
    if metric is None:
        return
    change = rng.choice(["summary", "explicit", "explicit", "gauge", "empty"])
    attributes = list(point.attributes)
    start, end = point.start_time_unix_nano, point.time_unix_nano
    if change == "summary":
        metric.summary.data_points.add(start_time_unix_nano=start, time_unix_nano=end, count=1, sum=1.0)
    elif change == "explicit":
        size = rng.choice([0, 1, 15, 1000, 100_000])
        base = rng.uniform(-1e6, 0)
        bounds = [base + 1e-3 * i for i in range(size)]
        if bounds and rng.random() < 0.5:
            bounds[rng.randrange(size)] = rng.choice([math.nan, math.inf, bounds[0] - 1])
        counts = [rng.choice([0, 1, 2**63])] * (size + rng.choice([1, 1, 0, 2]))
        data = metric.histogram
        data.aggregation_temporality = rng.choice([1, 2])
        data.data_points.add(
            attributes=attributes,
            start_time_unix_nano=start,
            time_unix_nano=end,
            explicit_bounds=bounds,
            bucket_counts=counts,
            count=sum(counts) % _UINT64 if rng.random() < 0.8 else rng.choice(_BAD_UINTS),
            sum=rng.choice([1.0, math.nan, -5.0]),
        )
    elif change == "gauge":
        metric.gauge.data_points.add(
            attributes=attributes, start_time_unix_nano=start, time_unix_nano=end, as_double=rng.random()
        )
    else:
        metric.ClearField(metric.WhichOneof("data"))


def _nest(rng, value: AnyValue, depth: int) -> None:
    for _ in range(depth):
        value = value.array_value.values.add() if rng.random() < 0.5 else value.kvlist_value.values.add(key="k").value
    value.string_value = "deep"


def _nesting(rng, request) -> None:
    if isinstance(request, ExportMetricsServiceRequest):
        _, point = _pick_point(rng, request)
        attributes = point.attributes if point is not None else request.resource_metrics[0].resource.attributes
    else:
        attributes = rng.choice(_spans(request)).attributes
    _nest(rng, attributes.add(key="nested").value, rng.choice([5, 31, 60, 98, 200]))


def _span_damage(rng, request, now_ns: int) -> None:
    """Spans with ids of the wrong length, ends before starts, floods of callers and malformed fingerprints."""
    for span in _spans(request):
        change = rng.choice(["ids", "times", "caller", "fingerprint", "status", "kind", "events", "name", "none"])
        if change == "ids":
            span.trace_id = os.urandom(rng.choice([0, 8, 15, 17, 32]))
            span.span_id = os.urandom(rng.choice([0, 4, 7, 9, 16]))
        elif change == "times":
            span.start_time_unix_nano = rng.choice([0, now_ns + 10**12, 2**64 - 1, span.end_time_unix_nano + 1])
        elif change == "caller":
            span.attributes.add(key=semconv.CALLER_ID).value.string_value = (
                f"{rng.getrandbits(128):032x}" if rng.random() < 0.8 else _long_text(rng, MAX_VALUE)
            )
        elif change == "fingerprint":
            value = span.attributes.add(key="otelml.input.fingerprint").value
            for _ in range(rng.choice([0, 1, 64, 65, MAX_ITEMS + 1])):
                item = value.array_value.values.add()
                if rng.random() < 0.5:
                    item.string_value = rng.choice(["", "zz", "0" * 16 + ".", "aecb113364dbfd02.d726768e" * 3])
                else:
                    item.int_value = rng.randrange(-(2**63), 2**63)
        elif change == "status":
            span.status.code = rng.choice([2, 3, 2**31 - 1, -1])
        elif change == "kind":
            span.kind = rng.choice([0, 6, 2**31 - 1])
        elif change == "events":
            for i in range(rng.choice([1, 100, 1000])):
                span.events.add(name=f"e{i}", time_unix_nano=i)
        elif change == "name":
            span.name = _long_text(rng, MAX_NAME)
        for kv in span.attributes:
            if kv.key == semconv.MODEL_NAME and rng.random() < 0.3:
                kv.value.string_value = f"fz-span-{rng.getrandbits(32):08x}"
            elif kv.key == "otelml.batch.size" and rng.random() < 0.3:
                kv.value.int_value = rng.choice([-1, 0, 2**63 - 1])


def _cross(rng, request) -> None:
    """Nothing changes in the message; the case goes to the other signal's endpoint."""


def _combined(rng, request, now_ns: int) -> None:
    for name in rng.sample(sorted(set(_STRUCTURED_METRICS) - {"nesting", "time-jumps"}), 3):
        _apply(name, rng, request, now_ns)


_STRUCTURED_METRICS = {
    "offsets": _extreme_offsets,
    "scales": _scales,
    "bucket-lengths": _bucket_lengths,
    "numbers": _numbers,
    "times": _times,
    "time-jumps": _time_jumps,
    "names": _names,
    "flood": _flood,
    "unknown-models": _unknown,
    "temporality": _temporality,
    "kinds": _kinds,
    "nesting": _nesting,
}
_WITH_NOW = {_times, _time_jumps, _span_damage, _combined}


def _apply(name: str, rng, request, now_ns: int) -> None:
    mutate = _STRUCTURED.get(name) or _STRUCTURED_METRICS[name]
    if mutate in _WITH_NOW:
        mutate(rng, request, now_ns)
    else:
        mutate(rng, request)


_STRUCTURED = _STRUCTURED_METRICS | {"combined": _combined}


# byte-level damage of a serialized request
def _flip(rng, body: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(1, 8)):
        if data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


def _truncate(rng, body: bytes) -> bytes:
    return body[: rng.randrange(len(body) + 1)]


def _splice(rng, body: bytes) -> bytes:
    i, j = sorted(rng.randrange(len(body) + 1) for _ in range(2))
    change = rng.choice(["repeat", "delete", "insert", "swap"])
    if change == "repeat":
        return body[:j] + body[i:j] * rng.choice([2, 3, 100]) + body[j:]
    if change == "delete":
        return body[:i] + body[j:]
    if change == "insert":
        return body[:i] + rng.randbytes(rng.randint(1, 64)) + body[i:]
    return body[j:] + body[:i] + body[i:j]


def _garbage(rng, body: bytes) -> bytes:
    return rng.choice([b"", rng.randbytes(rng.randint(1, 4096)), b"\xff" * 100, b"\x0a\xff\xff\xff\xff\x0f"])


_BYTES = {"flip": _flip, "truncate": _truncate, "splice": _splice, "garbage": _garbage}


# JSON-level damage
def as_json(message) -> dict:
    """OTLP/JSON of a message: camelCase names, trace and span ids as hex."""
    data = json_format.MessageToDict(message)
    _hex_ids(data)
    return data


def _hex_ids(value) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("traceId", "spanId", "parentSpanId") and isinstance(item, str):
                value[key] = base64.b64decode(item).hex()
            else:
                _hex_ids(item)
    elif isinstance(value, list):
        for item in value:
            _hex_ids(item)


def _nodes(value, found: list) -> list:
    """Every (container, key) in a JSON document."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found.append((value, key))
        _nodes(item, found)
    return found


_WRONG = ["x", "", -1, 1.5, 1e308, 2**70, -(2**70), True, None, [], {}, [1, "a"], {"a": 1}, "NaN", "-Infinity", "0x10"]


def _json_types(rng, data: dict) -> bytes:
    nodes = _nodes(data, [])
    for _ in range(rng.randint(1, 5)):
        if nodes:
            container, key = rng.choice(nodes)
            container[key] = rng.choice(_WRONG)
    return json.dumps(data).encode()


def _json_deep(rng, data: dict) -> bytes:
    depth = rng.choice([50, 500, 5000, 100_000])
    opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
    nodes = _nodes(data, [])
    text = opener * depth + "1" + closer * depth
    marker = "__deep__"
    if nodes:
        container, key = rng.choice(nodes)
        container[key] = marker
    else:
        data["resourceMetrics"] = marker
    return json.dumps(data).replace(json.dumps(marker), text, 1).encode()


def _json_ids(rng, data: dict) -> bytes:
    text = json.dumps(data)
    for key in ("traceId", "spanId", "parentSpanId"):
        text = text.replace(f'"{key}": "', f'"{key}": "{rng.choice(["zz", "0", "g1", "-", chr(0x660)])}', 1)
    return text.encode()


def _json_text(rng, data: dict) -> bytes:
    body = json.dumps(data).encode()
    change = rng.choice(["flip", "truncate", "utf8", "surrogate", "bom", "nan"])
    if change == "flip":
        return _flip(rng, body)
    if change == "truncate":
        return _truncate(rng, body)
    if change == "utf8":
        return body.replace(b'"', b'"\xff\xfe', 1)
    if change == "surrogate":
        return body.replace(b'"name": "', b'"name": "\\ud800', 1)
    if change == "bom":
        return b"\xef\xbb\xbf" + body
    return body.replace(b'"asDouble": ', b'"asDouble": NaN, "x": ', 1).replace(b'"sum": ', b'"sum": Infinity, "y": ', 1)


_JSON = {"json-types": _json_types, "json-deep": _json_deep, "json-ids": _json_ids, "json-text": _json_text}


# transport-level damage, HTTP only
def _bomb(megabytes: int) -> bytes:
    return gzip.compress(b"\0" * (megabytes << 20), compresslevel=9)


_BOMB = None
_BOMB_LOCK = threading.Lock()


def gzip_bomb() -> bytes:
    """80 MiB of zeros gzipped (about 80 KB): past the 64 MiB the analyzer inflates."""
    global _BOMB
    with _BOMB_LOCK:
        if _BOMB is None:
            _BOMB = _bomb(80)
    return _BOMB


def _transport(rng, case: Case) -> None:
    change = rng.choice(["content-type", "content-type", "bad-gzip", "bad-gzip", "encoding", "bomb", "token", "empty"])
    case.family = f"transport:{change}"
    if change == "content-type":
        case.content_type = rng.choice(
            [None, "", "text/plain", "application/json", "APPLICATION/X-PROTOBUF", "application/x-protobuf; q=1"]
            + ["application/grpc", "multipart/form-data; boundary=x", "application/json; charset=utf-8" * 50]
        )
    elif change == "bad-gzip":
        compressed = gzip.compress(case.body)
        case.encoding = "gzip"
        case.body = rng.choice(
            [
                case.body,
                compressed[: rng.randrange(len(compressed))],
                _flip(rng, compressed),
                compressed + b"trailing",
                compressed + compressed,
                gzip.compress(compressed),
                b"",
            ]
        )
    elif change == "encoding":
        case.encoding = rng.choice(["br", "deflate", "gzip, gzip", "GZIP", "identity", "x" * 1000])
        if case.encoding == "GZIP":
            case.body = gzip.compress(case.body)
    elif change == "bomb":
        case.encoding = "gzip"
        case.body = gzip_bomb()
    elif change == "token":
        case.token = rng.choice([None, "", "fuzz-toke", TOKEN + "\n", TOKEN * 100, "Bearer " + TOKEN])
    else:
        case.body = b""


FAMILIES = {  # family -> weight
    **{name: 4 for name in ("offsets", "scales", "bucket-lengths", "numbers", "times", "names", "flood")},
    **{name: 2 for name in ("unknown-models", "temporality", "kinds", "nesting", "combined", "spans")},
    "duplicate": 1,
    "cross": 1,
    **{name: 3 for name in _BYTES},
    **{name: 2 for name in _JSON},
    "transport": 4,
    "valid": 2,
    "time-jumps": 1,
}
# Left out unless asked for by name: one point 590 s ahead from a source of N model versions closes 590 N one-second
# windows under the ingest lock (minutes, with many versions), which stalls the analyzer (state.py; reported)
OPT_IN = frozenset({"time-jumps"})
_FAMILY_NAMES = sorted(FAMILIES)
_FAMILY_WEIGHTS = [FAMILIES[name] for name in _FAMILY_NAMES]
_DEFAULT_WEIGHTS = [0 if name in OPT_IN else FAMILIES[name] for name in _FAMILY_NAMES]


_PROTOBUF_ONLY = {*_BYTES, "duplicate", "nesting"}  # damage JSON cannot carry (or deeper than json_format goes)


def make_case(seeds: dict, seed: int, index: int, now_ns: int | None = None, families=None) -> Case:
    """Request ``index`` of the run with ``seed``: one mutation of a seed request, on one transport and encoding."""
    rng = random.Random(f"otelml-fuzz:{seed}:{index}")
    now_ns = time.time_ns() if now_ns is None else now_ns
    family = rng.choices(_FAMILY_NAMES, _FAMILY_WEIGHTS if families else _DEFAULT_WEIGHTS)[0]
    if families:  # a run of some families only: the same draw, mapped onto them
        family = sorted(families)[_FAMILY_NAMES.index(family) % len(families)]
    signal = "traces" if family == "spans" or (family not in _STRUCTURED_METRICS and rng.random() < 0.3) else "metrics"
    if family in _STRUCTURED_METRICS or family == "combined":
        signal = "metrics"
    message = restamped(seeds, signal, rng.randrange(len(seeds[signal])), now_ns)
    if family == "spans":
        _span_damage(rng, message, now_ns)
    elif family in _STRUCTURED:
        _apply(family, rng, message, now_ns)
    case = Case(index, family, rng.choice(["grpc", "http", "http"]), signal, b"")
    if family in _JSON:
        case.transport, case.content_type = "http", "application/json"
        case.body = _JSON[family](rng, as_json(message))
        return case
    case.body = message.SerializeToString()
    if family in _BYTES:
        case.body = _BYTES[family](rng, case.body)
    elif family == "duplicate":  # serialized messages concatenated merge: every resource repeated
        case.body *= rng.choice([2, 10, 50])
    elif family == "cross":
        case.signal = "traces" if signal == "metrics" else "metrics"
    if family == "transport":
        case.transport = "http"
        _transport(rng, case)
    elif case.transport == "http" and family not in _PROTOBUF_ONLY and rng.random() < 0.35:
        case.content_type = "application/json"
        case.body = json.dumps(as_json(message)).encode()
    if case.transport == "http" and case.encoding is None and rng.random() < 0.3:
        case.encoding, case.body = "gzip", gzip.compress(case.body, compresslevel=1)
    return case


# --- sending ----------------------------------------------------------------------------------------------------------
@dataclass
class Answer:
    klass: str  # one of CLASSES
    detail: str  # HTTP status or gRPC code, or the error


def classify_http(status: int) -> str:
    if 200 <= status < 300:
        return "ok"
    if status in (429, 503):
        return "overload"
    if 400 <= status < 500:
        return "rejected"
    return "failure"


def classify_grpc(code) -> str:
    if code == grpc.StatusCode.OK:
        return "ok"
    if code in _OVERLOAD_CODES:
        return "overload"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return "wedge"
    if code in _FAILURE_CODES:
        return "failure"
    return "rejected"


class Sender:
    """One thread's connections to the analyzer: a keep-alive HTTP connection and a gRPC channel."""

    def __init__(self, ports: tuple, timeout_s: float = REQUEST_TIMEOUT_S):
        self.grpc_port, self.http_port = ports[0], ports[1]
        self.timeout_s = timeout_s
        self._http = None
        self._channel = grpc.insecure_channel(
            f"127.0.0.1:{self.grpc_port}", options=[("grpc.max_send_message_length", 128 << 20)]
        )
        self._stubs = {
            signal: self._channel.unary_unary(method, request_serializer=None, response_deserializer=None)
            for signal, method in GRPC_METHODS.items()
        }

    def close(self) -> None:
        self._channel.close()
        if self._http is not None:
            self._http.close()

    def send(self, case: Case) -> tuple[Answer, bytes]:
        """The answer's class, and the response body (HTTP) or details (gRPC)."""
        if case.transport == "grpc":
            return self._grpc(case)
        return self._post(case)

    def _grpc(self, case: Case) -> tuple[Answer, bytes]:
        metadata = [] if case.token is None else [("authorization", f"Bearer {case.token}")]
        try:
            reply = self._stubs[case.signal](case.body, timeout=self.timeout_s, metadata=metadata)
            return Answer("ok", "OK"), reply
        except grpc.RpcError as exc:
            code = exc.code()
            return Answer(classify_grpc(code), f"{code.name}: {exc.details()}"), b""
        except ValueError as exc:  # metadata the gRPC client itself refuses to send (a newline in the token)
            return Answer("rejected", f"client refused: {exc}"), b""

    def _post(self, case: Case) -> tuple[Answer, bytes]:
        headers = {}
        if case.content_type is not None:
            headers["Content-Type"] = case.content_type
        if case.encoding is not None:
            headers["Content-Encoding"] = case.encoding
        if case.token is not None:
            headers["Authorization"] = f"Bearer {case.token}"
        for attempt in range(2):  # a kept-alive connection the server closed meanwhile is retried once, fresh
            fresh = self._http is None
            if fresh:
                self._http = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=self.timeout_s)
            try:
                self._http.request("POST", f"/v1/{case.signal}", body=case.body, headers=headers)
                response = self._http.getresponse()
                body = response.read()
                if response.will_close:
                    self._drop()
                return Answer(classify_http(response.status), str(response.status)), body
            except ValueError as exc:  # headers http.client refuses to send
                self._drop()
                return Answer("rejected", f"client refused: {exc}"), b""
            except TimeoutError as exc:
                self._drop()
                return Answer("wedge", f"time-out: {exc}"), b""
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                if fresh or attempt:
                    return Answer("wedge", f"{type(exc).__name__}: {exc}"), b""
        raise AssertionError("unreachable")

    def _drop(self) -> None:
        if self._http is not None:
            self._http.close()
        self._http = None


# --- a batch of cases, in threads -------------------------------------------------------------------------------------
@dataclass
class Tally:
    counts: dict = field(default_factory=dict)  # class -> requests
    families: dict = field(default_factory=dict)  # (family, class) -> requests
    transports: dict = field(default_factory=dict)  # transport -> requests
    problems: list = field(default_factory=list)  # dicts: index, family, transport, class, detail, saved
    slowest_s: float = 0.0

    def add(self, other: "Tally") -> None:
        for name in ("counts", "families", "transports"):
            mine = getattr(self, name)
            for key, value in getattr(other, name).items():
                mine[key] = mine.get(key, 0) + value
        self.problems += other.problems
        self.slowest_s = max(self.slowest_s, other.slowest_s)

    @property
    def requests(self) -> int:
        return sum(self.counts.values())


_LOCAL = threading.local()
_WORKER: dict = {}


def _sender(ports) -> Sender:
    sender = getattr(_LOCAL, "sender", None)
    if sender is None or (sender.grpc_port, sender.http_port) != tuple(ports[:2]):
        sender = _LOCAL.sender = Sender(ports)
    return sender


def run_case(seeds: dict, seed: int, index: int, ports, out_dir: str) -> Tally:
    """Make, send and classify one case; a failure or wedge is saved under ``out_dir`` with what it was."""
    case = make_case(seeds, seed, index, families=seeds.get("families"))
    started = time.monotonic()
    answer, reply = _sender(ports).send(case)
    tally = Tally({answer.klass: 1}, {(case.family, answer.klass): 1}, {case.transport: 1})
    tally.slowest_s = time.monotonic() - started
    if answer.klass in ("failure", "wedge"):
        tally.problems.append(save_problem(case, answer, reply, seed, out_dir))
    return tally


def save_problem(case: Case, answer: Answer, reply: bytes, seed: int, out_dir: str) -> dict:
    where = Path(out_dir) / "problems"
    where.mkdir(parents=True, exist_ok=True)
    stem = where / f"seed{seed}-{case.index}"
    stem.with_suffix(".body").write_bytes(case.body)
    problem = {
        "seed": seed,
        "index": case.index,
        "family": case.family,
        "class": answer.klass,
        "detail": answer.detail[:500],
        "transport": case.transport,
        "signal": case.signal,
        "content_type": case.content_type,
        "encoding": case.encoding,
        "reply": reply[:500].decode(errors="replace"),
        "body": str(stem.with_suffix(".body")),
        "replay": f"bench/fuzz.py --seed {seed} --start {case.index} --requests 1",
    }
    stem.with_suffix(".json").write_text(json.dumps(problem, indent=1))
    return problem


def run_batch(seeds: dict, seed: int, indices: list, ports, out_dir: str, threads: int) -> Tally:
    """Send ``indices`` from ``threads`` threads; the tally of their answers."""
    total = Tally()
    with futures.ThreadPoolExecutor(threads, thread_name_prefix="fuzz") as pool:
        for tally in pool.map(lambda i: run_case(seeds, seed, i, ports, out_dir), indices):
            total.add(tally)
    return total


def _init_worker(seeds: dict) -> None:
    _WORKER["seeds"] = seeds


def _worker_batch(seed: int, indices: list, ports, out_dir: str, threads: int) -> Tally:
    return run_batch(_WORKER["seeds"], seed, indices, ports, out_dir, threads)


# --- the analyzer under test ------------------------------------------------------------------------------------------
FLAGS = ("--lateness", "3", "--idle-timeout", "3", "--warmup", "200", "--auth-token", TOKEN)
# Caps of the analyzer under fuzzing (its [analyzer.limits]); the defaults (1000 models) are for a bigger machine: a
# flood fills them within a hundred requests, and every second then closes and checkpoints a window of each model
LIMITS = {"max_models": 100, "max_versions": 10, "max_features": 100, "history": 120}


class Target:
    """A real analyzer process on loopback with a state directory, and the checks made on it."""

    def __init__(self, out_dir: Path, seeds: dict, limits: dict | None = None, window: float = 1.0):
        from otelml.testing import free_port

        self.out_dir = Path(out_dir)
        self.config = self.out_dir / "analyzer.toml"
        self.config.write_text("[analyzer.limits]\n" + "".join(f"{k} = {v}\n" for k, v in (limits or {}).items()))
        self.state_dir = str(self.out_dir / "state")
        self.seeds = seeds
        self.window = window
        self.ports = tuple(free_port() for _ in range(3))
        self.proc = None
        self.starts = 0
        self.max_rss_mb = 0.0
        self.max_health_s = 0.0
        self.canary_sent_ns = 0
        self.canary_closed = None
        self.canary_late = 0  # the canary's points rejected as late (see send_canary)
        self._sender = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports[2]}"

    def start(self) -> float:
        """Launch (or relaunch) the analyzer; seconds until it answered ``/readyz``."""
        from otelml.testing import launch_analyzer

        self.starts += 1
        self._log = open(self.out_dir / f"analyzer-{self.starts}.log", "w")
        started = time.monotonic()
        flags = (*FLAGS, "--window", str(self.window), "--config", str(self.config))
        self.proc = launch_analyzer(self.ports, self.state_dir, *flags, output=self._log, ready_within=120)
        return time.monotonic() - started

    def pin_canary(self) -> None:
        """Pin the canary's references before it first sends, as a team pins the models that must always get in: at
        the cap on models, a flood of names that keep sending otherwise holds every place (docs/analyzer.md)."""
        rng = np.random.default_rng(0)
        for (model, version), columns in CANARY_FEATURES.items():
            data = self.out_dir / f"reference-{model}.csv"
            np.savetxt(
                data, rng.lognormal(size=(500, len(columns))), delimiter=",", header=",".join(columns), comments=""
            )
            command = ["reference", "build", "--state-dir", self.state_dir, "--model", model, "--version", version]
            subprocess.run(
                [sys.executable, "-m", "otelml.cli", *command, str(data)], check=True, capture_output=True, timeout=120
            )

    def stop(self) -> None:
        """End the analyzer (SIGTERM, then SIGKILL) and close the connections; safe to call twice."""
        if self._sender is not None:
            self._sender.close()
            self._sender = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None:
            self._log.close()

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()
        if self._sender is not None:
            self._sender.close()
            self._sender = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, size: int = 3000) -> str:
        path = self.out_dir / f"analyzer-{self.starts}.log"
        return path.read_text(errors="replace")[-size:] if path.exists() else ""

    def rss_mb(self) -> float:
        try:
            with open(f"/proc/{self.proc.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1]) / 1024
                        self.max_rss_mb = max(self.max_rss_mb, rss)
                        return rss
        except OSError:
            pass
        return 0.0

    def get(self, path: str, timeout_s: float = HEALTH_BOUND_S):
        """``(status, parsed JSON, seconds)`` of a GET on the status API with the token; status None on errors."""
        connection = http.client.HTTPConnection("127.0.0.1", self.ports[2], timeout=timeout_s)
        started = time.monotonic()
        try:
            connection.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
            response = connection.getresponse()
            body = response.read()
            return response.status, json.loads(body) if response.status == 200 else body, time.monotonic() - started
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return None, str(exc), time.monotonic() - started
        finally:
            connection.close()

    def health(self) -> dict:
        """``/api/health``; raises AssertionError unless it answered 200 within HEALTH_BOUND_S."""
        status, body, seconds = self.get("/api/health")
        self.max_health_s = max(self.max_health_s, seconds)
        assert status == 200, f"/api/health answered {status} after {seconds:.2f} s: {body}"
        return body

    def canary_windows(self) -> int:
        status, body, _ = self.get("/api/models", timeout_s=30)
        assert status == 200, f"/api/models answered {status}: {body}"
        return sum(m["windows_closed"] for m in body["models"] if m["model"].startswith("canary-"))

    def send_canary(self, transport: str = "http", deadline_s: float = 30.0) -> None:
        """Send the canary's valid request until it is accepted whole; overload answers are retried."""
        if self._sender is None:
            self._sender = Sender(self.ports)
        wait = self.canary_sent_ns / 1e9 + 1.05 - time.time()  # a second apart: each send moves its data on
        if wait > 0:
            time.sleep(wait)
        deadline = time.monotonic() + deadline_s
        turned_away = False
        while True:
            now = time.time_ns()
            case = Case(-1, "canary", transport, "metrics", canary_request(self.seeds, now))
            answer, reply = self._sender.send(case)
            if answer.klass == "ok":
                partial = ExportMetricsServiceResponse.FromString(reply).partial_success
                reasons = [r for r in partial.error_message.split("; ") if r]
                # at the cap on models, a new (or evicted) model's first request is turned away by design and its
                # second gets in: the canary, evicted while on probation by a flood, is a new model again
                if reasons and not turned_away and all("over the cap on models or versions" in r for r in reasons):
                    turned_away = True
                    continue
                # a point from any source up to max_future_s ahead closes the windows of every model not in its
                # request (state.py's quiet mark), so an on-time sender's points can be late: counted, not failed
                if all(": late point, window " in r for r in reasons):
                    self.canary_late += partial.rejected_data_points
                else:
                    raise AssertionError(f"the canary's valid request had points rejected: {reasons[:3]}")
                self.canary_sent_ns = now
                return
            assert answer.klass == "overload" and time.monotonic() < deadline, (
                f"the canary's valid request over {transport} was answered {answer.klass} ({answer.detail})"
            )
            time.sleep(0.5)

    def check(self, final: bool = False) -> dict:
        """Alive, healthy within the bound, RSS under the bound, the canary accepted over both transports and its
        windows still closing. Raises AssertionError saying what broke."""
        assert self.alive(), f"the analyzer exited ({self.proc.returncode}):\n{self.log_tail()}"
        health = self.health()
        rss = self.rss_mb()
        assert rss < MAX_RSS_MB, f"analyzer RSS {rss:.0f} MB over {MAX_RSS_MB:.0f} MB"
        closed = self.canary_windows()
        for transport in ("http", "grpc"):
            self.send_canary(transport)
        if self.canary_closed is not None or final:
            deadline = time.monotonic() + 30
            while self.canary_windows() <= (self.canary_closed or closed):
                assert time.monotonic() < deadline, "the canary's windows stopped closing"
                time.sleep(0.25)
        self.canary_closed = self.canary_windows()
        return health


class Watch(threading.Thread):
    """Samples the analyzer's RSS and ``/api/health`` latency while requests are in flight."""

    def __init__(self, target: Target, every_s: float = 1.0):
        super().__init__(name="fuzz-watch", daemon=True)
        self.target, self.every_s = target, every_s
        self.stopped = threading.Event()
        self.slow_health: list = []  # (seconds, status) of answers past the bound

    def run(self) -> None:
        while not self.stopped.wait(self.every_s):
            if not self.target.alive():
                return
            self.target.rss_mb()
            status, _, seconds = self.target.get("/api/health")
            self.target.max_health_s = max(self.target.max_health_s, seconds)
            if status != 200:
                self.slow_health.append((round(seconds, 2), status))


# --- a whole run ------------------------------------------------------------------------------------------------------
@dataclass
class Report:
    seed: int
    start: int
    requests: int
    seconds: float = 0.0
    tally: Tally = field(default_factory=Tally)
    checks: int = 0
    check_errors: list = field(default_factory=list)
    slow_health: list = field(default_factory=list)
    max_rss_mb: float = 0.0
    max_health_s: float = 0.0
    restart_s: float | None = None
    restart_error: str | None = None
    health: dict = field(default_factory=dict)
    restart_health: dict = field(default_factory=dict)
    errors_logged: dict = field(default_factory=dict)  # the analyzer's ERROR records (isolated failures), by kind
    canary_late: int = 0  # the canary's points rejected as late after another source's time jump

    @property
    def rate(self) -> float:
        return self.tally.requests / self.seconds if self.seconds else 0.0

    @property
    def passed(self) -> bool:
        counts = self.tally.counts
        return not (
            counts.get("failure") or counts.get("wedge") or self.check_errors or self.restart_error or self.slow_health
        )


def run(
    out_dir,
    *,
    seed: int = 1,
    requests: int = 1000,
    start: int = 0,
    check_every: int = 10_000,
    processes: int = 0,
    threads: int = 8,
    seeds: dict | None = None,
    families=None,
    limits: dict | None = LIMITS,
    window: float = 1.0,
    seconds: float | None = None,
    progress=None,
) -> Report:
    """Fuzz a fresh analyzer with cases ``start`` to ``start + requests - 1``, checking it every ``check_every``
    requests and at the end, then kill -9 it and restart it on the same state; ``seconds`` ends the sending early
    (after a whole batch). ``processes`` sender processes
    (0: threads of this process) of ``threads`` threads each. ``progress(report)`` is called after each check."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seeds = dict(seeds or capture_seeds(), families=families)
    report = Report(seed, start, requests)
    target = Target(out_dir, seeds, limits, window)
    pool = None
    watch = None
    try:
        target.pin_canary()
        target.start()
        target.check()
        if processes:
            import multiprocessing

            context = multiprocessing.get_context("spawn")
            pool = futures.ProcessPoolExecutor(processes, context, initializer=_init_worker, initargs=(seeds,))
        watch = Watch(target)
        watch.start()
        began = time.monotonic()
        for first in range(start, start + requests, check_every):
            chunk = list(range(first, min(first + check_every, start + requests)))
            if pool is None:
                report.tally.add(run_batch(seeds, seed, chunk, target.ports, str(out_dir), threads))
            else:
                parts = [chunk[w::processes] for w in range(processes)]
                jobs = [pool.submit(_worker_batch, seed, part, target.ports, str(out_dir), threads) for part in parts]
                for job in jobs:
                    report.tally.add(job.result())
            report.seconds = time.monotonic() - began
            _checked(report, target)
            if progress is not None:
                progress(report)
            if not target.alive() or (seconds is not None and report.seconds > seconds):
                break
        watch.stopped.set()
        watch.join(10)
        report.slow_health = watch.slow_health
        if target.alive():
            report.health = target.health()
            _checked(report, target, final=True)
            target.kill9()
            try:
                report.restart_s = target.start()
                target.check(final=True)
                report.restart_health = target.health()
            except (AssertionError, RuntimeError) as exc:
                report.restart_error = str(exc)[-3000:]
    finally:
        if watch is not None:
            watch.stopped.set()
        report.errors_logged.update(_errors_logged(out_dir))
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        target.stop()
        report.max_rss_mb, report.max_health_s = target.max_rss_mb, target.max_health_s
        report.canary_late = target.canary_late
    return report


def _errors_logged(out_dir: Path) -> dict:
    """``{what failed (a detector on a model, a window): times}`` from the ERROR records of the analyzer's logs
    (the request failures are counted from the answers)."""
    found: dict = {}
    for log in sorted(out_dir.glob("analyzer-*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if " ERROR otelml.analyzer " in line:
                what = line.split(" ERROR otelml.analyzer ", 1)[1]
                what = what.split(" on model ")[0] if what.startswith("detector ") else " ".join(what.split()[:1])
                found[what] = found.get(what, 0) + 1
    return found


def _checked(report: Report, target: Target, final: bool = False) -> None:
    report.checks += 1
    try:
        target.check(final=final)
    except AssertionError as exc:
        report.check_errors.append(f"after {report.tally.requests} requests: {exc}"[:3000])
    report.max_rss_mb, report.max_health_s = target.max_rss_mb, target.max_health_s
    report.canary_late = target.canary_late


def table(report: Report) -> str:
    """The run's figures as a plain-text table."""
    counts = report.tally.counts
    lines = [
        f"seed {report.seed}, requests {report.start} to {report.start + report.tally.requests - 1}",
        f"{'requests sent':<34}{report.tally.requests:>12,}",
        f"{'seconds':<34}{report.seconds:>12.1f}",
        f"{'requests/s':<34}{report.rate:>12.1f}",
    ]
    for klass in CLASSES:
        lines.append(f"{'  ' + klass:<34}{counts.get(klass, 0):>12,}")
    lines += [
        f"{'checks (health, RSS, canary)':<34}{report.checks:>12}",
        f"{'check errors':<34}{len(report.check_errors):>12}",
        f"{'/api/health slower than ' + str(HEALTH_BOUND_S) + ' s':<34}{len(report.slow_health):>12}",
        f"{'max /api/health seconds':<34}{report.max_health_s:>12.2f}",
        f"{'max RSS MB':<34}{report.max_rss_mb:>12.0f}",
        f"{'slowest answer seconds':<34}{report.tally.slowest_s:>12.2f}",
        f"{'restart after kill -9, seconds':<34}{_or_dash(report.restart_s):>12}",
        f"{'journal rows set aside':<34}{_or_dash(report.restart_health.get('journal_set_aside')):>12}",
        f"{'canary points late (time jumps)':<34}{report.canary_late:>12,}",
        f"{'detector failures (isolated)':<34}{_or_dash(report.health.get('detector_failures')):>12}",
        f"{'window failures (isolated)':<34}{_or_dash(report.health.get('window_failures')):>12}",
        f"{'verdict':<34}{'PASS' if report.passed else 'FAIL':>12}",
    ]
    for what, times in sorted(report.errors_logged.items()):
        lines.append(f"{'  logged: ' + what[:60]:<64}{times:>8,}")
    families = sorted({family for family, _ in report.tally.families})
    lines += ["", f"{'family':<26}" + "".join(f"{klass:>10}" for klass in CLASSES)]
    for family in families:
        row = [report.tally.families.get((family, klass), 0) for klass in CLASSES]
        lines.append(f"{family:<26}" + "".join(f"{n:>10,}" for n in row))
    for problem in report.tally.problems[:20]:
        lines.append(f"PROBLEM {problem['class']} {problem['family']} {problem['detail'][:120]}: {problem['replay']}")
    for error in [*report.check_errors, report.restart_error or ""]:
        if error:
            lines.append(f"CHECK FAILED: {error[:1500]}")
    return "\n".join(lines)


def _or_dash(value) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)

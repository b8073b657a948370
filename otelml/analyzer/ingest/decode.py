"""Decode OTLP export requests (metrics or traces, protobuf or JSON) into validated points and span summaries.

The wire formats are OTLP's: opentelemetry-proto messages, and OTLP/JSON as the OTLP specification defines it (trace
and span ids as hex strings, enums as names or integers, unknown fields ignored). A body that cannot be decoded at
all raises :class:`DecodeError`. A data point or span that decodes but breaks the data model is rejected and counted
in :class:`~otelml.analyzer.ingest.points.Decoded`, with the reason, and the rest of the request is kept.

Example:
    >>> body = b'''{"resourceMetrics": [{"scopeMetrics": [{"scope": {"name": "s"}, "metrics": [
    ...     {"name": "m", "gauge": {"dataPoints": [{"timeUnixNano": "5", "asDouble": 0.5}, {"asInt": "1"}]}}]}]}]}'''
    >>> decoded = decode_metrics(body, "application/json")
    >>> [(p.key.metric, p.kind, p.value) for p in decoded.points], decoded.rejected, decoded.errors
    ([('m', 'gauge', 0.5)], 1, ["metric 'm': time_unix_nano is 0"])
"""

from __future__ import annotations

import math

from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from ... import semconv
from .attributes import check_name, pairs, quote, span_attributes, stream_key
from .errors import DecodeError, Invalid, shorten
from .histograms import MAX_COUNT, explicit, exponential
from .otlp_json import parse_otlp_json
from .points import IDENTIFYING_RESOURCE_ATTRIBUTES, Decoded, Exemplar, Point, SpanSummary, StreamKey

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

# otelml's own metrics have one shape each (semconv): the analyzer reads a point of one of them as that shape, so a
# point of another shape (an explicit histogram added to the row count, a call count that is not monotonic) is
# rejected here, like any other point that breaks the data model
_SHAPES = {
    **dict.fromkeys(
        (
            semconv.METRIC_DURATION,
            semconv.METRIC_CONFIDENCE,
            semconv.METRIC_MARGIN,
            semconv.METRIC_PREDICTION_VALUE,
            semconv.METRIC_FEATURE_VALUE,
        ),
        "exponential_histogram",
    ),
    **dict.fromkeys(
        (
            semconv.METRIC_CALLS,
            semconv.METRIC_ROWS,
            semconv.METRIC_PREDICTIONS,
            semconv.METRIC_FEATURE_NONFINITE,
            semconv.METRIC_FEATURE_CATEGORY,
            semconv.METRIC_OUTCOMES,
            semconv.METRIC_TELEMETRY_DROPPED,
        ),
        "sum",
    ),
}
# otelml's per-feature metrics: the detectors read each point's feature by its name
_FEATURE_METRICS = frozenset(
    (semconv.METRIC_FEATURE_VALUE, semconv.METRIC_FEATURE_NONFINITE, semconv.METRIC_FEATURE_CATEGORY)
)
_TEMPORALITIES = metrics_pb2.AggregationTemporality
_NO_RECORDED_VALUE = metrics_pb2.DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK


# --- bodies -----------------------------------------------------------------------------------------------------------
def decode_metrics(body: bytes, content_type: str) -> Decoded:
    """Decode an OTLP/HTTP metrics body; ``content_type`` is ``application/x-protobuf`` or ``application/json``."""
    return decode_metrics_request(_parse(body, content_type, ExportMetricsServiceRequest))


def decode_traces(body: bytes, content_type: str) -> Decoded:
    """Decode an OTLP/HTTP traces body; ``content_type`` is ``application/x-protobuf`` or ``application/json``.

    Example:
        >>> try:
        ...     decode_traces(b"", "text/plain")
        ... except DecodeError as exc:
        ...     print(exc.status, exc)
        415 unsupported content type 'text/plain'; use application/x-protobuf or application/json
    """
    return decode_traces_request(_parse(body, content_type, ExportTraceServiceRequest))


def _parse(body: bytes, content_type: str, message_class):
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == PROTOBUF:
        try:
            return message_class.FromString(body)
        except ProtobufDecodeError:
            raise DecodeError(f"invalid OTLP protobuf: cannot parse {message_class.DESCRIPTOR.name}") from None
    if media_type == JSON:
        return parse_otlp_json(body, message_class)
    raise DecodeError(f"unsupported content type {shorten(content_type, 100)!r}; use {PROTOBUF} or {JSON}", status=415)


# --- metrics ----------------------------------------------------------------------------------------------------------
def decode_metrics_request(request: ExportMetricsServiceRequest) -> Decoded:
    """The valid points of a parsed request; invalid ones are rejected with a reason, never raised.

    Points flagged "no recorded value" (staleness markers) carry no data and are skipped without a rejection.
    """
    decoded = Decoded()
    for resource_metrics in request.resource_metrics:
        try:
            resource = _resource(resource_metrics.resource, resource_metrics.scope_metrics)
        except Invalid as exc:
            points = sum(len(getattr(m, m.WhichOneof("data")).data_points) for m in _metrics(resource_metrics))
            decoded.reject(f"resource: {exc}", count=points)
            continue
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                _decode_metric(metric, resource, scope_metrics.scope.name, decoded)
    return decoded


def _metrics(resource_metrics):
    return [m for s in resource_metrics.scope_metrics for m in s.metrics if m.WhichOneof("data")]


def _resource(resource, scopes) -> tuple:
    """The identifying resource attributes; raises ``Invalid`` for one over the length limits, or a scope name."""
    for scope in scopes:
        check_name("scope name", scope.scope.name)
    return pairs(resource.attributes, IDENTIFYING_RESOURCE_ATTRIBUTES)


def _decode_metric(metric, resource: tuple, scope: str, decoded: Decoded) -> None:
    data_kind = metric.WhichOneof("data")
    if data_kind is None:
        return
    data = getattr(metric, data_kind)
    try:
        check_name("metric name", metric.name)
        _check_shape(metric.name, data_kind, data)
        kind, convert, cumulative = _metric_kind(data_kind, data)
    except Invalid as exc:
        decoded.reject(f"metric {quote(metric.name)}: {exc}", count=len(data.data_points))
        return
    monotonic = data_kind == "sum" and data.is_monotonic
    for point in data.data_points:
        if point.flags & _NO_RECORDED_VALUE:
            continue
        try:
            _check_times(point)
            value = convert(point)
            if monotonic:
                _check_number(metric.name, value)
            key = stream_key(resource, scope, metric.name, point.attributes)
            _check_feature(metric.name, key)
        except Invalid as exc:
            decoded.reject(f"metric {quote(metric.name)}: {exc}")
            continue
        exemplars = tuple(_exemplar(e) for e in point.exemplars) if point.exemplars else ()
        decoded.points.append(
            Point(key, kind, point.start_time_unix_nano, point.time_unix_nano, cumulative, value, monotonic, exemplars)
        )


def _check_shape(name: str, data_kind: str, data) -> None:
    shape = _SHAPES.get(name)
    if shape is None or (data_kind == shape and (shape != "sum" or data.is_monotonic)):
        return
    wanted = "a monotonic sum" if shape == "sum" else "an exponential histogram"
    got = "a sum that is not monotonic" if data_kind == "sum" else f"a {data_kind.replace('_', ' ')}"
    raise Invalid(f"otelml defines {name} as {wanted}; this is {got}")


def _check_feature(name: str, key: StreamKey) -> None:
    """A feature is named by a string, and otelml's per-feature metrics name theirs (a point without one, or with a
    number for a name, failed the drift and range detectors of its model at every window)."""
    feature = key.attribute(semconv.FEATURE_NAME)
    if feature is None and name in _FEATURE_METRICS:
        raise Invalid(f"otelml's {name} needs the {semconv.FEATURE_NAME} attribute")
    if feature is not None and not isinstance(feature, str):
        raise Invalid(f"{semconv.FEATURE_NAME} must be a string, not {type(feature).__name__}")


def _check_number(name: str, value) -> None:
    """A monotonic sum's value: never negative, and one of otelml's counters at most MAX_COUNT (rows sent as 1e308
    summed to infinity, and references built from the windows failed on it)."""
    if value < 0:
        raise Invalid(f"monotonic sum {value} is negative")
    if value > MAX_COUNT and name in _SHAPES:
        raise Invalid(f"otelml's {name} of {value} in one point is more than {MAX_COUNT}")


def _metric_kind(data_kind: str, data):
    """``(point kind, converter, cumulative)`` for one metric's data."""
    if data_kind not in _CONVERTERS:
        raise Invalid(f"{data_kind} metrics are not supported")
    kind, convert = _CONVERTERS[data_kind]
    if data_kind == "gauge":
        return kind, convert, False
    temporality = data.aggregation_temporality
    if temporality == _TEMPORALITIES.AGGREGATION_TEMPORALITY_UNSPECIFIED:
        raise Invalid("aggregation temporality is unspecified")
    if temporality not in _TEMPORALITIES.values():
        raise Invalid(f"aggregation temporality {temporality} is unknown")
    return kind, convert, temporality == _TEMPORALITIES.AGGREGATION_TEMPORALITY_CUMULATIVE


def _check_times(point) -> None:
    if point.time_unix_nano == 0:
        raise Invalid("time_unix_nano is 0")
    if point.start_time_unix_nano > point.time_unix_nano:
        raise Invalid(f"start_time_unix_nano {point.start_time_unix_nano} > time_unix_nano {point.time_unix_nano}")


def _number(point) -> int | float:
    field = point.WhichOneof("value")
    if field is None:
        raise Invalid("data point has no value")
    value = getattr(point, field)
    if not math.isfinite(value):
        raise Invalid(f"value {value} is not finite")
    return value


_CONVERTERS = {
    "gauge": ("gauge", _number),
    "sum": ("sum", _number),
    "histogram": ("explicit", explicit),
    "exponential_histogram": ("exponential", exponential),
}


def _exemplar(exemplar) -> Exemplar:
    """An exemplar; ids of the wrong length become ""."""
    field = exemplar.WhichOneof("value")
    return Exemplar(
        trace_id=_hex_id(exemplar.trace_id, 16),
        span_id=_hex_id(exemplar.span_id, 8),
        time_unix_nano=exemplar.time_unix_nano,
        value=float(getattr(exemplar, field)) if field else None,
    )


def _hex_id(raw: bytes, size: int) -> str:
    return raw.hex() if len(raw) == size else ""


# --- traces -----------------------------------------------------------------------------------------------------------
def decode_traces_request(request: ExportTraceServiceRequest) -> Decoded:
    """The valid spans of a parsed request, as span summaries; invalid ones are rejected with a reason."""
    decoded = Decoded()
    for resource_spans in request.resource_spans:
        try:
            resource = _resource(resource_spans.resource, resource_spans.scope_spans)
        except Invalid as exc:
            decoded.reject(f"resource: {exc}", count=sum(len(s.spans) for s in resource_spans.scope_spans))
            continue
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                try:
                    decoded.spans.append(_span(span, resource))
                except Invalid as exc:
                    decoded.reject(f"span {quote(span.name)}: {exc}")
    return decoded


def _span(span, resource: tuple) -> SpanSummary:
    check_name("span name", span.name)
    if len(span.trace_id) != 16:
        raise Invalid(f"trace id has {len(span.trace_id)} bytes, not 16")
    if len(span.span_id) != 8:
        raise Invalid(f"span id has {len(span.span_id)} bytes, not 8")
    if span.end_time_unix_nano < span.start_time_unix_nano:
        raise Invalid(
            f"end_time_unix_nano {span.end_time_unix_nano} < start_time_unix_nano {span.start_time_unix_nano}"
        )
    return SpanSummary(
        resource=resource,
        name=span.name,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        start_unix_nano=span.start_time_unix_nano,
        end_unix_nano=span.end_time_unix_nano,
        attributes=span_attributes(span.attributes),
        error=span.status.code == Status.STATUS_CODE_ERROR,
    )

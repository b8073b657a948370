"""Decode OTLP export requests (metrics or traces, protobuf or JSON) into validated points and span summaries.

The wire formats are OTLP's: opentelemetry-proto messages, and OTLP/JSON as the OTLP specification defines it (trace
and span ids as hex strings, enums as names or integers, unknown fields ignored). A body that cannot be decoded at
all raises :class:`DecodeError`. A data point or span that decodes but breaks the data model is rejected and counted
in :class:`~otelml.analyzer.points.Decoded`, with the reason, and the rest of the request is kept.

Example:
    >>> body = b'''{"resourceMetrics": [{"scopeMetrics": [{"scope": {"name": "s"}, "metrics": [
    ...     {"name": "m", "gauge": {"dataPoints": [{"timeUnixNano": "5", "asDouble": 0.5}, {"asInt": "1"}]}}]}]}]}'''
    >>> decoded = decode_metrics(body, "application/json")
    >>> [(p.key.metric, p.kind, p.value) for p in decoded.points], decoded.rejected, decoded.errors
    ([('m', 'gauge', 0.5)], 1, ["metric 'm': time_unix_nano is 0"])
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re

import numpy as np
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from .. import semconv
from ..histogram import MAX_SCALE, MIN_SCALE, ExpHistogram
from .points import IDENTIFYING_RESOURCE_ATTRIBUTES, Decoded, Exemplar, ExplicitHistogram, Point, SpanSummary, StreamKey

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MAX_BUCKETS = 16384  # per sign of an exponential histogram
MAX_NAME = 256  # characters of a metric name, span name or attribute key
MAX_VALUE = 1024  # characters of a string attribute value (or hex characters of a bytes value)
MAX_ITEMS = 128  # elements of an array or key-value list attribute value
MAX_COUNT = 2**53  # one histogram point's count, or one point of otelml's counters: exact as a double

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
_ID_FIELDS = frozenset({"trace_id", "span_id", "parent_span_id"})
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_FAILED_FIELDS = re.compile(r"(?:Failed to parse \w+ field: )*")


class DecodeError(ValueError):
    """The whole body cannot be decoded; ``status`` is the HTTP status to answer with (415 or 400).

    The message is cut to 200 characters: it goes back to the client as the response body.
    """

    def __init__(self, message: str, status: int = 400):
        super().__init__(_shorten(message, 200))
        self.status = status


class _Invalid(Exception):
    """A data point or span breaks the data model; the message says how."""


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
    raise DecodeError(f"unsupported content type {_shorten(content_type, 100)!r}; use {PROTOBUF} or {JSON}", status=415)


def parse_otlp_json(body: bytes, message_class):
    """Parse an OTLP/JSON body into a ``message_class`` message: hex ids, integer or named enums, unknown fields ignored.

    Example:
        >>> body = b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "eee19b7ec3c1b174", "kind": 2}]}]}]}'
        >>> span = parse_otlp_json(body, ExportTraceServiceRequest).resource_spans[0].scope_spans[0].spans[0]
        >>> span.span_id.hex(), span.kind
        ('eee19b7ec3c1b174', 2)
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DecodeError("invalid OTLP/JSON: the body is not a JSON object")
    _hex_ids_to_base64(data, message_class.DESCRIPTOR, "")
    try:
        return json_format.ParseDict(data, message_class(), ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise DecodeError(f"invalid OTLP/JSON: {_parse_error(exc)}") from None
    except RecursionError:
        raise DecodeError("invalid OTLP/JSON: nested too deeply") from None


def _hex_ids_to_base64(value, descriptor, path: str) -> None:
    """Rewrite the hex ids in ``value`` (a ``descriptor`` message as a JSON dict) as base64, which ParseDict reads."""
    if not isinstance(value, dict):
        return  # ParseDict reports the wrong type
    plan = _id_plan(descriptor)
    for key, item in value.items():
        if key not in plan or item is None:
            continue
        where = f"{path}.{key}" if path else key
        target = plan[key]
        if target is None:
            value[key] = _hex_to_base64(item, where)
        elif isinstance(item, list):
            for i, element in enumerate(item):
                _hex_ids_to_base64(element, target, f"{where}[{i}]")
        else:
            _hex_ids_to_base64(item, target, where)


@functools.cache
def _id_plan(descriptor) -> dict:
    """JSON keys (both spellings) of the fields that hold ids (mapped to None) or lead to messages that do."""
    plan = {}
    for field in descriptor.fields:
        if _is_id(field):
            target = None
        elif field.message_type is not None and _holds_ids(field.message_type, set()):
            target = field.message_type
        else:
            continue
        plan[field.name] = plan[field.json_name] = target
    return plan


def _holds_ids(descriptor, seen: set) -> bool:
    seen.add(descriptor)
    return any(
        _is_id(f) or (f.message_type is not None and f.message_type not in seen and _holds_ids(f.message_type, seen))
        for f in descriptor.fields
    )


def _is_id(field) -> bool:
    return field.name in _ID_FIELDS and field.type == FieldDescriptor.TYPE_BYTES


def _hex_to_base64(text, where: str) -> str:
    if not isinstance(text, str) or not _HEX.fullmatch(text):
        raise DecodeError(f"invalid OTLP/JSON: {where} must be a hex string, got {_shorten(repr(text), 60)}")
    return base64.b64encode(bytes.fromhex(text)).decode("ascii")


def _parse_error(exc: json_format.ParseError) -> str:
    """ParseDict's "Failed to parse a field: Failed to parse b field: reason" as "a.b: reason"."""
    text = str(exc)
    prefix = _FAILED_FIELDS.match(text).group()
    fields = re.findall(r"Failed to parse (\w+) field", prefix)
    reason = text[len(prefix) :].rstrip(".")
    return f"{'.'.join(fields)}: {reason}" if fields else reason


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- metrics ----------------------------------------------------------------------------------------------------------
def decode_metrics_request(request: ExportMetricsServiceRequest) -> Decoded:
    """The valid points of a parsed request; invalid ones are rejected with a reason, never raised.

    Points flagged "no recorded value" (staleness markers) carry no data and are skipped without a rejection.
    """
    decoded = Decoded()
    for resource_metrics in request.resource_metrics:
        try:
            resource = _resource(resource_metrics.resource, resource_metrics.scope_metrics)
        except _Invalid as exc:
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
    """The identifying resource attributes; raises ``_Invalid`` for one over the length limits, or a scope name."""
    for scope in scopes:
        _check_name("scope name", scope.scope.name)
    return _pairs(resource.attributes, IDENTIFYING_RESOURCE_ATTRIBUTES)


def _decode_metric(metric, resource: tuple, scope: str, decoded: Decoded) -> None:
    data_kind = metric.WhichOneof("data")
    if data_kind is None:
        return
    data = getattr(metric, data_kind)
    try:
        _check_name("metric name", metric.name)
        _check_shape(metric.name, data_kind, data)
        kind, convert, cumulative = _metric_kind(data_kind, data)
    except _Invalid as exc:
        decoded.reject(f"metric {_quote(metric.name)}: {exc}", count=len(data.data_points))
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
            key = _stream_key(resource, scope, metric.name, point.attributes)
            _check_feature(metric.name, key)
        except _Invalid as exc:
            decoded.reject(f"metric {_quote(metric.name)}: {exc}")
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
    raise _Invalid(f"otelml defines {name} as {wanted}; this is {got}")


def _check_feature(name: str, key: StreamKey) -> None:
    """A feature is named by a string, and otelml's per-feature metrics name theirs (a point without one, or with a
    number for a name, failed the drift and range detectors of its model at every window)."""
    feature = key.attribute(semconv.FEATURE_NAME)
    if feature is None and name in _FEATURE_METRICS:
        raise _Invalid(f"otelml's {name} needs the {semconv.FEATURE_NAME} attribute")
    if feature is not None and not isinstance(feature, str):
        raise _Invalid(f"{semconv.FEATURE_NAME} must be a string, not {type(feature).__name__}")


def _check_number(name: str, value) -> None:
    """A monotonic sum's value: never negative, and one of otelml's counters at most MAX_COUNT (rows sent as 1e308
    summed to infinity, and references built from the windows failed on it)."""
    if value < 0:
        raise _Invalid(f"monotonic sum {value} is negative")
    if value > MAX_COUNT and name in _SHAPES:
        raise _Invalid(f"otelml's {name} of {value} in one point is more than {MAX_COUNT}")


def _metric_kind(data_kind: str, data):
    """``(point kind, converter, cumulative)`` for one metric's data."""
    if data_kind not in _CONVERTERS:
        raise _Invalid(f"{data_kind} metrics are not supported")
    kind, convert = _CONVERTERS[data_kind]
    if data_kind == "gauge":
        return kind, convert, False
    temporality = data.aggregation_temporality
    if temporality == _TEMPORALITIES.AGGREGATION_TEMPORALITY_UNSPECIFIED:
        raise _Invalid("aggregation temporality is unspecified")
    if temporality not in _TEMPORALITIES.values():
        raise _Invalid(f"aggregation temporality {temporality} is unknown")
    return kind, convert, temporality == _TEMPORALITIES.AGGREGATION_TEMPORALITY_CUMULATIVE


def _check_times(point) -> None:
    if point.time_unix_nano == 0:
        raise _Invalid("time_unix_nano is 0")
    if point.start_time_unix_nano > point.time_unix_nano:
        raise _Invalid(f"start_time_unix_nano {point.start_time_unix_nano} > time_unix_nano {point.time_unix_nano}")


def _number(point) -> int | float:
    field = point.WhichOneof("value")
    if field is None:
        raise _Invalid("data point has no value")
    value = getattr(point, field)
    if not math.isfinite(value):
        raise _Invalid(f"value {value} is not finite")
    return value


def _exponential(point) -> ExpHistogram:
    what = "exponential histogram"
    scale, zero_threshold, total = point.scale, point.zero_threshold, point.sum
    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise _Invalid(f"{what} scale {scale} outside [{MIN_SCALE}, {MAX_SCALE}]")
    if not 0.0 <= zero_threshold < math.inf:
        raise _Invalid(f"{what} zero_threshold {zero_threshold} is negative or not finite")
    positive, negative = point.positive, point.negative
    positive_counts, in_positive = _bucket_counts(positive, "positive", scale)
    negative_counts, in_negative = _bucket_counts(negative, "negative", scale)
    _check_count(what, point.count, point.zero_count + in_positive + in_negative)
    has_min, has_max = point.HasField("min"), point.HasField("max")
    low = point.min if has_min else math.inf
    high = point.max if has_max else -math.inf
    if (
        not math.isfinite(total)
        or (has_min and not math.isfinite(low))
        or (has_max and not math.isfinite(high))
        or (has_min and has_max and low > high)
    ):
        _check_stats(what, point)  # raises, saying which
    return ExpHistogram(
        scale=scale,
        zero_threshold=zero_threshold,
        zero_count=point.zero_count,
        positive_offset=positive.offset,
        positive=_as_array(positive_counts),  # each count fits in int64: their total does
        negative_offset=negative.offset,
        negative=_as_array(negative_counts),
        count=point.count,
        sum=total,
        min=low,
        max=high,
    )


def _as_array(counts: list) -> np.ndarray:
    return np.array(counts, dtype=np.int64) if counts else _NO_COUNTS


_NO_COUNTS = np.zeros(0, dtype=np.int64)


def index_range(scale: int) -> tuple[int, int]:
    """The bucket indices at ``scale`` whose bounds are normal, finite doubles (2^-1022 to 2^1024): buckets past
    them can hold no value a sender could have measured, and their bounds would underflow to 0 or overflow.

    Example:
        >>> index_range(0), index_range(20)[1] == 2**30 - 1
        ((-1022, 1023), True)
    """
    return math.floor(-1022 * 2.0**scale), math.ceil(1024 * 2.0**scale) - 1


def _bucket_counts(buckets, sign: str, scale: int) -> tuple[list, int]:
    """One sign's bucket counts as a plain list (read once from the message) and their exact total."""
    counts = buckets.bucket_counts[:]
    size = len(counts)
    if size > MAX_BUCKETS:
        raise _Invalid(f"exponential histogram has {size} {sign} buckets, more than {MAX_BUCKETS}")
    low, high = index_range(scale)
    if size and not low <= buckets.offset <= buckets.offset + size - 1 <= high:
        raise _Invalid(
            f"exponential histogram {sign} buckets {buckets.offset} to {buckets.offset + size - 1} lie outside "
            f"[{low}, {high}], the indices of finite values at scale {scale}"
        )
    return counts, sum(counts)


def _explicit(point) -> ExplicitHistogram:
    what = "explicit histogram"
    bounds = np.array(point.explicit_bounds, dtype=np.float64)
    counts = np.array(point.bucket_counts, dtype=np.uint64)
    if counts.size == 0 and point.count == 0:
        counts = np.zeros(bounds.size + 1, dtype=np.uint64)
    if counts.size != bounds.size + 1:
        raise _Invalid(f"{what} has {counts.size} bucket counts for {bounds.size} bounds")
    if not (np.isfinite(bounds).all() and (np.diff(bounds) > 0).all()):
        raise _Invalid(f"{what} bounds are not finite and strictly increasing")
    _check_count(what, point.count, _total(counts))
    _check_stats(what, point)
    return ExplicitHistogram(
        bounds=tuple(bounds.tolist()),
        counts=counts.astype(np.int64),
        count=point.count,
        sum=_optional(point, "sum"),
        min=_optional(point, "min"),
        max=_optional(point, "max"),
    )


def _total(counts: np.ndarray) -> int:
    """Exact sum of uint64 counts (no wrap-around)."""
    return int(counts.sum(dtype=object))


def _check_count(what: str, count: int, in_buckets: int) -> None:
    if count != in_buckets:
        raise _Invalid(f"{what} count {count} != {in_buckets} in buckets")
    if count > MAX_COUNT:  # int64 sums of such histograms over windows and references would wrap round
        raise _Invalid(f"{what} count {count} is more than {MAX_COUNT}")


def _check_stats(what: str, point) -> None:
    for name in ("sum", "min", "max"):
        value = _optional(point, name)
        if value is not None and not math.isfinite(value):
            raise _Invalid(f"{what} {name} {value} is not finite")
    if point.HasField("min") and point.HasField("max") and point.min > point.max:
        raise _Invalid(f"{what} min {point.min} > max {point.max}")


def _optional(point, name: str):
    return getattr(point, name) if point.HasField(name) else None


_CONVERTERS = {
    "gauge": ("gauge", _number),
    "sum": ("sum", _number),
    "histogram": ("explicit", _explicit),
    "exponential_histogram": ("exponential", _exponential),
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
        except _Invalid as exc:
            decoded.reject(f"resource: {exc}", count=sum(len(s.spans) for s in resource_spans.scope_spans))
            continue
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                try:
                    decoded.spans.append(_span(span, resource))
                except _Invalid as exc:
                    decoded.reject(f"span {_quote(span.name)}: {exc}")
    return decoded


def _span(span, resource: tuple) -> SpanSummary:
    _check_name("span name", span.name)
    if len(span.trace_id) != 16:
        raise _Invalid(f"trace id has {len(span.trace_id)} bytes, not 16")
    if len(span.span_id) != 8:
        raise _Invalid(f"span id has {len(span.span_id)} bytes, not 8")
    if span.end_time_unix_nano < span.start_time_unix_nano:
        raise _Invalid(
            f"end_time_unix_nano {span.end_time_unix_nano} < start_time_unix_nano {span.start_time_unix_nano}"
        )
    return SpanSummary(
        resource=resource,
        name=span.name,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        start_unix_nano=span.start_time_unix_nano,
        end_unix_nano=span.end_time_unix_nano,
        attributes=_attributes(span.attributes),
        error=span.status.code == Status.STATUS_CODE_ERROR,
    )


# --- attributes -------------------------------------------------------------------------------------------------------
_KEYS: dict = {}  # (resource, scope, metric, attributes as sent) -> StreamKey, to skip sorting for known streams
_MAX_KEYS = 100_000


def _stream_key(resource: tuple, scope: str, metric: str, key_values) -> StreamKey:
    """The stream key, with attributes sorted; cached by the attributes in the order they were sent. Raises
    ``_Invalid`` for an attribute over the length limits."""
    sent = []
    for kv in key_values:
        value = kv.value
        sent.append((_key(kv.key), _string(value) if value.WhichOneof("value") == "string_value" else _value(value)))
    sent = tuple(sent)
    lookup = (resource, scope, metric, sent)
    key = _KEYS.get(lookup)
    if key is None:
        key = StreamKey(resource, scope, metric, tuple(sorted(dict(sent).items())))
        if len(_KEYS) >= _MAX_KEYS:
            _KEYS.clear()
        _KEYS[lookup] = key
    return key


def _attributes(key_values) -> dict:
    """``KeyValue`` list as a dict of plain, hashable Python values (the last of duplicate keys wins). A span's
    attribute over the length limits is left out (counted by the caller's reader as missing), not the span: spans
    pass through from every instrumentation, and otelml reads only its own attributes."""
    found = {}
    for kv in key_values:
        try:
            found[_key(kv.key)] = _value(kv.value)
        except _Invalid:
            continue
    return found


def _pairs(key_values, names=None) -> tuple:
    """Sorted ``(key, value)`` pairs, for stream identity; ``names``, if given, says which keys to keep. Raises
    ``_Invalid`` for an attribute over the length limits."""
    found = {}
    for kv in key_values:
        if names is None or kv.key in names:
            value = kv.value
            found[_key(kv.key)] = _string(value) if value.WhichOneof("value") == "string_value" else _value(value)
    return tuple(sorted(found.items()))


def _value(any_value):
    """``AnyValue`` as str, int, float or bool; arrays as tuples, key-value lists as pairs, bytes as hex, empty None.
    Raises ``_Invalid`` past ``MAX_VALUE`` characters or ``MAX_ITEMS`` elements."""
    field = any_value.WhichOneof("value")
    if field == "string_value":
        return _string(any_value)
    if field == "array_value":
        values = any_value.array_value.values
        _check_items(len(values))
        return tuple(_value(v) for v in values)
    if field == "kvlist_value":
        _check_items(len(any_value.kvlist_value.values))
        return _pairs(any_value.kvlist_value.values)
    if field == "bytes_value":
        if 2 * len(any_value.bytes_value) > MAX_VALUE:
            raise _Invalid(f"attribute value of {len(any_value.bytes_value)} bytes, more than {MAX_VALUE // 2}")
        return any_value.bytes_value.hex()
    return getattr(any_value, field) if field else None


def _string(any_value) -> str:
    text = any_value.string_value
    if len(text) > MAX_VALUE:
        raise _Invalid(f"attribute value of {len(text)} characters, more than {MAX_VALUE}")
    return text


def _key(text: str) -> str:
    _check_name("attribute key", text)
    return text


def _check_name(what: str, text: str) -> None:
    if len(text) > MAX_NAME:
        raise _Invalid(f"{what} of {len(text)} characters, more than {MAX_NAME}")


def _check_items(size: int) -> None:
    if size > MAX_ITEMS:
        raise _Invalid(f"attribute value of {size} elements, more than {MAX_ITEMS}")


def _quote(name: str) -> str:
    return repr(_shorten(name, 100))

"""Encode snapshots as one OTLP ``ExportMetricsServiceRequest`` (opentelemetry-proto, metrics/v1).

otelml builds the protobuf itself rather than going through the SDK's ``MetricsData``: the SDK's point type has no
``zero_threshold`` field and its encoder drops it, and the histograms here need it (see ``otelml.histogram``).
Histograms are exponential histograms and counters are monotonic sums, all with delta temporality.
"""

from __future__ import annotations

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from .. import semconv
from .recorder import Snapshot

DELTA = pb.AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA

# metric name -> (unit, description, attribute names for the extra key)
HISTOGRAMS = {
    semconv.METRIC_DURATION: (semconv.UNIT_DURATION, "Duration of predict calls.", (semconv.ERROR_TYPE,)),
    semconv.METRIC_CONFIDENCE: (semconv.UNIT_CONFIDENCE, "Largest class probability per predicted row.", ()),
    semconv.METRIC_MARGIN: (semconv.UNIT_MARGIN, "Gap between the two largest class probabilities per row.", ()),
    semconv.METRIC_PREDICTION_VALUE: (
        semconv.UNIT_PREDICTION_VALUE,
        "Regression values or decision scores per predicted row.",
        (),
    ),
    semconv.METRIC_FEATURE_VALUE: (semconv.UNIT_FEATURE_VALUE, "Input feature values.", (semconv.FEATURE_NAME,)),
}
COUNTERS = {
    semconv.METRIC_CALLS: (semconv.UNIT_CALLS, "Predict calls.", (semconv.ERROR_TYPE,)),
    semconv.METRIC_ROWS: (semconv.UNIT_ROWS, "Rows predicted.", ()),
    semconv.METRIC_PREDICTIONS: (semconv.UNIT_PREDICTIONS, "Predicted rows by label.", (semconv.PREDICTION_LABEL,)),
    semconv.METRIC_FEATURE_NONFINITE: (
        semconv.UNIT_FEATURE_NONFINITE,
        "NaN and infinite feature values, left out of the feature histograms.",
        (semconv.FEATURE_NAME, semconv.NONFINITE_KIND),
    ),
    semconv.METRIC_FEATURE_CATEGORY: (
        semconv.UNIT_FEATURE_CATEGORY,
        "Values of non-numeric features.",
        (semconv.FEATURE_NAME, semconv.FEATURE_CATEGORY),
    ),
    semconv.METRIC_OUTCOMES: (
        semconv.UNIT_OUTCOMES,
        "Predictions with known ground truth, by predicted and true label.",
        (semconv.PREDICTION_LABEL, semconv.TRUE_LABEL),
    ),
}


def any_value(value) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    return AnyValue(string_value=str(value))


def key_values(attributes: dict) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attributes.items() if v is not None]


def _extra(names: tuple, key) -> dict:
    if not names or key is None:
        return {}
    values = key if isinstance(key, tuple) else (key,)
    return dict(zip(names, values))


def encode(
    resource_attributes: dict, scope_version: str, snapshots: list[Snapshot], dropped: dict | None = None, window=None
) -> ExportMetricsServiceRequest:
    """One request holding every snapshot; ``dropped`` (reason -> count) becomes ``otelml.telemetry.dropped``."""
    metrics: dict[str, pb.Metric] = {}

    def metric(name, table, kind):
        found = metrics.get(name)
        if found is None:
            unit, description, _ = table[name]
            found = metrics[name] = pb.Metric(name=name, unit=unit, description=description)
            getattr(found, kind).aggregation_temporality = DELTA
            if kind == "sum":
                found.sum.is_monotonic = True
        return found

    for snap in snapshots:
        for (name, key), hist in snap.histograms.items():
            attributes = {**snap.attributes, **_extra(HISTOGRAMS[name][2], key)}
            point = _histogram_point(hist, attributes, snap)
            _add_exemplar(point, name, key, snap)
            metric(name, HISTOGRAMS, "exponential_histogram").exponential_histogram.data_points.append(point)
        for (name, key), value in snap.counters.items():
            attributes = {**snap.attributes, **_extra(COUNTERS[name][2], key)}
            point = pb.NumberDataPoint(
                attributes=key_values(attributes),
                start_time_unix_nano=snap.start_unix_nano,
                time_unix_nano=snap.end_unix_nano,
                as_int=value,
            )
            metric(name, COUNTERS, "sum").sum.data_points.append(point)
    if dropped and window:
        dropped_metric = pb.Metric(
            name=semconv.METRIC_TELEMETRY_DROPPED,
            unit=semconv.UNIT_TELEMETRY_DROPPED,
            description="Telemetry otelml could not record or deliver, by reason.",
        )
        dropped_metric.sum.aggregation_temporality = DELTA
        dropped_metric.sum.is_monotonic = True
        for reason, count in dropped.items():
            dropped_metric.sum.data_points.append(
                pb.NumberDataPoint(
                    attributes=key_values({semconv.DROP_REASON: reason}),
                    start_time_unix_nano=window[0],
                    time_unix_nano=window[1],
                    as_int=count,
                )
            )
        metrics[semconv.METRIC_TELEMETRY_DROPPED] = dropped_metric
    if not metrics:
        return ExportMetricsServiceRequest()
    scope = pb.ScopeMetrics(
        scope=InstrumentationScope(name=semconv.SCOPE_NAME, version=scope_version), metrics=list(metrics.values())
    )
    return ExportMetricsServiceRequest(
        resource_metrics=[
            pb.ResourceMetrics(resource=Resource(attributes=key_values(resource_attributes)), scope_metrics=[scope])
        ]
    )


def _histogram_point(hist, attributes, snap) -> pb.ExponentialHistogramDataPoint:
    point = pb.ExponentialHistogramDataPoint(
        attributes=key_values(attributes),
        start_time_unix_nano=snap.start_unix_nano,
        time_unix_nano=snap.end_unix_nano,
        count=hist.count,
        sum=hist.sum,
        scale=hist.scale,
        zero_count=hist.zero_count,
        zero_threshold=hist.zero_threshold,
    )
    if hist.count:
        point.min, point.max = hist.min, hist.max
    if hist.positive.size:
        point.positive.offset = hist.positive_offset
        point.positive.bucket_counts.extend(hist.positive.tolist())
    if hist.negative.size:
        point.negative.offset = hist.negative_offset
        point.negative.bucket_counts.extend(hist.negative.tolist())
    return point


def _add_exemplar(point, name, key, snap):
    ex = snap.exemplar
    if ex is None:
        return
    if name == semconv.METRIC_FEATURE_VALUE:
        value = ex.features.get(key)
    elif name == semconv.METRIC_DURATION and key == ex.error_type:
        value = ex.duration
    elif name == semconv.METRIC_CONFIDENCE:
        value = ex.confidence
    else:
        value = None
    if value is None:
        return
    point.exemplars.append(
        pb.Exemplar(
            time_unix_nano=ex.time_unix_nano,
            as_double=float(value),
            trace_id=ex.trace_id.to_bytes(16, "big"),
            span_id=ex.span_id.to_bytes(8, "big"),
        )
    )

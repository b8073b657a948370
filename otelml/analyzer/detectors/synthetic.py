"""Closed windows built from plain arrays, as the SDK and the analyzer would have built them: for detector tests,
the contract test and the evaluation harness.

Example:
    >>> import numpy as np
    >>> w = window(3, features=np.zeros((10, 2)), confidence=np.full(10, 0.9), errors=1)
    >>> w.counter("otelml.inference.calls"), w.histogram("otelml.feature.value", **{"otelml.feature.name": "x1"}).count
    (11, 10)
"""

from __future__ import annotations

import numpy as np

from ... import histogram, semconv
from ..state.windows import ClosedWindow

WINDOW_NS = 60 * 10**9


def window(
    index: int,
    *,
    features: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    margin: np.ndarray | None = None,
    predictions: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    durations: np.ndarray | None = None,
    calls: int | None = None,
    errors: int = 0,
    outcomes: dict | None = None,
    model: str = "m",
    version: str = "1",
    window_ns: int = WINDOW_NS,
) -> ClosedWindow:
    """A closed window holding the given rows (features: rows x features, named x0, x1, ...), per-row confidence,
    margin, predicted values (regression, scores) and predicted labels, per-call durations, ``calls`` successful
    calls (default: one per feature row) plus ``errors`` failed ones, and ``outcomes`` {(predicted, true): count}."""
    histograms, counters = {}, {}
    rows = 0
    if features is not None:
        rows = features.shape[0]
        for i, h in enumerate(histogram.from_columns(features)):
            histograms[(semconv.METRIC_FEATURE_VALUE, ((semconv.FEATURE_NAME, f"x{i}"),))] = h
        for i in np.flatnonzero(~np.isfinite(features).all(axis=0)):  # counted as the SDK does (NaN only here)
            key = ((semconv.FEATURE_NAME, f"x{i}"), (semconv.NONFINITE_KIND, semconv.NONFINITE_NAN))
            counters[(semconv.METRIC_FEATURE_NONFINITE, key)] = int((~np.isfinite(features[:, i])).sum())
        counters[(semconv.METRIC_ROWS, ())] = rows
    if confidence is not None:
        histograms[(semconv.METRIC_CONFIDENCE, ())] = histogram.from_values(confidence)
    if margin is not None:
        histograms[(semconv.METRIC_MARGIN, ())] = histogram.from_values(margin)
    if predictions is not None:
        histograms[(semconv.METRIC_PREDICTION_VALUE, ())] = histogram.from_values(predictions)
    if labels is not None:
        values, counts = np.unique(np.asarray(labels).astype(str), return_counts=True)
        for value, count in zip(values.tolist(), counts.tolist()):
            counters[(semconv.METRIC_PREDICTIONS, ((semconv.PREDICTION_LABEL, value),))] = count
    calls = rows if calls is None else calls
    if calls:
        counters[(semconv.METRIC_CALLS, ())] = calls
    if errors:
        counters[(semconv.METRIC_CALLS, ((semconv.ERROR_TYPE, "RuntimeError"),))] = errors
    if durations is not None:
        histograms[(semconv.METRIC_DURATION, ())] = histogram.from_values(durations)
    for (predicted, true), count in (outcomes or {}).items():
        key = ((semconv.PREDICTION_LABEL, str(predicted)), (semconv.TRUE_LABEL, str(true)))
        counters[(semconv.METRIC_OUTCOMES, key)] = count
    return ClosedWindow(
        model=model,
        version=version,
        index=index,
        start_unix_nano=index * window_ns,
        end_unix_nano=(index + 1) * window_ns,
        histograms=histograms,
        explicit={},
        counters=counters,
        gauges={},
        exemplars=(),
        points=len(histograms) + len(counters),
        closed_by="watermark",
    )

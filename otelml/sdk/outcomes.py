"""Late ground truth: remember recent predictions by id, and count outcomes by predicted and true label.

Outcomes are a counter (``otelml.outcomes``) by predicted and true label, so accuracy, precision, recall and F1 can
be computed downstream from metrics alone. An outcome is recorded either by the prediction id of an earlier call
(its span id in hex, see :func:`otelml.last_prediction_id`), which looks the predicted labels up in a bounded store
of recent calls, or by passing the predicted and the true label together. ``otelml.record_outcome`` records into the
default runtime (``otelml.sdk.runtime``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from .. import semconv
from .health import BAD_INPUT, UNKNOWN_PREDICTION, Health


class PredictionStore:
    """Predicted labels of recent calls by prediction id; the oldest are forgotten past either bound."""

    def __init__(self, max_calls: int = 100_000, max_rows: int = 1_000_000):
        self.max_calls = max_calls
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._entries: OrderedDict = OrderedDict()
        self._rows = 0

    def remember(self, call, recorder, predicted) -> None:
        """Keep the predicted label (one row) or labels (a batch) of ``call``."""
        key = call.span.get_span_context().span_id or int(call.prediction_id, 16)
        rows = predicted.shape[0] if isinstance(predicted, np.ndarray) else 1
        with self._lock:
            self._entries[key] = (recorder, predicted, rows)
            self._rows += rows
            while len(self._entries) > self.max_calls or self._rows > self.max_rows:
                _, (_, _, old_rows) = self._entries.popitem(last=False)
                self._rows -= old_rows

    def pop(self, prediction_id: str):
        """``(recorder, predicted, rows)`` of the call, or ``None`` if unknown or forgotten."""
        try:
            key = int(prediction_id, 16)
        except (TypeError, ValueError):
            return None
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is not None:
                self._rows -= entry[2]
            return entry

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self._entries.clear()
        self._rows = 0


def record_outcome(
    registry,
    predictions: PredictionStore,
    health: Health,
    actual,
    *,
    prediction_id=None,
    model=None,
    version=None,
    predicted=None,
) -> bool:
    """Count the true label(s) ``actual`` of earlier predictions into ``registry``'s recorders; whether they were
    counted. Never raises. See ``otelml.record_outcome``."""
    with health.guard(BAD_INPUT, "record_outcome: ", show=str):
        actual_labels = np.atleast_1d(np.asarray(actual))
        if prediction_id is not None:
            entry = predictions.pop(prediction_id)
            if entry is None:
                health.drop(
                    UNKNOWN_PREDICTION,
                    f"no recent prediction with id {prediction_id!r} (unknown, already used, or forgotten)",
                )
                return False
            recorder, predicted, _ = entry
            predicted_labels = np.atleast_1d(np.asarray(predicted))
        elif model is not None and predicted is not None:
            version = None if version is None else str(version)
            found = registry.find(model, version)
            recorder = found[0] if found else registry.recorder(model, version, semconv.TASK_CLASSIFICATION)
            predicted_labels = np.atleast_1d(np.asarray(predicted))
        else:
            raise ValueError("record_outcome needs prediction_id=, or model= with predicted=")
        if predicted_labels.shape != actual_labels.shape:
            raise ValueError(f"{predicted_labels.size} predictions but {actual_labels.size} true labels")
        recorder.add_outcomes(predicted_labels, actual_labels)
        return True
    return False

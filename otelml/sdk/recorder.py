"""Per-model aggregation between exports, built so that a call costs a few microseconds.

A call hands its feature matrix and read outputs to the model's :class:`Recorder`. Small calls are copied into a
fixed-size block and aggregated a block at a time; large batches are aggregated at once. Aggregation is
:func:`otelml.histogram.from_columns` (numpy, all features together). At export time :meth:`Recorder.collect`
returns everything since the previous export as a :class:`Snapshot` (delta temporality) and starts afresh.

Memory is bounded: the block has a fixed size, per-interval histogram lists are compacted, and distinct feature
names, labels and category values are capped (the rest counted under ``__other__`` or dropped and counted).

(long: the hot path, its buffers and their flushing are one piece under one lock.)
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from .. import histogram, semconv
from .features import MAX_NAME_LENGTH
from .health import CARDINALITY, Health
from .outputs import Outputs

BLOCK_ROWS = 512  # small calls are aggregated this many rows at a time
_COMPACT_AT = 64  # histograms kept per stream before they are merged


@dataclass(frozen=True)
class Limits:
    """Caps on what one model may create; past them values are counted as ``__other__`` or dropped and counted."""

    max_features: int = 512
    max_labels: int = 100
    max_categories: int = 64

    def __post_init__(self):
        for name in ("max_features", "max_labels", "max_categories"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


@dataclass(frozen=True)
class Exemplar:
    """A sampled call that a histogram point can link to."""

    trace_id: int
    span_id: int
    time_unix_nano: int
    features: dict  # feature name -> value in the call's first row
    duration: float
    confidence: float | None
    error_type: str | None = None


@dataclass
class Snapshot:
    """One model's telemetry over one export interval."""

    attributes: dict
    start_unix_nano: int
    end_unix_nano: int
    histograms: dict = field(default_factory=dict)  # (metric name, extra attributes) -> ExpHistogram
    counters: dict = field(default_factory=dict)  # (metric name, extra attributes) -> int
    exemplar: Exemplar | None = None


class Recorder:
    """Aggregates one model version's calls; thread-safe."""

    def __init__(self, model: str, version: str, task: str, limits: Limits, layout, health: Health | None = None):
        self.attributes = {semconv.MODEL_NAME: model, semconv.MODEL_VERSION: version, semconv.MODEL_TASK: task}
        self.limits = limits
        self.layout = layout
        self.health = health or Health()
        self._lock = threading.Lock()
        self._features: set = set()
        self._labels: dict = {}
        self._categories: dict = defaultdict(set)
        self._new_interval(time.time_ns())

    def _new_interval(self, start_ns: int) -> None:
        self._start_ns = start_ns
        self._histograms = defaultdict(list)
        self._counters = defaultdict(int)
        self._exemplar = None
        self._block_names = None
        self._block = None
        self._block_rows = 0
        self._confidence: list = []
        self._margin: list = []
        self._values: list = []
        self._labels_buffer: list = []
        self._durations = defaultdict(list)

    def after_fork(self) -> None:
        """In a forked child: a fresh lock and an empty interval (the parent's data is the parent's to send)."""
        self._lock = threading.Lock()
        self._new_interval(time.time_ns())

    # --- the hot path ----------------------------------------------------------------------------------------------
    def record_row(self, names, numeric, categorical, row, duration: float, error_type, exemplar):
        """Add a one-row call; ``row`` is ``(label, confidence, margin, value)`` or ``None`` (see ``read_row``)."""
        with self._lock:
            self._count_call(duration, error_type, exemplar, 0 if numeric is None else 1)
            if numeric is not None:
                self._buffer_rows(names, numeric)
                if categorical:
                    self._count_categories(categorical)
            if row is not None:
                label, confidence, margin, value = row
                if label is not None:
                    self._labels_buffer.append(label)
                if confidence is not None:
                    self._confidence.append(confidence)
                    self._margin.append(margin)
                if value is not None:
                    self._values.append(value)
                self._flush_full_buffers()

    def record(self, names, numeric, categorical, outputs: Outputs | None, duration: float, error_type, exemplar):
        """Add a call of any size. ``names``/``numeric`` may be ``None`` when the inputs could not be read."""
        large = BLOCK_ROWS // 2
        features = outputs_now = None
        if numeric is not None and numeric.shape[0] > large:
            features = self._aggregate(names, numeric)
        if outputs is not None and outputs.rows > large:
            outputs_now = self._aggregate_outputs(outputs)
        with self._lock:
            self._count_call(duration, error_type, exemplar, 0 if numeric is None else numeric.shape[0])
            if numeric is not None:
                if features is not None:
                    self._add_features(features)
                else:
                    self._buffer_rows(names, numeric)
                if categorical:
                    self._count_categories(categorical)
            if outputs_now is not None:
                histograms, label_counts = outputs_now
                for metric, hist in histograms:
                    self._append(metric, None, hist)
                self._count_labels(label_counts)
            elif outputs is not None:
                self._buffer_outputs(outputs)

    def _count_call(self, duration, error_type, exemplar, rows):
        self._counters[(semconv.METRIC_CALLS, error_type)] += 1
        self._durations[error_type].append(duration)
        if exemplar is not None:
            self._exemplar = exemplar
        if rows:
            self._counters[(semconv.METRIC_ROWS, None)] += rows

    def _buffer_rows(self, names, numeric):
        rows = numeric.shape[0]
        if names != self._block_names or self._block_rows + rows > BLOCK_ROWS:
            self._flush_block()
            self._block_names = names
            if self._block is None or self._block.shape[1] != len(names):
                self._block = np.empty((BLOCK_ROWS, len(names)))
        self._block[self._block_rows : self._block_rows + rows] = numeric
        self._block_rows += rows

    def _buffer_outputs(self, out: Outputs):
        self._count_labels(out.label_counts())
        for buffer, values in (
            (self._confidence, out.confidence),
            (self._margin, out.margin),
            (self._values, out.values),
        ):
            if values is not None:
                buffer.extend(values.tolist())
        self._flush_full_buffers()

    def _flush_full_buffers(self):
        if len(self._confidence) >= BLOCK_ROWS or len(self._values) >= BLOCK_ROWS:
            self._flush_outputs()
        if len(self._labels_buffer) >= BLOCK_ROWS:
            self._flush_labels()

    # --- aggregation ----------------------------------------------------------------------------------------------
    def _aggregate(self, names, numeric):
        """Histograms per feature, and counts of non-finite values (left out of the histograms)."""
        nonfinite = _count_nonfinite(names, numeric) if not np.isfinite(numeric).all() else []
        return list(zip(names, histogram.from_columns(numeric, self.layout))), nonfinite

    def _aggregate_outputs(self, out: Outputs):
        histograms = []
        if out.confidence is not None:
            both = histogram.from_columns(np.column_stack([out.confidence, out.margin]), self.layout)
            histograms += [(semconv.METRIC_CONFIDENCE, both[0]), (semconv.METRIC_MARGIN, both[1])]
        if out.values is not None:
            histograms.append((semconv.METRIC_PREDICTION_VALUE, histogram.from_values(out.values, self.layout)))
        return histograms, out.label_counts()

    def _add_features(self, aggregated):
        named, nonfinite = aggregated
        for key, count in nonfinite:
            self._counters[(semconv.METRIC_FEATURE_NONFINITE, key)] += count
        for name, hist in named:
            if name not in self._features:
                if len(self._features) >= self.limits.max_features:
                    self.health.drop(
                        CARDINALITY,
                        f"model {self.attributes[semconv.MODEL_NAME]!r} has more than "
                        f"{self.limits.max_features} features; feature {name!r} is not recorded",
                        count=hist.count,
                    )
                    continue
                self._features.add(name)
            self._append(semconv.METRIC_FEATURE_VALUE, name, hist)

    def _append(self, metric, key, hist):
        pending = self._histograms[(metric, key)]
        pending.append(hist)
        if len(pending) >= _COMPACT_AT:
            pending[:] = [histogram.merge_all(pending, self.layout)]

    def _flush_block(self):
        if self._block_rows:
            self._add_features(self._aggregate(self._block_names, self._block[: self._block_rows]))
        self._block_rows = 0

    def _flush_outputs(self):
        for metric, buffer in (
            (semconv.METRIC_CONFIDENCE, self._confidence),
            (semconv.METRIC_MARGIN, self._margin),
            (semconv.METRIC_PREDICTION_VALUE, self._values),
        ):
            if buffer:
                self._append(metric, None, _finite_histogram(buffer, self.layout))
        self._confidence, self._margin, self._values = [], [], []

    def _flush_durations(self):
        for error_type, values in self._durations.items():
            self._append(semconv.METRIC_DURATION, error_type, _finite_histogram(values, self.layout))
        self._durations = defaultdict(list)

    def _flush_labels(self):
        if self._labels_buffer:
            self._count_labels(
                Outputs(rows=len(self._labels_buffer), labels=_array(self._labels_buffer)).label_counts()
            )
        self._labels_buffer = []

    def _count_labels(self, label_counts):
        for label, count in label_counts:
            self._counters[(semconv.METRIC_PREDICTIONS, self.label_name(label))] += count

    def label_name(self, label) -> str:
        """The label as it goes on the wire: its text, or ``__other__`` past the label cap."""
        known = self._labels.get(label)
        if known is None:
            known = str(label)[:MAX_NAME_LENGTH] if len(self._labels) < self.limits.max_labels else semconv.OTHER_VALUE
            if len(self._labels) < 4 * self.limits.max_labels:  # remember some overflow too, boundedly
                self._labels[label] = known
        return known

    def _count_categories(self, categorical: dict):
        for name, column in categorical.items():
            values, counts = np.unique(column.astype(str), return_counts=True)
            seen = self._categories[name]
            for value, count in zip(values.tolist(), counts.tolist()):
                value = value[:MAX_NAME_LENGTH]
                if value not in seen:
                    if len(seen) >= self.limits.max_categories:
                        value = semconv.OTHER_VALUE
                    else:
                        seen.add(value)
                self._counters[(semconv.METRIC_FEATURE_CATEGORY, (name, value))] += count

    def add_outcomes(self, predicted, actual) -> None:
        """Count (predicted, true) label pairs, from late ground truth."""
        pairs = np.stack([np.asarray(predicted).astype(str), np.asarray(actual).astype(str)], axis=1)
        values, counts = np.unique(pairs, axis=0, return_counts=True)
        with self._lock:
            for (pred, true), count in zip(values.tolist(), counts.tolist()):
                key = (self.label_name(pred), self.label_name(true))
                self._counters[(semconv.METRIC_OUTCOMES, key)] += count

    # --- export ---------------------------------------------------------------------------------------------------
    def collect(self, now_ns: int | None = None) -> Snapshot | None:
        """Everything since the last collect, or ``None`` if nothing happened."""
        now_ns = now_ns or time.time_ns()
        with self._lock:
            self._flush_block()
            self._flush_outputs()
            self._flush_durations()
            self._flush_labels()
            pending, counters, exemplar, start = self._histograms, self._counters, self._exemplar, self._start_ns
            self._new_interval(now_ns)
        if not pending and not counters:
            return None
        merged = {key: histogram.merge_all(parts, self.layout) for key, parts in pending.items()}
        return Snapshot(dict(self.attributes), start, now_ns, merged, dict(counters), exemplar)


def _array(values: list) -> np.ndarray:
    """A 1-D array of labels; mixed types become strings."""
    try:
        result = np.asarray(values)
    except ValueError:
        result = None
    if result is None or result.ndim != 1:
        result = np.asarray([str(v) for v in values], dtype=object)
    return result


def _finite_histogram(values: list, layout) -> histogram.ExpHistogram:
    return histogram.from_values(np.asarray(values, dtype=np.float64), layout)


def _count_nonfinite(names, numeric):
    result = []
    for kind, mask in (
        (semconv.NONFINITE_NAN, np.isnan(numeric)),
        (semconv.NONFINITE_POS_INF, numeric == np.inf),
        (semconv.NONFINITE_NEG_INF, numeric == -np.inf),
    ):
        per_column = mask.sum(axis=0)
        for column in np.flatnonzero(per_column):
            result.append(((names[column], kind), int(per_column[column])))
    return result


class Registry:
    """The recorders of one configured otelml, keyed by model, version and task."""

    def __init__(self, limits: Limits | None = None, layout=None, health: Health | None = None):
        self.limits = limits or Limits()
        self.layout = layout or histogram.DEFAULT_LAYOUT
        self.health = health or Health()
        self._lock = threading.Lock()
        self._recorders: dict = {}

    def recorder(self, model: str, version: str, task: str) -> Recorder:
        key = (model, version, task)
        found = self._recorders.get(key)
        if found is None:
            with self._lock:
                found = self._recorders.setdefault(
                    key, Recorder(model, version, task, self.limits, self.layout, self.health)
                )
        return found

    def find(self, model: str, version: str | None = None) -> list[Recorder]:
        return [r for (m, v, _), r in list(self._recorders.items()) if m == model and (version is None or v == version)]

    def collect(self) -> list[Snapshot]:
        now = time.time_ns()
        snapshots = [r.collect(now) for r in list(self._recorders.values())]
        return [s for s in snapshots if s is not None]

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        for recorder in self._recorders.values():
            recorder.after_fork()

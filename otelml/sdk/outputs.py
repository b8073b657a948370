"""Read what a predict function returned: labels, class probabilities, decision scores or values.

``kind`` says how to read it: ``"labels"``, ``"proba"`` (rows of class probabilities, or one probability of the
positive class per row), ``"scores"`` (decision scores: one per row for two classes, one per class otherwise),
``"values"`` (regression outputs or risk scores), or ``"auto"``, which decides from the task and the data:

- regression and scoring tasks: values;
- a 2-D float array whose rows lie in [0, 1] and sum to 1: probabilities; any other 2-D float array: scores;
- a 1-D array of integers, strings or booleans (or floats that are all whole numbers): labels;
- a 1-D float array in [0, 1]: the probability of the positive class; other 1-D floats: decision scores.

Confidence is the largest class probability; margin is the gap between the two largest.

Example:
    >>> out = read_outputs(np.array([[0.9, 0.1], [0.3, 0.7]]), "auto", "classification", None)
    >>> out.label_counts(), out.confidence.tolist(), [round(m, 2) for m in out.margin.tolist()]
    ([(0, 1), (1, 1)], [0.9, 0.7], [0.8, 0.4])
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from .. import semconv

KINDS = ("auto", "labels", "proba", "scores", "values")


class OutputError(ValueError):
    """The output cannot be read as predictions; the message says why."""


@dataclass(frozen=True)
class Outputs:
    rows: int
    labels: np.ndarray | None = None  # predicted label per row, as returned
    label_index: np.ndarray | None = None  # or: predicted class index per row ...
    classes: np.ndarray | None = None  # ... with the class labels, if known
    confidence: np.ndarray | None = None  # largest class probability per row
    margin: np.ndarray | None = None  # top-1 minus top-2 probability per row
    values: np.ndarray | None = None  # regression values or scores per row

    def first_label(self):
        """The first row's predicted label, or ``None``."""
        if self.label_index is not None:
            index = int(self.label_index[0])
            return self.classes[index] if self.classes is not None and index < len(self.classes) else index
        return None if self.labels is None else self.labels[0]

    def first_row(self):
        """The first row as ``(label, confidence, margin, value)`` Python scalars (see :func:`read_row`)."""

        def first(values):
            return None if values is None else float(values[0])

        label = self.first_label()
        if isinstance(label, np.generic):
            label = label.item()
        return label, first(self.confidence), first(self.margin), first(self.values)

    def predicted_labels(self):
        """Predicted label per row (class labels where known), or ``None``."""
        if self.label_index is None:
            return self.labels
        if self.classes is None:
            return self.label_index
        return self.classes[self.label_index]

    def label_counts(self):
        """``(label, count)`` pairs over all rows; counts class indices with one bincount where it can."""
        if self.label_index is not None:
            counts = np.bincount(self.label_index)
            nonzero = np.flatnonzero(counts)
            names = self.classes
            return [(names[i] if names is not None and i < len(names) else int(i), int(counts[i])) for i in nonzero]
        if self.labels is None:
            return []
        labels = self.labels.astype(str) if self.labels.dtype == object else self.labels
        values, counts = np.unique(labels, return_counts=True)
        return list(zip(values.tolist(), counts.tolist()))


def read_outputs(y, kind: str, task: str, classes) -> Outputs:
    """Read ``y`` as ``kind`` (see the module docstring); ``classes`` maps class indices to labels."""
    y = np.asarray(y)
    if classes is not None:
        classes = np.asarray(classes)
    if y.ndim == 0:
        y = y.reshape(1)
    if y.ndim > 2 or (y.ndim == 2 and y.shape[1] == 0):
        raise OutputError(f"cannot read predictions of shape {y.shape}")
    if kind == "auto":
        kind = _guess_kind(y, task)
    if kind == "labels":
        return Outputs(rows=y.shape[0], labels=y.reshape(y.shape[0], -1)[:, 0] if y.ndim == 2 else y)
    if y.dtype.kind not in "fiub":
        raise OutputError(f"{kind} must be numeric, got dtype {y.dtype}")
    y = y.astype(np.float64, copy=False)
    if kind == "values":
        return Outputs(rows=y.shape[0], values=y.reshape(y.shape[0], -1)[:, 0] if y.ndim == 2 else y)
    if kind == "proba":
        return _from_proba(y, classes)
    if kind == "scores":
        return _from_scores(y, classes)
    raise OutputError(f"unknown output kind {kind!r}; expected one of {KINDS}")


def read_row(y, kind: str, classes):
    """The single row of ``y`` read as ``kind`` (not ``"auto"``), with Python scalars and no array work:
    ``(label, confidence, margin, value)``, each ``None`` where it does not apply. Raises :class:`OutputError`.

    Example:
        >>> read_row(np.array([[0.2, 0.5, 0.3]]), "proba", ["a", "b", "c"])
        ('b', 0.5, 0.2, None)
    """
    flat = (y if isinstance(y, np.ndarray) else np.asarray(y)).ravel().tolist()
    if not flat:
        raise OutputError("empty prediction")
    if kind == "labels":
        return flat[0], None, None, None
    if kind == "values":
        return None, None, None, float(flat[0])
    if len(flat) == 1:
        p = float(flat[0])
        index = int(p >= 0.5) if kind == "proba" else int(p > 0)
        label = classes[index] if classes is not None and index < len(classes) else index
        if kind == "proba":
            return label, max(p, 1.0 - p), abs(2.0 * p - 1.0), None
        return label, None, None, p
    top = max(flat)
    index = flat.index(top)
    label = classes[index] if classes is not None and index < len(classes) else index
    if kind == "proba":
        second = max(flat[:index] + flat[index + 1 :])
        return label, float(top), float(top - second), None
    return label, None, None, float(top)


class OutputReader:
    """How one monitor reads its results, for every call of that monitor: ``kind`` as given, or with ``"auto"`` the
    kind guessed from the first result read and kept from then on. Thread-safe: the guess is set once, under a lock.
    """

    def __init__(self, kind: str, task: str, classes):
        self.kind = kind
        self.task = task
        self.classes = None if classes is None else list(classes)
        self._guessed = None
        self._lock = threading.Lock()

    def outputs(self, y) -> Outputs:
        """All rows of ``y`` (see :func:`read_outputs`); raises :class:`OutputError`."""
        kind = self.kind if self.kind != "auto" else self._guessed
        if kind is None:
            out = read_outputs(y, "auto", self.task, self.classes)
            with self._lock:
                if self._guessed is None:
                    self._guessed = kind_of(out)
            return out
        return read_outputs(y, kind, self.task, self.classes)

    def row(self, y):
        """``(label, confidence, margin, value)`` of a one-row result (see :func:`read_row`), or ``None`` until the
        kind is known."""
        kind = self.kind if self.kind != "auto" else self._guessed
        return None if kind is None else read_row(y, kind, self.classes)


def kind_of(out: Outputs) -> str:
    """The kind that reads like ``out`` was read."""
    if out.confidence is not None:
        return "proba"
    if out.values is not None:
        return "scores" if out.label_index is not None else "values"
    return "labels"


def _guess_kind(y: np.ndarray, task: str) -> str:
    if task != semconv.TASK_CLASSIFICATION:
        return "values"
    if y.dtype.kind not in "fc":
        return "labels"
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2:
        in_unit = y.min() >= 0.0 and y.max() <= 1.0
        return "proba" if in_unit and np.allclose(y.sum(axis=1), 1.0, atol=1e-3) else "scores"
    if y.size and np.array_equal(y, np.round(y)):
        return "labels"
    return "proba" if y.size and y.min() >= 0.0 and y.max() <= 1.0 else "scores"


def _from_proba(p: np.ndarray, classes) -> Outputs:
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.ndim == 1:  # probability of the positive class
        positive = p >= 0.5
        confidence = np.where(positive, p, 1.0 - p)
        return Outputs(
            rows=p.shape[0],
            label_index=positive.astype(np.int64),
            classes=classes,
            confidence=confidence,
            margin=np.abs(2.0 * p - 1.0),
        )
    top2 = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:] if p.shape[1] > 1 else np.hstack([np.zeros_like(p), p])
    return Outputs(
        rows=p.shape[0],
        label_index=p.argmax(axis=1),
        classes=classes,
        confidence=top2[:, 1],
        margin=top2[:, 1] - top2[:, 0],
    )


def _from_scores(s: np.ndarray, classes) -> Outputs:
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.ndim == 1:
        return Outputs(rows=s.shape[0], label_index=(s > 0).astype(np.int64), classes=classes, values=s)
    return Outputs(rows=s.shape[0], label_index=s.argmax(axis=1), classes=classes, values=s.max(axis=1))

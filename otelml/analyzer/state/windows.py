"""Tumbling windows of one model version: merged distributions and counts per metric and attribute set.

A point belongs to the window that holds its end time (``time_unix_nano``; a point ending exactly on a boundary
belongs to the window that ends there). Histograms are kept as lists and merged once, when the window closes.

A delta point carries what happened over its whole interval ``(start, end]``, and that interval need not match a
window: an export that comes late (a busy machine, an export interval as long as the window) leaves the window it
skipped with nothing from that source and puts two windows' worth into the next. Each window therefore keeps, per
source (the resource that sent the points), the time its points span (``landed``) and the part of its own span that
the source's points cover wherever they landed (``covered``). When the two differ by half a window or more for any
source, the window is *partial*: its counts are not that source's counts for this window. A source that sent nothing
over the window's span (no points covering it) is silence, not a partial window.

Attribute values come from senders, so a window holds a bounded number of attribute sets: at most ``max_values``
per metric and feature, and ``max_series`` in all (the state's ``Limits``). A new attribute set past either cap is
folded into the metric's (and feature's) ``__other__`` stand-in (:func:`fold`): the feature name is kept, the value
of every other known attribute (category, labels, non-finite kind) becomes ``__other__``, and unknown attributes
become one ``__other__`` pair. Detectors then see mass move to a value they have not seen, and memory stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ... import histogram, semconv
from ..ingest.points import ExplicitHistogram, Point

_COMPACT_AT = 64
EXEMPLAR_STREAMS = 32  # streams per window whose exemplars are kept ...
EXEMPLARS_PER_STREAM = 2  # ... the newest of each
MAX_SPANS = 16  # time spans kept per source and window; past it the two closest merge (an over-estimate)
_VALUES = frozenset(  # attributes whose values fold into __other__ past the caps; the feature name is kept
    (semconv.FEATURE_CATEGORY, semconv.PREDICTION_LABEL, semconv.TRUE_LABEL, semconv.NONFINITE_KIND)
)
_UNKNOWN = ((semconv.OTHER_VALUE, semconv.OTHER_VALUE),)  # what attributes of other names fold into
_TABLES = {"exponential": "histograms", "sum": "counters", "explicit": "explicit"}  # point kind -> its table


def window_index(time_unix_nano: int, window_ns: int) -> int:
    return (time_unix_nano - 1) // window_ns


@dataclass
class Window:
    """An open window; ``add`` points, then ``close``."""

    index: int
    window_ns: int
    histograms: dict = field(default_factory=dict)  # (metric, extra attributes) -> [ExpHistogram]
    explicit: dict = field(default_factory=dict)  # (metric, extra attributes) -> ExplicitHistogram
    counters: dict = field(default_factory=dict)  # (metric, extra attributes) -> number
    gauges: dict = field(default_factory=dict)  # (metric, extra attributes) -> last value
    exemplars: dict = field(default_factory=dict)  # (metric, extra attributes) -> its newest exemplars, oldest first
    points: int = 0
    spans: dict = field(default_factory=dict)  # source -> ([landed (start, end)], [covered (start, end)]), merged
    series: dict = field(default_factory=dict)  # (metric, feature) -> attribute sets held (overflow not counted)
    held: int = 0  # attribute sets held, all metrics (overflow not counted)

    def capped(self, kind: str, metric: str, extra: tuple, limits) -> tuple:
        """``extra``, or its ``__other__`` stand-in (:func:`fold`) when a new attribute set would pass the caps."""
        if (metric, extra) in getattr(self, _TABLES.get(kind, "gauges")):
            return extra
        group = (metric, _feature(extra))
        count = self.series.get(group, 0)
        if count < limits.max_values and self.held < limits.max_series:
            self.series[group] = count + 1
            self.held += 1
            return extra
        folded = fold(extra)
        return extra if folded == extra else folded

    def add(self, point: Point, extra: tuple) -> str | None:
        """Add a delta point; returns a reason if it cannot be added."""
        key = (point.key.metric, extra)
        if point.kind == "exponential":
            pending = self.histograms.setdefault(key, [])
            pending.append(point.value)
            if len(pending) >= _COMPACT_AT:
                pending[:] = [histogram.merge_all(pending)]
        elif point.kind == "sum":
            self.counters[key] = self.counters.get(key, 0) + point.value
        elif point.kind == "gauge":
            self.gauges[key] = point.value
        elif point.kind == "explicit":
            reason = self._add_explicit(key, point.value)
            if reason:
                return reason
        if point.exemplars:
            self._keep_exemplar(key, point.exemplars[-1])
        self.points += 1
        return None

    def land(self, source, start_ns: int, end_ns: int) -> None:
        """A point of ``source`` over ``(start_ns, end_ns]`` landed in this window."""
        _add_span(self.spans.setdefault(source, ([], []))[0], start_ns, end_ns)

    def cover(self, source, start_ns: int, end_ns: int) -> None:
        """A point of ``source`` over ``(start_ns, end_ns]``, which overlaps this window, landed here or later."""
        start = self.index * self.window_ns
        _add_span(self.spans.setdefault(source, ([], []))[1], max(start_ns, start), min(end_ns, start + self.window_ns))

    def partial(self) -> bool:
        """Whether some source's points here span half a window more or less than they cover of this window."""
        for landed, covered in self.spans.values():
            spanned = sum(end - start for start, end in landed)
            overlap = sum(end - start for start, end in covered)
            if 2 * abs(spanned - overlap) >= self.window_ns:
                return True
        return False

    def _keep_exemplar(self, key: tuple, exemplar) -> None:
        """Keep the newest EXEMPLARS_PER_STREAM exemplars of each of the first EXEMPLAR_STREAMS streams."""
        kept = self.exemplars.get(key)
        if kept is None:
            if len(self.exemplars) >= EXEMPLAR_STREAMS:
                return
            kept = self.exemplars[key] = []
        kept.append(exemplar)
        del kept[:-EXEMPLARS_PER_STREAM]

    def _add_explicit(self, key, value: ExplicitHistogram) -> str | None:
        current = self.explicit.get(key)
        if current is None:
            self.explicit[key] = value
            return None
        if current.bounds != value.bounds:
            return f"metric {key[0]!r}: explicit histogram bounds changed within a window"
        total = None if current.sum is None or value.sum is None else current.sum + value.sum
        self.explicit[key] = ExplicitHistogram(
            current.bounds, current.counts + value.counts, current.count + value.count, total, None, None
        )
        return None

    def close(self, model: str, version: str, reason: str) -> "ClosedWindow":
        return ClosedWindow(
            model=model,
            version=version,
            index=self.index,
            start_unix_nano=self.index * self.window_ns,
            end_unix_nano=(self.index + 1) * self.window_ns,
            histograms={k: histogram.merge_all(v) for k, v in self.histograms.items()},
            explicit=dict(self.explicit),
            counters=dict(self.counters),
            gauges=dict(self.gauges),
            exemplars=tuple((*key, e) for key, kept in self.exemplars.items() for e in kept),
            points=self.points,
            closed_by=reason,
            partial=self.partial(),
        )


@dataclass(frozen=True, eq=False)
class ClosedWindow:
    """A closed window: what detectors read, what the store keeps, what ``/api/models`` summarises."""

    model: str
    version: str
    index: int
    start_unix_nano: int
    end_unix_nano: int
    histograms: dict
    explicit: dict
    counters: dict
    gauges: dict
    exemplars: tuple  # (metric, extra attributes, Exemplar)
    points: int
    closed_by: str  # "watermark" (the model's own data moved past it) or "idle" (the model went quiet)
    # a source's points here span half a window more or less than they cover of it (see the module docstring): its
    # counts are not the source's counts for this window, so detectors that read counts or absence skip it
    partial: bool = False

    def counter(self, metric: str) -> float:
        """Total of a counter over all its attribute sets."""
        return sum(v for (m, _), v in self.counters.items() if m == metric)

    def histogram(self, metric: str, **attributes) -> histogram.ExpHistogram | None:
        """The merged histogram of ``metric`` over the attribute sets that match ``attributes``."""
        parts = [
            h
            for (m, extra), h in self.histograms.items()
            if m == metric and all(dict(extra).get(k) == v for k, v in attributes.items())
        ]
        return histogram.merge_all(parts) if parts else None

    def summary(self) -> dict:
        return {
            "index": self.index,
            "start_unix_nano": self.start_unix_nano,
            "end_unix_nano": self.end_unix_nano,
            "points": self.points,
            "closed_by": self.closed_by,
            "partial": self.partial,
        }


def _feature(extra: tuple):
    for name, value in extra:
        if name == semconv.FEATURE_NAME:
            return value
    return None


def fold(extra: tuple) -> tuple:
    """The ``__other__`` stand-in of an attribute set: the feature name kept, every other value ``__other__``.

    Example:
        >>> fold((("otelml.feature.category", "red"), ("otelml.feature.name", "colour"), ("shard", "7")))
        (('__other__', '__other__'), ('otelml.feature.category', '__other__'), ('otelml.feature.name', 'colour'))
    """
    kept = {
        (n, v if n == semconv.FEATURE_NAME else semconv.OTHER_VALUE)
        for n, v in extra
        if n in _VALUES or n == semconv.FEATURE_NAME
    }
    if any(n not in _VALUES and n != semconv.FEATURE_NAME for n, _ in extra):
        kept.update(_UNKNOWN)
    return tuple(sorted(kept))


def _add_span(spans: list, start: int, end: int) -> None:
    """Add ``(start, end]`` to a sorted list of disjoint spans, merging what touches or overlaps it."""
    if end <= start:
        return
    kept = []
    for s, e in spans:
        if e < start or s > end:
            kept.append((s, e))
        else:
            start, end = min(start, s), max(end, e)
    kept.append((start, end))
    kept.sort()
    while len(kept) > MAX_SPANS:  # merge the two closest neighbours
        i = min(range(len(kept) - 1), key=lambda j: kept[j + 1][0] - kept[j][1])
        kept[i : i + 2] = [(kept[i][0], kept[i + 1][1])]
    spans[:] = kept

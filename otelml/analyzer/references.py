"""Reference distributions: what a model version's inputs and outputs looked like when it was known to be good.

A reference is a set of merged histograms keyed like a window's (metric name, extra attributes), so a reference
and a window compare bucket for bucket. It is learned from a warm-up of live traffic (the first windows of a new
version, until every feature has ``warmup`` observations) or built from a dataset with the same histogram code the
SDK uses. Its content hash identifies it; replacing a pinned reference is an explicit, logged action (see
``otelml.analyzer.store``).

Example:
    >>> import numpy as np
    >>> ref = from_data("m", "1", ["a", "b"], np.arange(10.0).reshape(5, 2), "example")
    >>> ref.rows, sorted(ref.features()), len(ref.hash)
    (5, ['a', 'b'], 64)
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .. import histogram, semconv
from .state.windows import ClosedWindow


@dataclass(frozen=True, eq=False)
class Reference:
    model: str
    version: str
    histograms: dict  # (metric name, extra attributes) -> ExpHistogram
    source: str
    rows: int
    created_unix_nano: int = field(default_factory=time.time_ns)

    @cached_property
    def hash(self) -> str:
        return content_hash(self.histograms)

    def features(self) -> dict:
        """Feature name -> histogram."""
        return {
            dict(extra)[semconv.FEATURE_NAME]: h
            for (metric, extra), h in self.histograms.items()
            if metric == semconv.METRIC_FEATURE_VALUE
        }

    def summary(self) -> dict:
        return {
            "model": self.model,
            "version": self.version,
            "hash": self.hash,
            "source": self.source,
            "rows": self.rows,
            "features": {name: h.count for name, h in sorted(self.features().items())},
            "created_unix_nano": self.created_unix_nano,
        }


def content_hash(histograms: dict) -> str:
    """SHA-256 over a canonical encoding of the histograms (independent of dict order)."""
    digest = hashlib.sha256()
    for key in sorted(histograms, key=repr):
        h = histograms[key]
        digest.update(repr(key).encode())
        digest.update(
            repr((h.scale, h.zero_threshold, h.zero_count, h.positive_offset, h.negative_offset, h.count)).encode()
        )
        digest.update(h.positive.astype("<i8").tobytes() + b"|" + h.negative.astype("<i8").tobytes())
    return digest.hexdigest()


def _feature_key(name: str) -> tuple:
    return (semconv.METRIC_FEATURE_VALUE, ((semconv.FEATURE_NAME, name),))


def from_data(model: str, version: str, names, numeric: np.ndarray, source: str) -> Reference:
    """A reference from a dataset (rows by features), with the SDK's histogram code; NaN and inf are left out."""
    hists = histogram.from_columns(numeric)
    return Reference(
        model, version, {_feature_key(n): h for n, h in zip(names, hists)}, source, rows=int(numeric.shape[0])
    )


def from_windows(model: str, version: str, windows: list[ClosedWindow]) -> Reference:
    """A reference from closed windows: every histogram merged over them."""
    keys = {key for w in windows for key in w.histograms}
    merged = {key: histogram.merge_all([w.histograms[key] for w in windows if key in w.histograms]) for key in keys}
    rows = int(sum(w.counter(semconv.METRIC_ROWS) for w in windows))
    first, last = windows[0].index, windows[-1].index
    return Reference(model, version, merged, f"warm-up: windows {first}..{last}", rows=rows)


class Warmup:
    """Collects the first windows of each model version until every feature has ``observations`` values."""

    def __init__(self, observations: int):
        self.observations = observations
        self._windows: dict = {}  # (model, version) -> [ClosedWindow]

    def add(self, window: ClosedWindow) -> Reference | None:
        """Add a closed window; returns the learned reference once the warm-up is complete."""
        if window.points == 0:
            return None
        key = (window.model, window.version)
        windows = self._windows.setdefault(key, [])
        windows.append(window)
        counts = _feature_counts(windows)
        if counts and min(counts.values()) >= self.observations:
            del self._windows[key]
            return from_windows(window.model, window.version, windows)
        return None

    def forget(self, key: tuple) -> None:
        """Drop the windows collected for a model version (evicted at the cap on models)."""
        self._windows.pop(key, None)

    def progress(self, model: str, version: str) -> int:
        """Observations of the least-observed feature so far."""
        counts = _feature_counts(self._windows.get((model, version), []))
        return min(counts.values()) if counts else 0


def _feature_counts(windows) -> dict:
    counts: dict = {}
    for w in windows:
        for (metric, extra), h in w.histograms.items():
            if metric == semconv.METRIC_FEATURE_VALUE:
                counts[extra] = counts.get(extra, 0) + h.count
    return counts

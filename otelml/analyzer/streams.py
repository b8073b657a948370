"""Cumulative streams to deltas: the analyzer works on what happened in each interval.

A cumulative point carries everything since its start time. The delta of two successive points of one stream is
their difference; the stream was reset (a restarted process, a new start time, counts that fall) when the start time
changes or the difference would be negative, and then the new point counts whole, from its own start. A point that
is not newer than the last one seen is stale (a duplicate or out of order) and is dropped and counted.

Example:
    >>> import numpy as np
    >>> from otelml.analyzer.points import Point, StreamKey
    >>> key = StreamKey((), "s", "m", ())
    >>> deltas = Deltas()
    >>> [deltas.delta(Point(key, "sum", 10, t, True, v, monotonic=True)).value for t, v in [(20, 5), (30, 8), (40, 2)]]
    [5, 3, 2]
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .. import histogram
from .points import ExplicitHistogram, Point


class StalePoint(ValueError):
    """A cumulative point that is not newer than the stream's last point."""


class Deltas:
    """Per-stream memory of the last cumulative point; bounded by the caller's cap on streams."""

    def __init__(self):
        self.last: dict = {}  # StreamKey -> Point

    def __len__(self) -> int:
        return len(self.last)

    def delta(self, point: Point) -> Point:
        """The point as a delta over ``(start, time]``; raises :class:`StalePoint` for stale cumulative points."""
        if not point.cumulative or point.kind == "gauge":
            return point
        previous = self.last.get(point.key)
        if previous is not None and point.time_unix_nano <= previous.time_unix_nano:
            raise StalePoint(f"stale cumulative point for {point.key.metric!r}")
        self.last.pop(point.key, None)  # and in again at the end: the streams stay in the order of their last points
        self.last[point.key] = point
        if previous is None or previous.start_unix_nano != point.start_unix_nano:
            return replace(point, cumulative=False)
        value = _difference(point, previous)
        if value is None:  # counts fell: a reset that kept its start time
            return replace(point, cumulative=False)
        return replace(point, value=value, start_unix_nano=previous.time_unix_nano, cumulative=False)

    def forget_idle(self, before_ns: int) -> bool:
        """Forget the stream updated longest ago if its last point is older than ``before_ns``; returns whether one
        was forgotten. If it comes back, its next point counts whole from its start time, as a new stream's does."""
        key = next(iter(self.last), None)
        if key is None or self.last[key].time_unix_nano >= before_ns:
            return False
        del self.last[key]
        return True

    def forget(self, keys) -> None:
        for key in keys:
            self.last.pop(key, None)


def _difference(new: Point, old: Point):
    if new.kind == "sum":
        delta = new.value - old.value
        return None if new.monotonic and delta < 0 else delta
    if new.kind == "exponential":
        return _exponential_difference(new.value, old.value)
    if new.kind == "explicit":
        return _explicit_difference(new.value, old.value)
    return None


def _exponential_difference(new: histogram.ExpHistogram, old: histogram.ExpHistogram):
    new, old = histogram.align(new, old)
    positive = _subtract(new.positive_offset, new.positive, old.positive_offset, old.positive)
    negative = _subtract(new.negative_offset, new.negative, old.negative_offset, old.negative)
    zero = new.zero_count - old.zero_count
    count = new.count - old.count
    if positive is None or negative is None or zero < 0 or count < 0:
        return None
    (p_off, p), (n_off, n) = positive, negative
    return histogram.ExpHistogram(
        scale=new.scale,
        zero_threshold=new.zero_threshold,
        zero_count=zero,
        positive_offset=p_off,
        positive=p,
        negative_offset=n_off,
        negative=n,
        count=count,
        sum=new.sum - old.sum,
        # min and max of the interval are unknown from cumulative points; the cumulative ones bound them
        min=new.min,
        max=new.max,
    )


def _subtract(new_offset, new, old_offset, old):
    if old.size == 0:
        return new_offset, new
    offset = min(new_offset, old_offset)
    size = max(new_offset + new.size, old_offset + old.size) - offset
    out = np.zeros(size, dtype=np.int64)
    out[new_offset - offset : new_offset - offset + new.size] += new
    out[old_offset - offset : old_offset - offset + old.size] -= old
    if (out < 0).any():
        return None
    nonzero = np.flatnonzero(out)
    if nonzero.size == 0:
        return 0, out[:0]
    return offset + int(nonzero[0]), out[nonzero[0] : nonzero[-1] + 1]


def _explicit_difference(new: ExplicitHistogram, old: ExplicitHistogram):
    if new.bounds != old.bounds or new.counts.size != old.counts.size:
        return None
    counts = new.counts - old.counts
    if (counts < 0).any():
        return None
    total = None if new.sum is None or old.sum is None else new.sum - old.sum
    return ExplicitHistogram(new.bounds, counts, new.count - old.count, total, None, None)

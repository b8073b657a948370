"""Histogram data points (exponential and explicit) checked against the data model and otelml's bounds, as the
analyzer's histogram values."""

from __future__ import annotations

import math

import numpy as np

from ...histogram import MAX_SCALE, MIN_SCALE, ExpHistogram
from .errors import Invalid
from .points import ExplicitHistogram

MAX_BUCKETS = 16384  # per sign of an exponential histogram
MAX_COUNT = 2**53  # one histogram point's count, or one point of otelml's counters: exact as a double


def exponential(point) -> ExpHistogram:
    what = "exponential histogram"
    scale, zero_threshold, total = point.scale, point.zero_threshold, point.sum
    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise Invalid(f"{what} scale {scale} outside [{MIN_SCALE}, {MAX_SCALE}]")
    if not 0.0 <= zero_threshold < math.inf:
        raise Invalid(f"{what} zero_threshold {zero_threshold} is negative or not finite")
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
        raise Invalid(f"exponential histogram has {size} {sign} buckets, more than {MAX_BUCKETS}")
    low, high = index_range(scale)
    if size and not low <= buckets.offset <= buckets.offset + size - 1 <= high:
        raise Invalid(
            f"exponential histogram {sign} buckets {buckets.offset} to {buckets.offset + size - 1} lie outside "
            f"[{low}, {high}], the indices of finite values at scale {scale}"
        )
    return counts, sum(counts)


def explicit(point) -> ExplicitHistogram:
    what = "explicit histogram"
    bounds = np.array(point.explicit_bounds, dtype=np.float64)
    counts = np.array(point.bucket_counts, dtype=np.uint64)
    if counts.size == 0 and point.count == 0:
        counts = np.zeros(bounds.size + 1, dtype=np.uint64)
    if counts.size != bounds.size + 1:
        raise Invalid(f"{what} has {counts.size} bucket counts for {bounds.size} bounds")
    if not (np.isfinite(bounds).all() and (np.diff(bounds) > 0).all()):
        raise Invalid(f"{what} bounds are not finite and strictly increasing")
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
        raise Invalid(f"{what} count {count} != {in_buckets} in buckets")
    if count > MAX_COUNT:  # int64 sums of such histograms over windows and references would wrap round
        raise Invalid(f"{what} count {count} is more than {MAX_COUNT}")


def _check_stats(what: str, point) -> None:
    for name in ("sum", "min", "max"):
        value = _optional(point, name)
        if value is not None and not math.isfinite(value):
            raise Invalid(f"{what} {name} {value} is not finite")
    if point.HasField("min") and point.HasField("max") and point.min > point.max:
        raise Invalid(f"{what} min {point.min} > max {point.max}")


def _optional(point, name: str):
    return getattr(point, name) if point.HasField(name) else None

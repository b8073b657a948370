"""Exponential histograms computed with numpy, column by column, without a Python loop over values.

This is the one piece of histogram code in otelml: the SDK aggregates live batches with it and the analyzer builds
references from datasets with it, so a reference and live telemetry are comparable bucket for bucket.

The bucket model is OTLP's ``ExponentialHistogramDataPoint`` (opentelemetry-proto, metrics/v1/metrics.proto):
``base = 2 ** (2 ** -scale)``; positive bucket ``i`` holds values in ``(base**i, base**(i+1)]``, negative bucket
``i`` holds their mirror images, and values with ``|x| <= zero_threshold`` are counted in ``zero_count``.

Resolution. A plain exponential histogram with at most ``max_size`` buckets per sign lowers its scale until the
smallest and the largest magnitude both fit. A feature such as ``1000 +/- 1`` that now and then holds ``1e-9``
would then fall to scale 2 (19% wide buckets), and a 0.2 sd shift would vanish. Here the layout may instead raise
``zero_threshold`` to fold a small share of the smallest magnitudes (at most ``max_fold_fraction`` of the non-zero
values) into the zero bucket, when that buys at least ``min_fold_gain`` more scale steps. The fold is on the wire
as OTLP's ``zero_threshold``, so any consumer reads the histogram correctly.

Example:
    >>> import numpy as np
    >>> h = from_values(np.array([0.0, 1.0, 2.0, 3.0, -4.0]))
    >>> h.count, h.zero_count, int(h.positive.sum()), int(h.negative.sum()), h.min, h.max
    (5, 1, 3, 1, -4.0, 3.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MAX_SCALE = 20
MIN_SCALE = -10
_EMPTY = np.zeros(0, dtype=np.int64)
_OCTAVES = 64  # octaves below a column's largest magnitude that the fold rule tells apart


@dataclass(frozen=True)
class Layout:
    """How histograms are laid out: bucket budget per sign, finest scale, and the zero-bucket fold rule."""

    max_size: int = 160
    max_scale: int = MAX_SCALE
    max_fold_fraction: float = 0.02
    min_fold_gain: int = 2

    def __post_init__(self):
        if self.max_size < 2:
            raise ValueError(f"max_size must be at least 2, got {self.max_size}")
        if not MIN_SCALE <= self.max_scale <= MAX_SCALE:
            raise ValueError(f"max_scale must lie in [{MIN_SCALE}, {MAX_SCALE}], got {self.max_scale}")
        if not 0.0 <= self.max_fold_fraction < 1.0:
            raise ValueError(f"max_fold_fraction must lie in [0, 1), got {self.max_fold_fraction}")


DEFAULT_LAYOUT = Layout()


@dataclass(frozen=True, eq=False)
class ExpHistogram:
    """One exponential histogram of finite values, in the OTLP data model."""

    scale: int = MAX_SCALE
    zero_threshold: float = 0.0
    zero_count: int = 0
    positive_offset: int = 0
    positive: np.ndarray = field(default_factory=lambda: _EMPTY)
    negative_offset: int = 0
    negative: np.ndarray = field(default_factory=lambda: _EMPTY)
    count: int = 0
    sum: float = 0.0
    min: float = float("inf")
    max: float = float("-inf")

    def __eq__(self, other):
        if not isinstance(other, ExpHistogram):
            return NotImplemented
        return (
            (self.scale, self.zero_threshold, self.zero_count, self.count, self.sum, self.min, self.max)
            == (other.scale, other.zero_threshold, other.zero_count, other.count, other.sum, other.min, other.max)
            and _same_buckets(self.positive_offset, self.positive, other.positive_offset, other.positive)
            and _same_buckets(self.negative_offset, self.negative, other.negative_offset, other.negative)
        )

    def buckets(self):
        """Bucket bounds and counts in ascending order on the real line: ``(lower, upper, counts)`` arrays.

        The zero bucket spans ``[-zero_threshold, zero_threshold]``; empty buckets are left out.
        """
        base_exp = 2.0 ** -self.scale
        neg_idx = self.negative_offset + np.arange(self.negative.size)
        pos_idx = self.positive_offset + np.arange(self.positive.size)
        lower = np.concatenate(
            [-np.exp2((neg_idx[::-1] + 1) * base_exp), [-self.zero_threshold], np.exp2(pos_idx * base_exp)]
        )
        upper = np.concatenate(
            [-np.exp2(neg_idx[::-1] * base_exp), [self.zero_threshold], np.exp2((pos_idx + 1) * base_exp)]
        )
        counts = np.concatenate([self.negative[::-1], [self.zero_count], self.positive]).astype(np.int64)
        keep = counts > 0
        return lower[keep], upper[keep], counts[keep]


def _same_buckets(off_a, a, off_b, b):
    a, off_a = _trim(off_a, a)
    b, off_b = _trim(off_b, b)
    return a.size == b.size and (a.size == 0 or (off_a == off_b and np.array_equal(a, b)))


def _trim(offset, counts):
    nz = np.flatnonzero(counts)
    if nz.size == 0:
        return _EMPTY, 0
    return counts[nz[0] : nz[-1] + 1], offset + int(nz[0])


def from_values(values, layout: Layout = DEFAULT_LAYOUT) -> ExpHistogram:
    """Histogram of a one-dimensional array; NaN and infinities are left out (count them before)."""
    return from_columns(np.asarray(values, dtype=np.float64).reshape(-1, 1), layout)[0]


def from_columns(values, layout: Layout = DEFAULT_LAYOUT) -> list[ExpHistogram]:
    """One histogram per column of a two-dimensional array, all columns computed together.

    NaN and infinities are left out of the histograms; callers count them separately.

    Example:
        >>> import numpy as np
        >>> hs = from_columns(np.array([[1.0, -1.0], [2.0, np.nan]]))
        >>> [h.count for h in hs]
        [2, 1]
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"from_columns needs a two-dimensional array, got shape {x.shape}")
    n_rows, n_cols = x.shape
    if n_rows == 0 or n_cols == 0:
        return [ExpHistogram() for _ in range(n_cols)]
    # Work on columns as contiguous rows: reductions along contiguous memory are about ten times faster.
    xt = np.ascontiguousarray(x.T)

    n_finite = np.full(n_cols, n_rows)
    if np.isfinite(xt).all():
        mins, maxs = xt.min(axis=1), xt.max(axis=1)
    else:
        finite = np.isfinite(xt)
        n_finite = finite.sum(axis=1)
        mins = np.where(finite, xt, np.inf).min(axis=1)
        maxs = np.where(finite, xt, -np.inf).max(axis=1)
        xt = np.where(finite, xt, 0.0)  # counted as zeros below, then taken off the zero count
    sums = xt.sum(axis=1)

    level = np.abs(xt)
    with np.errstate(divide="ignore"):
        np.log2(level, out=level)  # -inf for zeros
    level_hi = level.max(axis=1)
    level_lo = level.min(axis=1)
    for c in np.flatnonzero(np.isneginf(level_lo) & np.isfinite(level_hi)):
        row = level[c]
        level_lo[c] = row[np.isfinite(row)].min()
    has_values = np.isfinite(level_hi)

    with np.errstate(invalid="ignore"):  # columns of zeros only: -inf - -inf
        scale_full = _scale_for_span(level_hi - level_lo, layout)
        fold_lo = _fold_candidates(level, level_lo, level_hi, scale_full, layout)
        scale_fold = _scale_for_span(level_hi - fold_lo, layout)
    use_fold = has_values & (scale_fold - scale_full >= layout.min_fold_gain)
    scale = np.where(use_fold, scale_fold, scale_full)
    factor = np.exp2(scale.astype(np.float64))
    lowest = np.ceil(np.where(has_values, level_lo, 0.0) * factor) - 1
    # Folding keeps the top max_size buckets only, which is no more than the fold rule allowed.
    top = np.ceil(np.where(has_values, level_hi, 0.0) * factor) - 1
    lowest = np.where(use_fold, np.maximum(lowest, top - layout.max_size + 1), lowest)

    # Slot of each value in one bincount over all columns: per column, M negative slots (mirrored), one zero slot,
    # M positive slots. Folded values and zeros land in the zero slot. The clip only matters if a value lies within
    # a rounding error of the top bucket's boundary.
    size = layout.max_size
    width = 2 * size + 1
    slot = level
    np.multiply(slot, factor[:, None], out=slot)
    np.ceil(slot, out=slot)
    np.subtract(slot, lowest[:, None], out=slot)
    np.clip(slot, 0, size, out=slot)
    np.copysign(slot, xt, out=slot)
    np.add(slot, (np.arange(n_cols) * width + size)[:, None], out=slot)
    counts = np.bincount(slot.astype(np.int64).ravel(), minlength=n_cols * width).reshape(n_cols, width)
    counts[:, size] -= n_rows - n_finite
    zero_threshold = np.where(use_fold, np.exp2(lowest / factor), 0.0)

    result = []
    for c in range(n_cols):
        offset = int(lowest[c])
        pos, p_off = _trim(offset, counts[c, size + 1 :])
        neg, n_off = _trim(offset, counts[c, size - 1 :: -1])
        result.append(
            ExpHistogram(
                scale=int(scale[c]) if has_values[c] else layout.max_scale,
                zero_threshold=float(zero_threshold[c]),
                zero_count=int(counts[c, size]),
                positive_offset=p_off,
                positive=pos,
                negative_offset=n_off,
                negative=neg,
                count=int(n_finite[c]),
                sum=float(sums[c]),
                min=float(mins[c]),
                max=float(maxs[c]),
            )
        )
    return result


def _scale_for_span(span, layout: Layout):
    """Finest scale at which magnitudes spanning ``span`` octaves fit in ``max_size`` buckets (one spare)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        fit = np.floor(np.log2((layout.max_size - 3) / span))
    fit = np.where(np.isfinite(fit), fit, layout.max_scale)
    return np.clip(fit, MIN_SCALE, layout.max_scale).astype(np.int64)


def _fold_candidates(level, level_lo, level_hi, scale_full, layout: Layout):
    """Per column, the smallest log2-magnitude kept when about ``max_fold_fraction`` of values fold into zero.

    Where the cut falls is estimated on whole octaves from a fixed-seed random sample of at most 1024 rows (one bincount
    over all columns); the smallest kept value is then found exactly, on the columns that would fold only.
    """
    candidates = (scale_full + layout.min_fold_gain <= layout.max_scale) & np.isfinite(level_hi)
    if layout.max_fold_fraction == 0 or not candidates.any():
        return level_lo
    n_cols, n_rows = level.shape
    sample = level if n_rows <= 1024 else level[:, np.random.default_rng(n_rows).integers(0, n_rows, 1024)]
    present = np.isfinite(sample)
    top = np.floor(np.where(np.isfinite(level_hi), level_hi, 0.0))
    # Octaves counted down from each column's top octave; everything 63 or more octaves down shares the last bin.
    depth = np.clip(top[:, None] - np.floor(np.where(present, sample, -np.inf)), 0, _OCTAVES - 1).astype(np.int64)
    keys = depth + (np.arange(n_cols) * _OCTAVES)[:, None]
    per_octave = np.bincount(keys[present], minlength=n_cols * _OCTAVES).reshape(n_cols, _OCTAVES)
    below = np.cumsum(per_octave[:, ::-1], axis=1)[:, ::-1] - per_octave
    allowed = below <= layout.max_fold_fraction * present.sum(axis=1)[:, None]
    cut = top - np.argmax(allowed, axis=1)
    fold_lo = level_lo.copy()
    for c in np.flatnonzero(candidates & (cut > np.floor(level_lo))):
        row = level[c]
        fold_lo[c] = row[row >= cut[c]].min()
    return fold_lo


def merge(a: ExpHistogram, b: ExpHistogram, layout: Layout = DEFAULT_LAYOUT) -> ExpHistogram:
    """Merge two histograms; see :func:`merge_all`.

    Example:
        >>> import numpy as np
        >>> h = merge(from_values(np.array([1.0, 2.0])), from_values(np.array([1000.0])))
        >>> h.count, int(h.positive.sum()), h.scale <= 20
        (3, 3, True)
    """
    return merge_all([a, b], layout)


def merge_all(histograms, layout: Layout = DEFAULT_LAYOUT) -> ExpHistogram:
    """Merge many histograms at once: downscale all to the coarsest scale, widen the zero bucket to the largest
    threshold, then fit the result into ``max_size`` buckets per sign by the same rule as :func:`from_columns`.

    Example:
        >>> import numpy as np
        >>> parts = [from_values(np.array([v])) for v in (1.0, 2.0, -3.0, 0.0)]
        >>> h = merge_all(parts)
        >>> h.count, h.zero_count, h.min, h.max
        (4, 1, -3.0, 2.0)
    """
    parts = [h for h in histograms if h.count]
    if len(parts) <= 1:
        return parts[0] if parts else ExpHistogram(scale=layout.max_scale)
    scale = min(h.scale for h in parts)
    pos = _sum_buckets([(h.positive_offset, h.positive, h.scale - scale) for h in parts])
    neg = _sum_buckets([(h.negative_offset, h.negative, h.scale - scale) for h in parts])
    return _fit(
        scale,
        max(h.zero_threshold for h in parts),
        sum(h.zero_count for h in parts),
        pos,
        neg,
        count=sum(h.count for h in parts),
        total=float(sum(h.sum for h in parts)),
        low=min(h.min for h in parts),
        high=max(h.max for h in parts),
        layout=layout,
    )


def _sum_buckets(parts):
    """Add bucket arrays given as ``(offset, counts, downscale_by)`` into one ``(offset, counts)``."""
    parts = [p for p in parts if p[1].size]
    if not parts:
        return 0, _EMPTY
    index = np.concatenate([(off + np.arange(c.size)) >> by for off, c, by in parts])
    counts = np.concatenate([c for _, c, _ in parts])
    offset = int(index.min())
    return offset, np.bincount(index - offset, weights=counts).astype(np.int64)


def _downscale(offset, counts, by):
    if counts.size == 0 or by == 0:
        return offset, counts
    index = (offset + np.arange(counts.size)) >> by
    new_offset = int(index[0])
    return new_offset, np.bincount(index - new_offset, weights=counts).astype(np.int64)


def _fold_below(offset, counts, scale, zero_threshold):
    """Move buckets that lie wholly inside ``[-zero_threshold, zero_threshold]`` into the zero bucket."""
    if zero_threshold <= 0 or counts.size == 0:
        return offset, counts, 0
    upper = np.exp2((offset + np.arange(counts.size) + 1) * 2.0**-scale)
    inside = upper <= zero_threshold * (1 + 1e-12)
    n_inside = int(inside.sum())
    folded = int(counts[:n_inside].sum())
    return offset + n_inside, counts[n_inside:], folded


def _fit(scale, zero_threshold, zero_count, pos, neg, *, count, total, low, high, layout: Layout):
    """Bring merged buckets within ``max_size`` per sign, by folding small magnitudes or lowering the scale."""
    (p_off, p), (n_off, n) = pos, neg
    p_off, p, moved_p = _fold_below(p_off, p, scale, zero_threshold)
    n_off, n, moved_n = _fold_below(n_off, n, scale, zero_threshold)
    zero_count += moved_p + moved_n
    p, p_off = _trim(p_off, p)
    n, n_off = _trim(n_off, n)

    signs = [(p_off, p), (n_off, n)]
    by = _shift_to_fit(signs, None, layout.max_size)
    cut = _fold_cut(p_off, p, n_off, n, layout.max_fold_fraction)
    by_fold = _shift_to_fit(signs, cut, layout.max_size) if cut is not None else by
    if by - by_fold >= layout.min_fold_gain:
        # Fold no more than this scale needs: keep the top max_size buckets of each sign.
        by = by_fold
        lowest_kept = max((off + c.size - 1 >> by) - layout.max_size + 1 for off, c in signs if c.size)
        zero_threshold = max(zero_threshold, float(np.exp2(lowest_kept * 2.0 ** -(scale - by))))
    scale -= by
    (p_off, p), (n_off, n) = _downscale(p_off, p, by), _downscale(n_off, n, by)
    p_off, p, moved_p = _fold_below(p_off, p, scale, zero_threshold)
    n_off, n, moved_n = _fold_below(n_off, n, scale, zero_threshold)
    zero_count += moved_p + moved_n
    p, p_off = _trim(p_off, p)
    n, n_off = _trim(n_off, n)
    return ExpHistogram(scale, zero_threshold, zero_count, p_off, p, n_off, n, count, total, low, high)


def _shift_to_fit(signs, cut, max_size):
    """Smallest downscale so that each sign's buckets, from ``cut`` upward if given, span ``max_size`` or fewer."""
    by = 0
    while by < MAX_SCALE - MIN_SCALE:
        fits = True
        for offset, counts in signs:
            if counts.size == 0:
                continue
            top = (offset + counts.size - 1) >> by
            bottom = offset >> by if cut is None else max(offset >> by, cut >> by)
            fits &= top - bottom + 1 <= max_size
        if fits:
            return by
        by += 1
    return by


def _fold_cut(p_off, p, n_off, n, max_fraction):
    """Highest bucket index below which at most ``max_fraction`` of the non-zero values lie (both signs)."""
    index = np.concatenate([p_off + np.arange(p.size), n_off + np.arange(n.size)])
    weight = np.concatenate([p, n])
    if weight.sum() == 0 or max_fraction == 0:
        return None
    order = np.argsort(index, kind="stable")
    index, weight = index[order], weight[order]
    below = np.cumsum(weight) - weight
    allowed = np.flatnonzero(below <= max_fraction * weight.sum())
    return int(index[allowed[-1]]) if allowed.size else None

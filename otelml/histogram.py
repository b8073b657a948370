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

(long: the one histogram type of SDK and analyzer, with the building, merging, aligning and folding that must agree
bucket for bucket.)

Example:
    >>> import numpy as np
    >>> h = from_values(np.array([0.0, 1.0, 2.0, 3.0, -4.0]))
    >>> h.count, h.zero_count, int(h.positive.sum()), int(h.negative.sum()), h.min, h.max
    (5, 1, 3, 1, -4.0, 3.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MAX_SCALE = 20
MIN_SCALE = -10
_EMPTY = np.zeros(0, dtype=np.int64)
_MIN_NORMAL_LEVEL = -1022.0  # log2 of the smallest normal double
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


@dataclass(eq=False, slots=True)
class ExpHistogram:
    """One exponential histogram of finite values, in the OTLP data model. Treated as immutable: every function
    here returns a new one (not frozen only because frozen dataclasses are seven times slower to create)."""

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
        neg_idx = self.negative_offset + np.arange(self.negative.size)[::-1]
        pos_idx = self.positive_offset + np.arange(self.positive.size)
        lower = np.concatenate([-_bound(neg_idx + 1, self.scale), [-self.zero_threshold], _bound(pos_idx, self.scale)])
        upper = np.concatenate([-_bound(neg_idx, self.scale), [self.zero_threshold], _bound(pos_idx + 1, self.scale)])
        counts = np.concatenate([self.negative[::-1], [self.zero_count], self.positive]).astype(np.int64)
        keep = counts > 0
        return lower[keep], upper[keep], counts[keep]


def quantile(h: ExpHistogram, q: float) -> float:
    """The ``q`` quantile, interpolated linearly inside its bucket (log-linearly would differ by under a bucket).

    Example:
        >>> import numpy as np
        >>> round(quantile(from_values(np.arange(1.0, 1001.0)), 0.5) / 500, 1)
        1.0
    """
    if h.count == 0:
        return math.nan
    lower, upper, counts = h.buckets()
    lower, upper = np.clip(lower, h.min, h.max), np.clip(upper, h.min, h.max)
    rank = q * h.count
    cumulative = np.cumsum(counts)
    at = min(int(np.searchsorted(cumulative, rank)), counts.size - 1)
    before = cumulative[at] - counts[at]
    share = (rank - before) / counts[at] if counts[at] else 0.0
    return float(lower[at] + min(max(share, 0.0), 1.0) * (upper[at] - lower[at]))


def positions(h: ExpHistogram, downscale_by: int = 0):
    """Non-empty buckets as ``(keys, counts)``: integer keys ascending along the real line (negative buckets, the
    zero bucket, positive buckets), equal for the same bucket of two histograms at the same layout. With
    ``downscale_by``, keys are those of the same buckets ``downscale_by`` scale steps coarser (then several buckets
    may share a key; the order stays ascending).

    Example:
        >>> import numpy as np
        >>> keys, counts = positions(from_values(np.array([-2.0, 0.0, 1.0, 1.0])))
        >>> bool((np.diff(keys) > 0).all()), counts.tolist()
        (True, [1, 1, 2])
    """
    neg = np.flatnonzero(h.negative)[::-1]
    pos = np.flatnonzero(h.positive)
    keys = np.concatenate(
        [
            -KEY_SPLIT - ((h.negative_offset + neg) >> downscale_by),
            [0] if h.zero_count else [],
            KEY_SPLIT + ((h.positive_offset + pos) >> downscale_by),
        ]
    )
    counts = np.concatenate([h.negative[neg], [h.zero_count] if h.zero_count else [], h.positive[pos]])
    return keys.astype(np.int64), counts.astype(np.int64)


KEY_SPLIT = 2**40  # keeps negative-bucket keys below zero and positive-bucket keys above it


def key_bounds(keys, scale: int, zero_threshold: float):
    """``(lower, upper)`` bounds of the buckets that :func:`positions` keys name, at a layout."""
    keys = np.asarray(keys, dtype=np.int64)
    lower, upper = np.empty(keys.size), np.empty(keys.size)
    pos, neg = keys >= KEY_SPLIT // 2, keys <= -KEY_SPLIT // 2
    zero = ~(pos | neg)
    index_pos, index_neg = keys[pos] - KEY_SPLIT, -keys[neg] - KEY_SPLIT
    lower[pos], upper[pos] = _bound(index_pos, scale), _bound(index_pos + 1, scale)
    lower[neg], upper[neg] = -_bound(index_neg + 1, scale), -_bound(index_neg, scale)
    lower[zero], upper[zero] = -zero_threshold, zero_threshold
    return lower, upper


def _bound(index, scale):
    """Lower bound of bucket ``index`` at ``scale``: ``base ** index``; past the largest double it is ``inf``."""
    with np.errstate(over="ignore"):
        return np.exp2(np.asarray(index, dtype=np.float64) * np.exp2(-np.asarray(scale, dtype=np.float64)))


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
    with np.errstate(over="ignore"):  # a sum past the largest double is inf, as OTLP allows
        sums = xt.sum(axis=1)

    level = np.abs(xt)
    with np.errstate(divide="ignore"):
        np.log2(level, out=level)  # -inf for zeros
    level_hi = level.max(axis=1)
    level_lo = level.min(axis=1)
    if (level_lo < _MIN_NORMAL_LEVEL).any() and (level_hi > -np.inf).any():
        # Subnormal magnitudes share the lowest normal bucket, as in OpenTelemetry's mappings (rare path).
        subnormal = (level < _MIN_NORMAL_LEVEL) & (level > -np.inf)
        level[subnormal] = _MIN_NORMAL_LEVEL
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

    # The zero bucket reaches just up to the largest folded magnitude: no further, so that merging with other
    # histograms folds as little of theirs as possible.
    zero_threshold = np.zeros(n_cols)
    for c in np.flatnonzero(use_fold):
        row = level[c]
        folded = np.abs(xt[c][(row <= lowest[c] / factor[c]) & (row > -np.inf)])
        zero_threshold[c] = folded.max() if folded.size else 0.0

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
    cut_depth = np.argmax(allowed, axis=1)
    cut = np.where(cut_depth < _OCTAVES - 1, top - cut_depth, -np.inf)  # the last bin lumps octaves: no cut inside it
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

    Buckets are handled as sparse (index, count) pairs until the result fits, so histograms whose ranges lie far
    apart never expand into a huge dense array.

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
    pos = _combine([_sparse(h.positive_offset, h.positive, h.scale - scale) for h in parts])
    neg = _combine([_sparse(h.negative_offset, h.negative, h.scale - scale) for h in parts])
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


def rebin(h: ExpHistogram, scale: int, zero_threshold: float) -> ExpHistogram:
    """``h`` at a coarser (or equal) ``scale`` and a wider (or equal) zero bucket, without any bucket limit: the
    way to compare histograms of different layouts bucket for bucket. The zero bucket may grow further to the
    bound of a bucket that straddles ``zero_threshold``; the result's ``zero_threshold`` says where it ends.

    Example:
        >>> import numpy as np
        >>> h = rebin(from_values(np.array([1.5, 3.0, 0.25])), scale=0, zero_threshold=0.5)
        >>> h.scale, h.zero_count, h.positive_offset, h.positive.tolist()
        (0, 1, 0, [1, 1])
    """
    if scale > h.scale or zero_threshold < h.zero_threshold:
        raise ValueError("rebin can only lower the scale and widen the zero bucket")
    by = h.scale - scale
    pos, neg, moved, zero_threshold = _fold_below(
        _sparse(h.positive_offset, h.positive, by), _sparse(h.negative_offset, h.negative, by), scale, zero_threshold
    )
    (p_off, p), (n_off, n) = _dense(pos), _dense(neg)
    return ExpHistogram(scale, zero_threshold, h.zero_count + moved, p_off, p, n_off, n, h.count, h.sum, h.min, h.max)


def align(*histograms: ExpHistogram) -> list[ExpHistogram]:
    """The histograms rebinned to one layout (the coarsest scale, the widest zero bucket), to compare or subtract
    them bucket for bucket.

    Example:
        >>> import numpy as np
        >>> a, b = align(from_values(np.array([1.0, 2.0])), from_values(np.array([1000.0, 3.0])))
        >>> a.scale == b.scale and a.zero_threshold == b.zero_threshold
        True
    """
    scale = min(h.scale for h in histograms)
    zero_threshold = max(h.zero_threshold for h in histograms)
    if all(h.scale == scale and h.zero_threshold == zero_threshold for h in histograms):
        return list(histograms)
    while True:
        out = [rebin(h, scale, zero_threshold) for h in histograms]
        widest = max(h.zero_threshold for h in out)
        if all(h.zero_threshold == widest for h in out):
            return out
        zero_threshold = widest


# Sparse buckets: (sorted unique indices, counts), both int64 arrays.
def _sparse(offset, counts, by):
    """Non-empty buckets of a dense ``(offset, counts)`` array as sparse pairs, downscaled by ``by`` steps."""
    nonzero = np.flatnonzero(counts)
    index, values = (offset + nonzero) >> by, counts[nonzero]
    if by == 0 or index.size == 0:
        return index, values
    starts = np.flatnonzero(np.concatenate([[True], index[1:] != index[:-1]]))  # sorted: merge runs
    return index[starts], np.add.reduceat(values, starts)


def _combine(parts):
    parts = [p for p in parts if p[0].size]
    if not parts:
        return _EMPTY, _EMPTY
    index = np.concatenate([i for i, _ in parts])
    counts = np.concatenate([c for _, c in parts])
    unique, inverse = np.unique(index, return_inverse=True)
    return unique, np.bincount(inverse, weights=counts, minlength=unique.size).astype(np.int64)


def _dense(sparse):
    index, counts = sparse
    if index.size == 0:
        return 0, _EMPTY
    dense = np.zeros(int(index[-1] - index[0]) + 1, dtype=np.int64)
    dense[index - index[0]] = counts
    return int(index[0]), dense


def _fold_below(pos, neg, scale, zero_threshold):
    """Move buckets at or below ``zero_threshold`` into the zero bucket: ``(pos, neg, moved, zero_threshold)``.

    A bucket that straddles the threshold is folded too and the threshold raised to its upper bound, so that every
    value stays on the right side of it.
    """
    moved = 0
    while zero_threshold > 0:
        changed = False
        signs = []
        for index, counts in (pos, neg):
            if index.size:
                lower = _bound(index, scale)
                fold = lower < zero_threshold * (1 - 1e-12)
                if fold.any():
                    zero_threshold = max(zero_threshold, float(_bound(index[fold][-1] + 1, scale)))
                    moved += int(counts[fold].sum())
                    index, counts = index[~fold], counts[~fold]
                    changed = True
            signs.append((index, counts))
        pos, neg = signs
        if not changed:
            break
    return pos, neg, moved, zero_threshold


def _fit(scale, zero_threshold, zero_count, pos, neg, *, count, total, low, high, layout: Layout):
    """Bring merged buckets within ``max_size`` per sign, by folding small magnitudes or lowering the scale."""
    pos, neg, moved, zero_threshold = _fold_below(pos, neg, scale, zero_threshold)
    zero_count += moved
    signs = [s for s in (pos, neg) if s[0].size]
    by = _shift_to_fit(signs, None, layout.max_size)
    cut = _fold_cut(pos, neg, layout.max_fold_fraction)
    by_fold = _shift_to_fit(signs, cut, layout.max_size) if cut is not None else by
    if by - by_fold >= layout.min_fold_gain:
        # Fold no more than this scale needs: below the lowest bucket that keeps every sign within max_size.
        by = by_fold
        ranges = [(int(i[-1]) >> by, int(i[0]) >> by) for i, _ in signs]
        lowest_kept = max(top - layout.max_size + 1 for top, bottom in ranges if top - bottom + 1 > layout.max_size)
        below = [i[(i >> by) < lowest_kept] for i, _ in signs]
        highest_folded = max(int(b[-1]) for b in below if b.size)
        zero_threshold = max(zero_threshold, float(_bound(highest_folded + 1, scale)))
    scale -= by
    pos = _combine([(pos[0] >> by, pos[1])]) if by else pos
    neg = _combine([(neg[0] >> by, neg[1])]) if by else neg
    pos, neg, moved, zero_threshold = _fold_below(pos, neg, scale, zero_threshold)
    # A fold falls short where a bucket's bound underflows to 0 (indices past the range of doubles, which decoding
    # refuses): then the scale goes down instead, so no sign ever spans more than max_size buckets
    extra = _shift_to_fit([s for s in (pos, neg) if s[0].size], None, layout.max_size)
    if extra:
        scale -= extra
        pos, neg = _combine([(pos[0] >> extra, pos[1])]), _combine([(neg[0] >> extra, neg[1])])
    (p_off, p), (n_off, n) = _dense(pos), _dense(neg)
    return ExpHistogram(scale, zero_threshold, zero_count + moved, p_off, p, n_off, n, count, total, low, high)


def _shift_to_fit(signs, cut, max_size):
    """Smallest downscale so that each sign's buckets, from ``cut`` upward if given, span ``max_size`` or fewer."""
    for by in range(MAX_SCALE - MIN_SCALE + 64):
        fits = True
        for index, _ in signs:
            top = int(index[-1]) >> by
            bottom = int(index[0]) >> by if cut is None else max(int(index[0]) >> by, cut >> by)
            fits = fits and top - bottom + 1 <= max_size
        if fits:
            return by
    return by


def _fold_cut(pos, neg, max_fraction):
    """Highest bucket index below which at most ``max_fraction`` of the non-zero values lie (both signs)."""
    index = np.concatenate([pos[0], neg[0]])
    weight = np.concatenate([pos[1], neg[1]])
    if weight.sum() == 0 or max_fraction == 0:
        return None
    order = np.argsort(index, kind="stable")
    index, weight = index[order], weight[order]
    below = np.cumsum(weight) - weight
    allowed = np.flatnonzero(below <= max_fraction * weight.sum())
    return int(index[allowed[-1]]) if allowed.size else None

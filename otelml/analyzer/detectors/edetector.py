"""A calibrated sequential drift detector for one feature, on histograms: a mixture of CUSUM e-detectors.

Statistic. Every live bucket gets the reference's mid-CDF ("PIT") score ``u`` of its values and the scale score
``|2u - 1|``; both lie in [0, 1] and have known means under the reference. Each window multiplies in, per component,
a betting factor ``prod_j (1 + lambda (score_j - m))^(c_j)`` (Waudby-Smith & Ramdas 2024): eight location components
(+/- 0.05, 0.1, 0.2, 0.5 sd; larger shifts are caught within a window by the 0.5 ones), five scale components
(sd x 0.8 ... 1.5), and an omnibus multinomial likelihood ratio on ten
reference-quantile groups against an exponentially weighted predictive estimate (Lorden & Pollak 2005), at two
memories. Each component runs as a CUSUM (``W = max(W, 0) + log factor``), and the feature's statistic is the
log of their weighted average (location 60%, scale 20%, omnibus 20%), itself an e-detector under any dependence
(Shin, Ramdas & Rinaldo 2024).

Threshold and false alarms. Every factor has expectation at most 1 under the null, so alarming when the statistic
reaches ``ln A`` gives an average run length to false alarm of at least ``A`` windows -- with nothing to simulate
or bootstrap. The null is a neighbourhood of the reference, not the reference itself: its radius is the reference's
own sampling error (``z / sqrt(m)`` at ``alpha_ref``) plus ``w_min`` (a minimum effect, in units of the score's
sd), so huge windows do not turn tiny, irrelevant shifts into alarms and an imperfect reference does not either.
It also holds the values the reference missed: a value of probability ``q`` is missing from ``m`` rows with chance
``(1 - q)^m <= exp(-q m)``, so up to ``q = ln(1/alpha_ref) / m`` anywhere (``m`` = 558: 0.95%) is allowed, which
moves a score's mean by at most ``q`` times its distance to the far end of [0, 1] (added to the guard); the omnibus
component's chi-square ball already holds that much mass in a group the reference left empty (its penalty outweighs
the gain of betting on it). Without it, a feature that is all zeros in a 558-row reference
collects evidence from every rare non-zero the population holds: its score sd is 0, so each such value was bet on
at the largest stake, and the zeros around it cost nothing. The guarantee holds with probability at least ``1 - 5
alpha_ref`` over the reference sample (five events per feature: the location score's mean, the scale score's mean
and the group frequencies each within their guard, and no value of probability above ``q`` missing below or above
the reference's range; a bank of ``F`` features guards each at ``alpha_ref / F``), and assumes that,
given the past, values in a window are exchangeable draws from a distribution in that neighbourhood; diurnal cycles
or traffic-mix changes violate it and will alarm (see ``../shared/notes/sequential-drift.md``).

Example:
    >>> import numpy as np
    >>> from otelml.histogram import from_values
    >>> rng = np.random.default_rng(0)
    >>> det = FeatureEDetector(from_values(rng.normal(size=100_000)))
    >>> quiet = max(det.update(from_values(rng.normal(size=200))) for _ in range(50))
    >>> loud = max(det.update(from_values(rng.normal(1.0, 1.0, size=200))) for _ in range(3))
    >>> bool(quiet < np.log(1000) < loud)
    True

(long: kept whole, the bank's stacked components, their betting tables and the
one-feature detector are one algorithm whose parts are calibrated and tested together.)
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ... import histogram
from .distances import midpoints
from .scan import DISCRETE_SCORES, missing_mass

LOCATION_SHIFTS = (0.05, 0.1, 0.2, 0.5)  # in sd
SCALE_RATIOS_UP = (1.1, 1.25, 1.5)
SCALE_RATIOS_DOWN = (0.9, 0.8)


def _mean_scale_score(ratio: float) -> float:
    """E|2 Phi(X) - 1| for X ~ N(0, ratio^2): the scale score's mean when the sd is multiplied by ``ratio``."""
    grid = np.linspace(-8, 8, 20001)
    density = stats.norm.pdf(grid, 0, ratio)
    return float(np.sum(np.abs(2 * stats.norm.cdf(grid) - 1) * density) * (grid[1] - grid[0]))


_LOCATION = [(sign, stats.norm.cdf(d / math.sqrt(2)) - 0.5) for sign in (1, -1) for d in LOCATION_SHIFTS]
_BASE = _mean_scale_score(1.0)
_SCALE = [(1, _mean_scale_score(r) - _BASE) for r in SCALE_RATIOS_UP] + [
    (-1, _BASE - _mean_scale_score(r)) for r in SCALE_RATIOS_DOWN
]


@dataclass(frozen=True)
class EDetectorConfig:
    alpha_ref: float = 5e-3  # chance, per guarded mean, that the reference's sampling error exceeds the guard
    w_min: float = 0.0  # smallest effect worth alarming on, in units of the score's sd
    groups: int = 10  # reference-quantile groups of the omnibus component
    memories: tuple = (10, 50)  # windows of memory of the omnibus component's predictive estimate


class _Tables:
    """Everything derived from the reference at one layout (scale, zero threshold)."""

    def __init__(self, reference: histogram.ExpHistogram, config: EDetectorConfig):
        self.scale, self.zero_threshold = reference.scale, reference.zero_threshold
        self.keys, counts = histogram.positions(reference)
        self.m = m = float(counts.sum())
        self.below = np.cumsum(counts) - counts
        self.counts = counts
        p = counts / m
        u = (self.below + counts / 2) / m
        v = np.abs(2 * u - 1)
        z = stats.norm.isf(config.alpha_ref / 2)
        q = missing_mass(m, config.alpha_ref)  # mass a value can have and still be missing from the reference
        lam, mref, score_of = [], [], []
        for which, score, pairs in ((0, u, _LOCATION), (1, v, _SCALE)):
            mu = float(np.sum(p * score))
            sd = max(float(np.sqrt(np.sum(p * (score - mu) ** 2))), 1e-6)
            eps = (z / math.sqrt(m) + config.w_min) * sd + q * max(mu, 1 - mu)
            for sign, delta in pairs:
                m_k = min(max(mu + sign * eps, 1e-9), 1 - 1e-9)
                cap = 0.8 / m_k if sign > 0 else 0.8 / (1 - m_k)  # every factor stays >= 0.2
                lam.append(float(np.clip(sign * max(delta - eps, 1e-3) / sd**2, -cap, cap)))
                mref.append(m_k)
                score_of.append(which)
        self.lam, self.mref, self.score_of = np.array(lam), np.array(mref), np.array(score_of)
        k = config.groups
        group = np.minimum((u * k).astype(np.int64), k - 1)
        p0c = np.bincount(group, weights=p, minlength=k)
        p0c = np.maximum(p0c, 0.5 / m)
        self.p0c = p0c / p0c.sum()
        self.radius = math.sqrt(stats.chi2.isf(config.alpha_ref, k - 1) / m) + config.w_min
        # The scan's score of each bucket: for a few-valued feature its value (the bucket's midpoint within the
        # reference's range), limited to the values between which all but q of the reference lies at either end,
        # centred on the reference's mean and divided by that range; else the PIT score minus 1/2
        mid = midpoints(self.keys, reference)
        cum = np.cumsum(counts)
        ends = mid[np.searchsorted(cum, q * m, side="right")], mid[np.searchsorted(cum, m - q * m, side="left")]
        mid = np.clip(mid, *ends)
        with np.errstate(invalid="ignore", over="ignore"):  # infinite ends (infinite values in the reference): NaN
            width = float(ends[1] - ends[0])
        self.discrete = counts.size <= DISCRETE_SCORES and 0 < width < math.inf
        self.scan_score = (mid - float(np.sum(p * mid))) / width if self.discrete else u - 0.5


def multinomial_increment(counts, p0, seen, decay, radius):
    """Log factors of the multinomial likelihood ratio of ``counts`` against ``p0``, one per memory, each against a
    predictable estimate (``seen``: exponentially weighted past counts, one row per memory; a prior of the window's
    own size on ``p0``), divided by its worst case over the chi-square ball of ``radius`` around ``p0``. Returns the
    log factors and the updated ``seen`` (updated after use, so the estimate never sees the counts it bets on).
    Shapes: ``counts``, ``p0`` (..., K); ``seen`` (..., memories, K); ``radius`` (...); leading dims batch."""
    counts, p0 = np.asarray(counts, dtype=np.float64), np.asarray(p0, dtype=np.float64)
    n = counts.sum(axis=-1)[..., None, None]
    prior = p0[..., None, :]
    predicted = (n * prior + seen) / (n + seen.sum(axis=-1, keepdims=True))
    chi = np.sqrt(((predicted - prior) ** 2 / prior).sum(axis=-1))
    increment = (counts[..., None, :] * np.log(predicted / prior)).sum(axis=-1) - n[..., 0] * np.log1p(
        np.asarray(radius)[..., None] * chi
    )
    return increment, decay[:, None] * seen + counts[..., None, :]


def log_sum_exp(values) -> float:
    """log(sum(exp(values))) without overflow (scipy's logsumexp costs 50x more on small arrays)."""
    values = np.asarray(values, dtype=np.float64)
    top = float(values.max())
    return top + math.log(float(np.exp(values - top).sum())) if math.isfinite(top) else top


_GLOBAL = 2**43  # feature index stride in global bucket keys (positions keys lie within +/- 2**42)


class _Stack:
    """Per-feature tables concatenated, so that one window of every feature is scored in a few numpy calls."""

    def __init__(self, tables: list):
        self.tables = tables
        sizes = np.array([t.keys.size for t in tables])
        self.start = np.concatenate([[0], np.cumsum(sizes)])
        feature = np.repeat(np.arange(len(tables)), sizes)
        self.keys = feature * _GLOBAL + np.concatenate([t.keys for t in tables])
        self.below = np.concatenate([t.below for t in tables]).astype(np.float64)
        self.counts = np.concatenate([t.counts for t in tables]).astype(np.float64)
        self.m = np.array([t.m for t in tables])
        self.lam = np.stack([t.lam for t in tables]).astype(np.float32)
        self.mref = np.stack([t.mref for t in tables]).astype(np.float32)
        self.location = tables[0].score_of == 0
        self.p0c = np.stack([t.p0c for t in tables])
        self.radius = np.array([t.radius for t in tables])
        self.discrete = np.array([t.discrete for t in tables])
        self.scan_score = np.concatenate([t.scan_score for t in tables])

    def increments(self, feature, keys, counts, groups: int):
        """Score-component log factors (F, components), live counts per omnibus group (F, groups) and sums of the
        scan's scores (F,) of the live buckets ``keys`` (at each feature's table layout) of features ``feature``, with
        ``counts``. A live bucket the reference lacks gets, for a few-valued feature, the scan score of the nearest
        reference bucket outside the reference's range and the mean of its two neighbours' inside it."""
        global_keys = feature * _GLOBAL + keys
        at = np.searchsorted(self.keys, global_keys)
        end = self.start[feature + 1]
        inside = at < end
        at_safe = np.minimum(at, self.keys.size - 1)
        same = inside & (self.keys[at_safe] == global_keys)
        below = np.where(inside, self.below[at_safe], self.m[feature])
        mass = np.where(same, self.counts[at_safe], 0.0)
        u = (below + mass / 2) / self.m[feature]
        # buckets x components in float32: the sums over a window's buckets lose nothing that matters at ln A
        score = np.where(self.location[None, :], u[:, None], np.abs(2 * u - 1)[:, None]).astype(np.float32)
        factors = counts[:, None].astype(np.float32) * np.log1p(self.lam[feature] * (score - self.mref[feature]))
        n_features = self.m.size
        inc = np.zeros((n_features, factors.shape[1]))
        if feature.size:
            starts = np.flatnonzero(np.concatenate([[True], feature[1:] != feature[:-1]]))
            inc[feature[starts]] = np.add.reduceat(factors, starts, axis=0, dtype=np.float64)
        group = np.minimum((u * groups).astype(np.int64), groups - 1)
        live_groups = np.bincount(feature * groups + group, weights=counts, minlength=n_features * groups)
        first, last = self.start[feature], np.maximum(end - 1, 0)
        known = self.scan_score[at_safe]
        between = (self.scan_score[np.maximum(at_safe - 1, 0)] + known) / 2
        x = np.where(same, known, np.where(at >= end, self.scan_score[last], np.where(at == first, known, between)))
        x = np.where(self.discrete[feature], x, u - 0.5)
        location = np.bincount(feature, weights=counts * x, minlength=n_features)
        return inc, live_groups.reshape(n_features, groups), location


class _Level:
    """Every feature's reference rebinned ``d`` scale steps coarser, with its tables, for live windows that came out
    at a coarser scale than their reference (few samples folding their smallest values, say)."""

    def __init__(self, references: list, d: int, config: EDetectorConfig):
        rebinned = [
            histogram.rebin(r, r.scale - d, r.zero_threshold) if r.scale - d >= histogram.MIN_SCALE else None
            for r in references
        ]
        self.usable = [r is not None for r in rebinned]
        rebinned = [r if r is not None else ref for r, ref in zip(rebinned, references)]
        self.scale = [r.scale for r in rebinned]
        self.zero_threshold = [r.zero_threshold for r in rebinned]
        # Buckets with an index up to this one lie in or straddle the zero bucket, and count as zero (as rebin folds)
        self.fold_index = [
            math.ceil(math.log2(min(r.zero_threshold, sys.float_info.max)) * 2.0**r.scale) - 1  # the top bucket's
            if r.zero_threshold > 0  # upper bound is infinite, and a zero bucket folded up to it too
            else None
            for r in rebinned
        ]
        self.stack = _Stack([_Tables(r, config) for r in rebinned])


class FeatureBank:
    """The mixture e-detectors of many features at once, each against its own reference histogram.

    ``update`` takes one window's histogram per feature (``None`` for a feature without data) and returns each
    feature's log statistic. A live histogram is brought to its reference's scale (or the reference, once and
    cached, to a coarser live scale) by shifting bucket indexes, and all features are scored together; only a live
    window whose zero bucket is wider than its reference's is scored alone, at their common layout. After an update,
    ``scan_sums`` and ``scan_counts`` hold each feature's sum of scan scores (PIT scores minus 1/2; for a few-valued
    feature its centred values over their range, see ``score_distributions``) and its count in that window (what
    :class:`~otelml.analyzer.detectors.scan.MeanShiftScan` takes).

    ``config.alpha_ref`` is the chance that any of the bank's ``F`` references breaks a guard: each feature's guards
    are set at ``alpha_ref / F``. Guarding each feature at ``alpha_ref`` left a model of many features with some
    reference likely to be off (64 features of a 500-row reference: one feature's mean 3.4 standard errors off in
    1 of 20 references, which then alarmed 12 times in 1,000 windows).
    """

    def __init__(self, references: list, config: EDetectorConfig = EDetectorConfig()):
        if not references or any(r.count == 0 for r in references):
            raise ValueError("every reference histogram must hold data")
        self.references = list(references)
        self.config = config = dataclasses.replace(config, alpha_ref=config.alpha_ref / len(self.references))
        self._levels: dict = {0: _Level(self.references, 0, config)}  # steps coarser -> _Level
        self.reference_counts = self._levels[0].stack.m
        self.scan_sums = self.scan_counts = np.zeros(len(self.references))
        self._other_layouts: dict = {}  # (feature, scale, zero threshold) -> single-feature _Stack, bounded
        weights = [0.6 / len(_LOCATION)] * len(_LOCATION) + [0.2 / len(_SCALE)] * len(_SCALE)
        weights += [0.2 / len(config.memories)] * len(config.memories)
        self._log_weights = np.log(np.array(weights))
        self._decay = np.array([1 - 1 / memory for memory in config.memories])
        self.reset()

    def score_distributions(self) -> list:
        """Per feature, what the scan's rate function takes: for a feature with at most ``scan.DISCRETE_SCORES``
        distinct values (buckets) in its reference, their scan scores (the values centred on the reference's mean,
        divided by its range) and counts; else ``None`` (the scan uses PIT scores)."""
        return [
            (t.scan_score, t.counts.astype(np.float64)) if t.discrete else None for t in self._levels[0].stack.tables
        ]

    def reset(self, features=None) -> None:
        """Clear the statistics of all features, or of the given feature indexes."""
        shape = (len(self.references), self._log_weights.size)
        seen_shape = (len(self.references), len(self.config.memories), self.config.groups)
        if features is None:
            self._w, self._seen = np.zeros(shape), np.zeros(seen_shape)
        else:
            self._w[features], self._seen[features] = 0.0, 0.0

    def _level(self, d: int) -> _Level:
        level = self._levels.get(d)
        if level is None:
            level = self._levels[d] = _Level(self.references, d, self.config)
        return level

    def update(self, live: list, common_layout: bool = False) -> np.ndarray:
        """Add one window (a histogram or ``None`` per feature); returns every feature's log statistic.
        ``common_layout`` scores each feature alone after rebinning it and its reference to their common layout:
        slower, and equal to the batched path (the tests check)."""
        n_features, groups = len(self.references), self.config.groups
        batches: dict = {}  # level -> ([feature ids], [keys], [counts])
        inc = np.zeros((n_features, self._log_weights.size - len(self.config.memories)))
        live_groups = np.zeros((n_features, groups))
        location = np.zeros(n_features)
        p0c, radius = self._levels[0].stack.p0c.copy(), self._levels[0].stack.radius.copy()
        for f, h in enumerate(live):
            if h is None or h.count == 0:
                continue
            d = max(0, self.references[f].scale - h.scale)
            level = self._level(d) if not common_layout else None
            if level is not None and level.usable[f] and h.zero_threshold <= level.zero_threshold[f]:
                keys, counts = histogram.positions(h, h.scale - level.scale[f])
                if level.fold_index[f] is not None:
                    index = np.abs(keys) - histogram.KEY_SPLIT
                    keys = np.where((keys != 0) & (index <= level.fold_index[f]), 0, keys)
                parts = batches.setdefault(d, ([], [], []))
                parts[0].append(np.full(keys.size, f))
                parts[1].append(keys)
                parts[2].append(counts)
            else:
                stack = self._one_stack(f, h)
                inc[f], live_groups[f], location[f] = self._score_alone(stack, h, f)
                p0c[f], radius[f] = stack.p0c[0], stack.radius[0]
        for d, (features, keys, counts) in batches.items():
            stack = self._levels[d].stack
            features = np.concatenate(features)
            batch_inc, batch_groups, batch_location = stack.increments(
                features, np.concatenate(keys), np.concatenate(counts).astype(np.float64), groups
            )
            inc += batch_inc
            live_groups += batch_groups
            location += batch_location
            if d:
                scored = np.unique(features)
                p0c[scored], radius[scored] = stack.p0c[scored], stack.radius[scored]
        self.scan_sums, self.scan_counts = location, live_groups.sum(axis=1)
        present = self.scan_counts > 0
        if present.any():
            omnibus, seen = multinomial_increment(
                live_groups[present], p0c[present], self._seen[present], self._decay, radius[present]
            )
            self._seen[present] = seen
            step = np.concatenate([inc[present], omnibus], axis=1)
            self._w[present] = np.maximum(self._w[present], 0.0) + step
        return self.log_values()

    def _one_stack(self, f: int, h: histogram.ExpHistogram) -> _Stack:
        """Tables for feature ``f``'s reference at its common layout with ``h`` (cached, at most 256)."""
        _, reference = histogram.align(h, self.references[f])
        key = (f, reference.scale, reference.zero_threshold)
        stack = self._other_layouts.get(key)
        if stack is None:
            if len(self._other_layouts) >= 256:
                self._other_layouts.clear()
            stack = self._other_layouts[key] = _Stack([_Tables(reference, self.config)])
        return stack

    def _score_alone(self, stack: _Stack, h: histogram.ExpHistogram, f: int):
        live, _ = histogram.align(h, self.references[f])
        keys, counts = histogram.positions(live)
        inc, groups, location = stack.increments(
            np.zeros(keys.size, dtype=np.int64), keys, counts.astype(np.float64), self.config.groups
        )
        return inc[0], groups[0], location[0]

    def log_values(self) -> np.ndarray:
        scored = self._w + self._log_weights
        top = scored.max(axis=1)
        return top + np.log(np.exp(scored - top[:, None]).sum(axis=1))

    def components(self, f: int) -> dict:
        """Which alternative carries feature ``f``'s evidence: the largest component's name and log value."""
        names = (
            [f"location {'+' if s > 0 else '-'}" for s, _ in _LOCATION]
            + [f"scale {'up' if s > 0 else 'down'}" for s, _ in _SCALE]
            + ["omnibus"] * len(self.config.memories)
        )
        scored = self._w[f] + self._log_weights
        best = int(np.argmax(scored))
        return {"component": names[best], "log_value": float(scored[best])}


class FeatureEDetector:
    """The mixture e-detector of one feature (a one-feature :class:`FeatureBank`); ``update`` returns its log value."""

    def __init__(self, reference: histogram.ExpHistogram, config: EDetectorConfig = EDetectorConfig()):
        if reference.count == 0:
            raise ValueError("the reference histogram is empty")
        self.reference = reference
        self._bank = FeatureBank([reference], config)

    def reset(self) -> None:
        self._bank.reset()

    def update(self, live: histogram.ExpHistogram) -> float:
        """Add one window's histogram; returns the log of the mixture e-detector (alarm at ``ln A``)."""
        return float(self._bank.update([live])[0])

    def log_value(self) -> float:
        return float(self._bank.log_values()[0])

    def components(self) -> dict:
        return self._bank.components(0)

"""A calibrated sequential drift detector for one feature, on histograms: a mixture of CUSUM e-detectors.

Statistic. Every live bucket gets the reference's mid-CDF ("PIT") score ``u`` of its values and the scale score
``|2u - 1|``; both lie in [0, 1] and have known means under the reference. Each window multiplies in, per component,
a betting factor ``prod_j (1 + lambda (score_j - m))^(c_j)`` (Waudby-Smith & Ramdas 2024): ten location components
(+/- 0.05 ... 1 sd), five scale components (sd x 0.8 ... 1.5), and an omnibus multinomial likelihood ratio on ten
reference-quantile groups against an exponentially weighted predictive estimate (Lorden & Pollak 2005), at two
memories. Each component runs as a CUSUM (``W = max(W, 0) + log factor``), and the feature's statistic is the
log of their weighted average, itself an e-detector under any dependence (Shin, Ramdas & Rinaldo 2024).

Threshold and false alarms. Every factor has expectation at most 1 under the null, so alarming when the statistic
reaches ``ln A`` gives an average run length to false alarm of at least ``A`` windows -- with nothing to simulate
or bootstrap. The null is a neighbourhood of the reference, not the reference itself: its radius is the reference's
own sampling error (``z / sqrt(m)`` at ``alpha_ref``) plus ``w_min`` (a minimum effect, in units of the score's
sd), so huge windows do not turn tiny, irrelevant shifts into alarms and an imperfect reference does not either.
The guarantee holds with probability at least ``1 - 17 alpha_ref`` over the reference sample, and assumes that,
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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ... import histogram

LOCATION_SHIFTS = (0.05, 0.1, 0.2, 0.5, 1.0)  # in sd
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
    alpha_ref: float = 1e-3  # chance that the reference's own sampling error is larger than the guard
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
        lam, mref, score_of = [], [], []
        for which, score, pairs in ((0, u, _LOCATION), (1, v, _SCALE)):
            mu = float(np.sum(p * score))
            sd = max(float(np.sqrt(np.sum(p * (score - mu) ** 2))), 1e-6)
            eps = (z / math.sqrt(m) + config.w_min) * sd
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

    def scores(self, live: histogram.ExpHistogram):
        """PIT score and count of every non-empty live bucket (live already at this layout)."""
        keys, counts = histogram.positions(live)
        at = np.minimum(np.searchsorted(self.keys, keys), self.keys.size - 1)
        same = self.keys[at] == keys
        below = np.where(keys <= self.keys[-1], self.below[at], self.m)
        mass = np.where(same, self.counts[at], 0)
        return (below + mass / 2) / self.m, counts.astype(np.float64)


def multinomial_increment(counts, p0, seen, decay, radius):
    """Log factors of the multinomial likelihood ratio of ``counts`` against ``p0``, one per memory, each against a
    predictable estimate (``seen``: exponentially weighted past counts, one row per memory; a prior of the window's
    own size on ``p0``), divided by its worst case over the chi-square ball of ``radius`` around ``p0``. Returns the
    log factors and the updated ``seen`` (updated after use, so the estimate never sees the counts it bets on)."""
    n = counts.sum()
    predicted = (n * p0[None, :] + seen) / (n + seen.sum(axis=1, keepdims=True))
    chi = np.sqrt(((predicted - p0) ** 2 / p0).sum(axis=1))
    increment = (counts * np.log(predicted / p0)).sum(axis=1) - n * np.log1p(radius * chi)
    return increment, decay[:, None] * seen + counts


def log_sum_exp(values) -> float:
    """log(sum(exp(values))) without overflow (scipy's logsumexp costs 50x more on small arrays)."""
    values = np.asarray(values, dtype=np.float64)
    top = float(values.max())
    return top + math.log(float(np.exp(values - top).sum())) if math.isfinite(top) else top


class FeatureEDetector:
    """The mixture e-detector of one feature against one reference histogram; ``update`` returns its log value."""

    def __init__(self, reference: histogram.ExpHistogram, config: EDetectorConfig = EDetectorConfig()):
        if reference.count == 0:
            raise ValueError("the reference histogram is empty")
        self.reference = reference
        self.config = config
        self._tables: dict = {}
        n_scores = len(_LOCATION) + len(_SCALE)
        n_memories = len(config.memories)
        weights = [0.5 / len(_LOCATION)] * len(_LOCATION) + [0.25 / len(_SCALE)] * len(_SCALE)
        weights += [0.25 / n_memories] * n_memories
        self._log_weights = np.log(np.array(weights))
        self._decay = np.array([1 - 1 / memory for memory in config.memories])
        self._n_scores = n_scores
        self.reset()

    def reset(self) -> None:
        self._w = np.zeros(self._log_weights.size)
        self._seen = np.zeros((len(self.config.memories), self.config.groups))

    def _layout(self, live: histogram.ExpHistogram):
        """The live histogram and the reference tables at their common layout (tables cached per layout)."""
        wanted = (min(live.scale, self.reference.scale), max(live.zero_threshold, self.reference.zero_threshold))
        tables = self._tables.get(wanted)
        if tables is not None:
            if (live.scale, live.zero_threshold) != (tables.scale, tables.zero_threshold):
                live = histogram.rebin(live, tables.scale, tables.zero_threshold)
            if live.zero_threshold == tables.zero_threshold:
                return live, tables
        live, reference = histogram.align(live, self.reference)
        tables = _Tables(reference, self.config)
        self._tables[wanted] = self._tables[(reference.scale, reference.zero_threshold)] = tables
        return live, tables

    def update(self, live: histogram.ExpHistogram) -> float:
        """Add one window's histogram; returns the log of the mixture e-detector (alarm at ``ln A``)."""
        if live.count == 0:
            return self.log_value()
        live, t = self._layout(live)
        u, c = t.scores(live)
        score = np.where(t.score_of[None, :] == 0, u[:, None], np.abs(2 * u - 1)[:, None])
        inc_scores = c @ np.log1p(t.lam[None, :] * (score - t.mref[None, :]))
        groups = np.minimum((u * self.config.groups).astype(np.int64), self.config.groups - 1)
        live_groups = np.bincount(groups, weights=c, minlength=self.config.groups)
        inc_omnibus, self._seen = multinomial_increment(live_groups, t.p0c, self._seen, self._decay, t.radius)
        self._w = np.maximum(self._w, 0.0) + np.concatenate([inc_scores, inc_omnibus])
        return self.log_value()

    def log_value(self) -> float:
        return log_sum_exp(self._w + self._log_weights)

    def components(self) -> dict:
        """Which alternative carries the evidence: the largest component's name and its log value."""
        names = [f"location {'+' if s > 0 else '-'}" for s, _ in _LOCATION] + [
            f"scale {'up' if s > 0 else 'down'}" for s, _ in _SCALE
        ] + ["omnibus"] * len(self.config.memories)
        best = int(np.argmax(self._w + self._log_weights))
        return {"component": names[best], "log_value": float(self._w[best] + self._log_weights[best])}

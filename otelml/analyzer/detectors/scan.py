"""A scan for a shift in the mean of many features at once, on the PIT scores of their windows.

Statistic. Each window gives, per feature, the sum ``s`` of its values' reference mid-CDF ("PIT") scores minus their
reference mean (1/2), and their count ``n``. Over the last ``ℓ`` windows (``ℓ = 1 .. lookback``) with sums ``S`` and
counts ``N``, the two-sided generalised likelihood ratio for a shift of unknown size that started ``ℓ`` windows ago
is ``S² / (2 V)``, ``V = N (1 + N / m) / 12``: ``1/12`` is the variance of a uniform score and ``m`` the reference's
count, so ``V`` is the variance of ``S`` against a reference that is itself a sample (a two-sample comparison, like a
t-test against the reference's mean). The feature's statistic ``g`` is the largest over ``ℓ``
(Siegmund & Venkatraman 1995, "Using the generalized likelihood ratio statistic for sequential detection of a
change-point", Ann. Statist. 23(1)).

Few-valued features. A feature whose reference holds at most ``DISCRETE_SCORES`` distinct scores (0/1 flags, small
codes, zero-inflated counts, or values that share a few buckets) has scores far less variable than uniform ones,
and their sums are skewed where a value is rare, so neither ``1/12`` nor the scores' own variance gives the right
tail. For these the statistic is the exact large-deviation rate of the reference's score distribution,
``g = N Λ*(S / N) / (1 + N / m)``, with ``Λ*`` the Legendre transform of that distribution's cumulant generating
function: the log likelihood ratio of the exponential tilt of the reference that moves the mean score to ``S / N``
(Cramér; the generalised likelihood ratio for a tilt of unknown size). For a Gaussian it equals ``S² / (2V)``;
for a 0/1 feature it is the binomial's Kullback-Leibler rate, so three 1s in a window where 0.4 are expected weigh
what they should. Values the reference did not see (it cannot see mass below about ``ln(1/α)/m``) are allowed
for: the distribution gets ``q = ln(1/α_ref) / m`` at either end of the score range (``α_ref`` = 0.005) before
``Λ*`` is taken, so a feature that is constant in a 500-row reference is not alarmed by the rare other value the
population holds.

Threshold and false alarms. Under the reference, a feature's PIT scores are uniform whatever its distribution, so the
rate at which ``g`` crosses a level ``h`` does not depend on the feature: per window it is ``exp(-(h - κ(h)))``, ``κ(h)
= K0 + K1 ln h``, fitted to a simulation of this class on 10^8 Gaussian windows (``bench/calibrate_scan.py``; the fit is
within 6% of the simulated rate for ``h`` from 8 to 15.5). ``log_arl(g) = g - κ(g)`` is the log of the average run
length, in windows, of alarming at level ``g``; the largest over ``F`` features, minus ``ln F``, is the model's (a union
bound over features, so it holds under any dependence between them). The calibration assumes exchangeable windows, like
the e-detectors. Continuous features use the uniform's variance, 1/12 per value: by Jensen's inequality a score that
is the mean of a uniform score over a bucket has exponential moments at most the uniform's, so ties cannot break it.
Few-valued features use ``Λ*``, whose single-lag tail ``P(g >= h)`` is at most ``exp(-h)`` by Chernoff's bound and,
like the Gaussian's, about ``exp(-h) / sqrt(h)`` in fact (Bahadur & Rao), so the same calibration applies; the tests
and ``bench/realistic.py`` measure it on flags, codes, rare values and zero-inflated counts. Both count the
reference's sampling error as part of the null: the rate is as calibrated on average over reference samples, and
higher for a reference whose mean score is several standard errors off (README, Detectors).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> scan = MeanShiftScan(m=np.array([1e5]))
    >>> quiet = max(float(scan.update(rng.uniform(size=(1, 200)).sum(1) - 100, np.array([200.0]))[0])
    ...             for _ in range(50))
    >>> loud = max(float(scan.update(rng.uniform(0.1, 1.0, size=(1, 200)).sum(1) - 100, np.array([200.0]))[0])
    ...            for _ in range(3))
    >>> bool(quiet < np.log(1000) < loud)
    True
"""

from __future__ import annotations

import math

import numpy as np

LOOKBACK = 128  # windows a shift may have started before now
K0, K1 = -1.10, 0.56  # κ(h) = K0 + K1 ln h: the calibration of bench/calibrate_scan.py at LOOKBACK
DISCRETE_SCORES = 64  # a reference with at most this many distinct scores is scored by its rate function
ALPHA_REF = 5e-3  # chance that the reference missed a value of probability above ln(1/ALPHA_REF) / m
_TILTS = 4001  # points of each rate-function table


def log_arl(g: np.ndarray) -> np.ndarray:
    """Log average run length, in windows, of one feature's scan alarming at level ``g``."""
    g = np.asarray(g, dtype=np.float64)
    return g - K0 - K1 * np.log(np.maximum(g, 1.0))


def missing_mass(m: float, alpha: float = ALPHA_REF) -> float:
    """The largest probability a value can have and still be missing, with chance ``alpha``, from ``m`` rows."""
    return math.log(1 / alpha) / m


def rate_table(scores, weights, m: float, alpha: float = ALPHA_REF) -> tuple[np.ndarray, np.ndarray]:
    """``Λ*`` of a reference's distribution of scan scores (centred on its mean, within [-1, 1], with their weights),
    as a table of mean scores and rates along the exponential tilts, after ``missing_mass(m, alpha)`` is put on the
    lowest and the highest score (the values the reference may have missed beyond its range count as those).

    >>> means, rates = rate_table(np.array([-0.25, 0.25]), np.array([0.5, 0.5]), 1e12)  # a fair 0/1 feature
    >>> float(np.interp(0.0, means, rates)), round(float(np.interp(0.25 * 0.2, means, rates)), 4)  # KL(0.6 || 0.5)
    (0.0, 0.0201)
    """
    q = missing_mass(m, alpha)
    d = np.concatenate([[scores.min()], scores, [scores.max()]])
    log_p = np.log(np.concatenate([[q], weights / weights.sum(), [q]]) / (1 + 2 * q))
    theta = np.sinh(np.linspace(-np.arcsinh(1e5), np.arcsinh(1e5), _TILTS))
    tilted = log_p[None, :] + theta[:, None] * d[None, :]
    top = tilted.max(axis=1, keepdims=True)
    log_m = top[:, 0] + np.log(np.exp(tilted - top).sum(axis=1))  # cumulant generating function at each tilt
    means = (np.exp(tilted - log_m[:, None]) * d).sum(axis=1)
    rates = np.maximum(theta * means - log_m, 0.0)  # Λ* at each tilt's mean
    means, keep = np.unique(means, return_index=True)
    return means, rates[keep]


class MeanShiftScan:
    """The scans of ``F`` features; ``update`` takes one window's score sums and counts and returns each feature's
    ``log_arl`` (alarm when the largest minus ``ln F`` reaches ``ln A``). ``distributions`` gives, per feature,
    its reference's distinct scores minus 1/2 and their weights, or ``None``: features with at most
    ``DISCRETE_SCORES`` of them get the rate-function statistic. ``K0`` and ``K1`` are calibrated at the default
    look-back; another look-back needs its own run of ``bench/calibrate_scan.py``."""

    def __init__(self, m, lookback: int = LOOKBACK, distributions: list | None = None, alpha_ref: float = ALPHA_REF):
        self.m = np.asarray(m, dtype=np.float64)  # each feature's reference count
        self.lookback = lookback
        tables = {
            f: rate_table(*d, self.m[f], alpha_ref)
            for f, d in enumerate(distributions or [])
            if d is not None and 0 < d[0].size <= DISCRETE_SCORES
        }
        self.discrete = np.array(sorted(tables), dtype=np.int64)
        # the tables side by side on one axis, table j shifted by 3j (scores lie in [-1, 1]), so that one np.interp
        # reads them all
        self._means = np.concatenate([tables[f][0] + 3 * j for j, f in enumerate(self.discrete)] or [np.zeros(0)])
        self._rates = np.concatenate([tables[f][1] for f in self.discrete] or [np.zeros(0)])
        self._low = np.array([tables[f][0][0] for f in self.discrete])
        self._high = np.array([tables[f][0][-1] for f in self.discrete])
        self.reset()

    def reset(self, features=None) -> None:
        """Forget the windows of all features, or of the given feature indexes."""
        if features is None:
            self._sums = np.zeros((self.m.size, self.lookback))  # newest window first
            self._counts = np.zeros((self.m.size, self.lookback))
            self._g = np.zeros(self.m.size)
        else:
            self._sums[features], self._counts[features], self._g[features] = 0.0, 0.0, 0.0

    def update(self, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Add one window: per feature, the sum of its scores minus 1/2 each, and their count (0 without data)."""
        self._sums = np.roll(self._sums, 1, axis=1)
        self._counts = np.roll(self._counts, 1, axis=1)
        self._sums[:, 0], self._counts[:, 0] = sums, counts
        s, n = np.cumsum(self._sums, axis=1), np.cumsum(self._counts, axis=1)
        v = n * (1 + n / self.m[:, None]) / 12
        g = np.divide(s * s, 2 * v, out=np.zeros_like(s), where=v > 0)
        if self.discrete.size:
            s_d, n_d = s[self.discrete], n[self.discrete]
            mean = np.divide(s_d, n_d, out=np.zeros_like(s_d), where=n_d > 0)
            mean = np.clip(mean, self._low[:, None], self._high[:, None])
            offset = 3 * np.arange(self.discrete.size)[:, None]
            rate = np.interp(mean + offset, self._means, self._rates)
            g[self.discrete] = n_d * rate / (1 + n_d / self.m[self.discrete, None])
        self._g = g.max(axis=1)
        return self.log_values()

    def statistics(self) -> np.ndarray:
        """Each feature's ``g``: the largest over the look-back."""
        return self._g.copy()

    def log_values(self) -> np.ndarray:
        return log_arl(self._g)

"""A scan for a shift in the mean of many features at once, on the PIT scores of their windows.

Statistic. Each window gives, per feature, the sum ``s`` of its values' reference mid-CDF ("PIT") scores minus their
reference mean (1/2), and their count ``n``. Over the last ``ℓ`` windows (``ℓ = 1 .. lookback``) with sums ``S`` and
counts ``N``, the two-sided generalised likelihood ratio for a shift of unknown size that started ``ℓ`` windows ago
is ``S² / (2 V)``, ``V = N (1 + N / m) / 12``: ``1/12`` is the variance of a uniform score and ``m`` the reference's
count, so ``V`` is the variance of ``S`` against a reference that is itself a sample (a two-sample comparison, like a
t-test against the reference's mean). The feature's statistic ``g`` is the largest over ``ℓ``
(Siegmund & Venkatraman 1995, "Using the generalized likelihood ratio statistic for sequential detection of a
change-point", Ann. Statist. 23(1)).

Threshold and false alarms. Under the reference, a feature's PIT scores are uniform whatever its distribution, so the
rate at which ``g`` crosses a level ``h`` does not depend on the feature: per window it is ``exp(-(h - κ(h)))``, ``κ(h)
= K0 + K1 ln h``, fitted to a simulation of this class on 10^8 Gaussian windows (``bench/calibrate_scan.py``; the fit is
within 6% of the simulated rate for ``h`` from 8 to 15.5). ``log_arl(g) = g - κ(g)`` is the log of the average run
length, in windows, of alarming at level ``g``; the largest over ``F`` features, minus ``ln F``, is the model's (a union
bound over features, so it holds under any dependence between them). The calibration assumes exchangeable windows, like
the e-detectors. Ties do not break it: the score of a value that shares its bucket with others is the mean of a uniform
score over the bucket's share of the reference, and by Jensen's inequality its exponential moments are at most the
uniform's, so every feature's sums are sub-Gaussian with the uniform's variance (1/12 per value). A feature with few
distinct values or one dominant value has less variable scores, so the scan is conservative there (and less sensitive);
using the smaller variance instead would turn a rare value's few occurrences into alarms (a 0/1 feature with 0.2% ones
had 6.6 times the target rate that way). It counts the reference's sampling error as part of the null: the rate is as
calibrated on average over reference samples, and higher for a reference whose mean score is several standard errors off
(README, Detectors).

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

import numpy as np

LOOKBACK = 128  # windows a shift may have started before now
K0, K1 = -1.10, 0.56  # κ(h) = K0 + K1 ln h: the calibration of bench/calibrate_scan.py at LOOKBACK


def log_arl(g: np.ndarray) -> np.ndarray:
    """Log average run length, in windows, of one feature's scan alarming at level ``g``."""
    g = np.asarray(g, dtype=np.float64)
    return g - K0 - K1 * np.log(np.maximum(g, 1.0))


class MeanShiftScan:
    """The scans of ``F`` features; ``update`` takes one window's score sums and counts and returns each feature's
    ``log_arl`` (alarm when the largest minus ``ln F`` reaches ``ln A``). ``K0`` and ``K1`` are calibrated at the
    default look-back; another look-back needs its own run of ``bench/calibrate_scan.py``."""

    def __init__(self, m: np.ndarray, lookback: int = LOOKBACK):
        self.m = np.asarray(m, dtype=np.float64)  # each feature's reference count
        self.lookback = lookback
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
        self._g = np.max(np.divide(s * s, 2 * v, out=np.zeros_like(s), where=v > 0), axis=1)
        return self.log_values()

    def statistics(self) -> np.ndarray:
        """Each feature's ``g``: the largest ``S² / (2 V)`` over the look-back."""
        return self._g.copy()

    def log_values(self) -> np.ndarray:
        return log_arl(self._g)

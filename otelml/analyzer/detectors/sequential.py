"""Calibrated sequential tests on counts, and the settings every baseline-then-test detector shares.

:class:`SequentialConfig` sets the false-alarm budget: an alarm at ``ln A``, with
``A = false_alarm_days * 86400 / window_s`` windows, so false alarms come at most once per ``false_alarm_days`` on
average while the baseline holds; ``baseline_windows`` is the length of the baseline (reference) period that the
rate, accuracy, latency, category, range and availability detectors learn before testing.

Each test is a mixture of CUSUM e-detectors over a small grid of alternatives, like ``edetector``: every window
multiplies in a factor whose expectation is at most 1 under the null, so alarming at ``ln A`` bounds the average
run length to false alarm by ``A`` windows.

- :class:`RateIncrease`: a proportion (errors per call, low-confidence rows per row, wrong predictions per labelled
  prediction) rises above ``p0``. Factor per window: ``(1 + lam (1 - p0))^k (1 - lam p0)^(n - k)`` for ``k`` events
  in ``n`` trials, a bet that is fair when the true rate is at most ``p0`` (Waudby-Smith & Ramdas 2024).
- :class:`CountDrop` / :class:`CountRise`: a Poisson count per window (calls) falls below / rises above ``rate0``.
  Factor: the likelihood ratio of rate ``rho rate0`` against ``rate0``, ``rho^k exp((1 - rho) rate0)``.

Both keep a tiny state, checkpointed as plain data (``otelml.analyzer.store.codec``).

Example:
    >>> det = RateIncrease(p0=0.01)
    >>> bool(max(det.update(1, 100) for _ in range(50)) < 5 < det.update(30, 100))
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .edetector import log_sum_exp


@dataclass(frozen=True)
class SequentialConfig:
    false_alarm_days: float = 30.0
    window_s: float = 60.0
    baseline_windows: int = 30

    @property
    def log_threshold(self) -> float:
        return math.log(self.false_alarm_days * 86400.0 / self.window_s)


FAST = SequentialConfig(false_alarm_days=1.0, window_s=86400.0 / 1000, baseline_windows=20)  # the contract tests':
# A = 1,000 windows, a 20-window baseline


class RateIncrease:
    """CUSUM e-detector for a proportion rising above ``p0``."""

    def __init__(self, p0: float, increases=(0.02, 0.05, 0.1, 0.2, 0.4)):
        if not 0 <= p0 <= 1:
            raise ValueError(f"p0 must lie in [0, 1], got {p0}")
        self.p0 = p0
        targets = np.minimum(p0 + np.asarray(increases, dtype=np.float64), 0.999)
        # the bet that is growth-optimal against each target rate, capped so that no factor falls below 0.2; a
        # baseline rate of 0.999 or more (every baseline call failed, say) leaves no room to rise: no bet at all
        self._lam = np.clip((targets - p0) / (p0 * (1 - p0) + 1e-12), 0.0, 0.8 / max(p0, 1e-12))
        self._log_weights = np.full(self._lam.size, -math.log(self._lam.size))
        self.reset()

    def reset(self) -> None:
        self._w = np.zeros(self._lam.size)

    def update(self, events: float, trials: float) -> float:
        if trials > 0:
            inc = events * np.log1p(self._lam * (1 - self.p0)) + (trials - events) * np.log1p(-self._lam * self.p0)
            self._w = np.maximum(self._w, 0.0) + inc
        return self.value()

    def value(self) -> float:
        """The log statistic now."""
        return log_sum_exp(self._w + self._log_weights)


class CountChange:
    """CUSUM e-detector for a Poisson count per window moving away from ``rate0``: per alternative ``rho`` the
    likelihood ratio of rate ``rho rate0`` against ``rate0``, ``rho^k exp((1 - rho) rate0)``. Its expectation is at
    most 1 under any rate at least ``rate0`` when every ``rho < 1`` (drops), at most ``rate0`` when every
    ``rho > 1`` (rises)."""

    def __init__(self, rate0: float, ratios):
        if rate0 <= 0:
            raise ValueError(f"rate0 must be positive, got {rate0}")
        self.rate0 = rate0
        self._rho = np.asarray(ratios, dtype=np.float64)
        self._log_weights = np.full(self._rho.size, -math.log(self._rho.size))
        self.reset()

    def reset(self) -> None:
        self._w = np.zeros(self._rho.size)

    def update(self, count: float) -> float:
        positive = self._rho > 0
        observed = np.full(self._rho.size, 0.0 if count == 0 else -np.inf)  # rho = 0 allows no calls at all
        observed[positive] = count * np.log(self._rho[positive])
        self._w = np.maximum(self._w, 0.0) + observed + (1 - self._rho) * self.rate0
        return log_sum_exp(self._w + self._log_weights)


class CountDrop(CountChange):
    """Drops to 0, 10%, 30% or 60% of ``rate0``."""

    def __init__(self, rate0: float, ratios=(0.0, 0.1, 0.3, 0.6)):
        super().__init__(rate0, ratios)


class CountRise(CountChange):
    """Rises to 1.5, 2, 4 or 10 times ``rate0``."""

    def __init__(self, rate0: float, ratios=(1.5, 2.0, 4.0, 10.0)):
        super().__init__(rate0, ratios)


def upper_bound_rate(count: float, windows: int, alpha: float = 1e-3) -> float:
    """A conservative upper bound on a Poisson rate per window from ``count`` events over ``windows`` windows."""
    if windows <= 0:
        return math.inf
    mean = count / windows
    return mean + math.sqrt(2 * mean * math.log(1 / alpha) / windows) + math.log(1 / alpha) / windows


def upper_bound(events: float, trials: float, alpha: float = 1e-3) -> float:
    """The Wilson score upper bound on a proportion at one-sided level ``alpha``, to guard a learned baseline.

    Example:
        >>> round(upper_bound(100, 1000), 3)
        0.133
    """
    if trials <= 0:
        return 1.0
    z = float(stats.norm.isf(alpha))
    p = events / trials
    centre = p + z * z / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return min(1.0, (centre + spread) / (1 + z * z / trials))


def lower_bound_rate(count: float, windows: int, alpha: float = 1e-3) -> float:
    """A conservative lower bound on a Poisson rate per window from ``count`` events over ``windows`` windows."""
    if windows <= 0:
        return 0.0
    mean = count / windows
    return max(0.0, mean - math.sqrt(2 * mean * math.log(1 / alpha) / windows) - math.log(1 / alpha) / windows)

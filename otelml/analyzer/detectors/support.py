"""Inputs outside what the model was built for: values beyond the reference's range, or suddenly not finite.

Statistic: per feature, two proportions that must not rise, each a :class:`RateIncrease` CUSUM e-detector:

- values in live buckets lying strictly below the reference's lowest or above its highest occupied bucket, per
  value. If live values and the ``m`` reference values are exchangeable draws of one continuous distribution, the
  probability mass outside the reference's range is a Beta(2, m - 1) variable (mean ``2 / (m + 1)``); ``p0`` is its
  ``1 - alpha_ref`` quantile (0.005, as the drift guards), so the bound holds for all but that share of reference
  samples, not only on average over them. Betting against the mean let a reference whose range came out narrow
  alarm again and again (at A = 100, 100-row references: 1.5 times the target rate, one reference 53 alarms in 400
  windows). Ties and outer buckets only lower the mass outside;
- NaN and infinities (``otelml.feature.nonfinite``) per row, against the guarded rate of the version's first
  ``baseline_windows`` windows (a feature that is often missing stays quiet while it stays as often missing).

The model's statistic is the log of the mean of all these e-detectors (an e-detector under any dependence; Shin,
Ramdas & Rinaldo 2024), alarming at ``ln A``. Boundary-attack starting points, fuzzing, unit changes upstream and
broken feature pipelines all look like this; the finding names the feature and which of the two it is.

Example:
    >>> import numpy as np
    >>> from . import synthetic
    >>> from ..references import Reference
    >>> rng = np.random.default_rng(0)
    >>> ref = Reference("m", "1", synthetic.window(0, features=rng.normal(size=(10_000, 2))).histograms, "t", 10_000)
    >>> det = InputRangeDetector(SequentialConfig(false_alarm_days=1, window_s=86.4, baseline_windows=3))
    >>> quiet = [det.update(synthetic.window(i, features=rng.normal(size=(200, 2))), ref) for i in range(20)]
    >>> wild = rng.normal(size=(200, 2)); wild[:20, 1] = 50.0
    >>> [f.details["test"] for f in det.update(synthetic.window(20, features=wild), ref) if f.alarm]
    ['outside the reference range']
"""

from __future__ import annotations

import math

from scipy import stats

from ... import semconv
from ..references import Reference
from ..state.windows import ClosedWindow
from .base import INTEGRITY, WARNING, Detector, Finding
from .edetector import log_sum_exp
from .sequential import FAST, RateIncrease, SequentialConfig, upper_bound

OUTSIDE, NONFINITE = "outside the reference range", "not finite"
ALPHA_REF = 5e-3  # share of reference samples whose range may leave more outside than the bound says


def outside_rate(m: float, alpha: float = ALPHA_REF) -> float:
    """The probability mass outside the range of ``m`` reference values, at its ``1 - alpha`` quantile.

    Example:
        >>> round(outside_rate(100), 3), round(outside_rate(100_000), 6), 2 / 101
        (0.072, 7.4e-05, 0.019801980198019802)
    """
    return float(min(stats.beta.isf(alpha, 2, m - 1), 0.99)) if m >= 2 else 0.99


class InputRangeDetector(Detector):
    """Feature values outside the reference's range, or non-finite, more often than before."""

    name = "input range"
    example_metric = semconv.METRIC_FEATURE_VALUE
    kind = INTEGRITY

    def __init__(self, config: SequentialConfig | None = None):
        self.config = config or SequentialConfig()
        self.reset()

    def reset(self) -> None:
        self._ranges: dict = {}  # feature -> (lowest lower bound, highest upper bound) of the reference
        self._reference_hash = None
        self._tests: dict = {}  # (test, feature) -> RateIncrease
        self._baseline: dict = {}  # feature -> [non-finite values, rows] during the baseline
        self._windows = 0

    @classmethod
    def _unit_test_params(cls) -> dict:
        return {"config": FAST}

    @classmethod
    def _unit_test_reference(cls, rng) -> Reference:
        from .synthetic import window

        return Reference("m", "1", window(0, features=rng.normal(size=(100_000, 3))).histograms, "test", 100_000)

    @classmethod
    def _unit_test_window(cls, rng, index, changed):
        from .synthetic import window

        x = rng.normal(size=(300, 3))
        if changed:
            x[:30, 0] = rng.uniform(20, 40, 30)  # a tenth of the rows far outside anything seen
        return window(index, features=x)

    def _prepare(self, reference: Reference) -> None:
        if reference.hash == self._reference_hash:
            return
        self._reference_hash = reference.hash
        self._ranges = {}
        for (metric, extra), h in reference.histograms.items():
            if metric == semconv.METRIC_FEATURE_VALUE and h.count:
                lower, upper, _ = h.buckets()
                feature = dict(extra)[semconv.FEATURE_NAME]
                self._ranges[feature] = (float(lower[0]), float(upper[-1]))
                self._tests[(OUTSIDE, feature)] = RateIncrease(outside_rate(h.count))

    def update(self, window: ClosedWindow, reference: Reference | None) -> list[Finding]:
        counts = self._counts(window)
        if not counts:
            return []
        if reference is not None:
            self._prepare(reference)
        if self._windows < self.config.baseline_windows:
            self._windows += 1
            for feature, (_, _, nonfinite, rows) in counts.items():
                base = self._baseline.setdefault(feature, [0.0, 0.0])
                base[0] += nonfinite
                base[1] += rows
            if self._windows == self.config.baseline_windows:
                for feature, (events, trials) in self._baseline.items():
                    self._tests[(NONFINITE, feature)] = RateIncrease(upper_bound(events, trials))
        values, rates = {}, {}
        for (test, feature), detector in self._tests.items():
            if feature not in counts:
                continue
            outside, finite, nonfinite, rows = counts[feature]
            events, trials = (outside, finite) if test == OUTSIDE else (nonfinite, rows)
            values[(test, feature)] = detector.update(events, trials)
            rates[(test, feature)] = events / trials if trials else 0.0
        if not values:
            return []
        model_log = log_sum_exp([detector.value() for detector in self._tests.values()]) - math.log(len(self._tests))
        threshold = self.config.log_threshold
        alarm = model_log >= threshold
        test, feature = max(values, key=values.get)
        finding = self._evidence(
            window,
            model_log,
            threshold,
            alarm,
            "share of values",
            rates[(test, feature)],
            WARNING if alarm else "info",
            {"test": test, "feature": feature, "range": self._ranges.get(feature)},
            feature=feature if alarm else None,
            statistic="log e-value (mean over features' range and non-finite tests)",
        )
        if alarm:
            for detector in self._tests.values():
                detector.reset()
        return [finding]

    def _counts(self, window: ClosedWindow) -> dict:
        """feature -> (values outside the reference range, finite values, non-finite values, rows)."""
        rows = window.counter(semconv.METRIC_ROWS)
        nonfinite: dict = {}
        for (metric, extra), value in window.counters.items():
            if metric == semconv.METRIC_FEATURE_NONFINITE:
                feature = dict(extra).get(semconv.FEATURE_NAME)
                nonfinite[feature] = nonfinite.get(feature, 0) + value
        live = {
            dict(extra)[semconv.FEATURE_NAME]: h
            for (metric, extra), h in window.histograms.items()
            if metric == semconv.METRIC_FEATURE_VALUE
        }
        found = {}
        for feature in live.keys() | nonfinite.keys():
            h, outside, finite = live.get(feature), 0.0, 0.0
            if h is not None and h.count:
                finite = float(h.count)
                if feature in self._ranges:
                    low, high = self._ranges[feature]
                    lower, upper, bucket_counts = h.buckets()
                    # strictly beyond: a bucket touching the range (or the zero bucket [0, 0] of 0/1 data) is not
                    outside = float(bucket_counts[(upper < low) | (lower > high)].sum())
            missing = float(nonfinite.get(feature, 0))
            found[feature] = (outside, finite, missing, max(float(rows), finite + missing))
        return found

"""Confidence: the share of low-confidence or low-margin predictions rising above its baseline (calibrated), and
the plain rule "mean confidence below X for N minutes" that users expect (not calibrated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ... import semconv
from ..references import Reference
from ..state.windows import ClosedWindow
from .base import PERFORMANCE, WARNING, Detector, Finding, state
from .rates import RateDetector
from .sequential import SequentialConfig


class LowConfidenceDetector(RateDetector):
    """Share of predictions whose confidence is below ``threshold`` rising above the baseline (counted in whole
    buckets at or below the threshold, the same way in the baseline and after it). Statistic, threshold and false
    alarms: ``RateDetector``'s (a betting CUSUM at ``ln A``, one false alarm per ``A`` windows at most on average;
    Waudby-Smith & Ramdas 2024)."""

    name = "low confidence"
    metric = semconv.METRIC_CONFIDENCE
    example_metric, example_order = semconv.METRIC_CONFIDENCE, -1  # the least confident calls
    default_threshold = 0.6

    def __init__(self, config: SequentialConfig | None = None, threshold: float | None = None):
        self.threshold = self.default_threshold if threshold is None else threshold
        super().__init__(config)

    def _count(self, window):
        h = window.histogram(self.metric)
        if h is None or h.count == 0:
            return 0, 0
        _, upper, counts = h.buckets()
        return float(counts[upper <= self.threshold].sum()), float(h.count)

    def _details(self, window):
        return {"histogram": self.metric, "threshold": self.threshold}  # not "metric": that names output drift

    @classmethod
    def _unit_test_window(cls, rng, index, changed):
        from .synthetic import window

        confidence = rng.beta(2, 8, 400) * 0.5 + 0.5 if changed else 1 - rng.beta(1, 20, 400) * 0.5
        return window(index, confidence=confidence, margin=2 * confidence - 1)


class LowMarginDetector(LowConfidenceDetector):
    """Share of predictions with a margin (top-1 minus top-2 probability) below ``threshold`` rising above the
    baseline: inputs crowding at the decision boundary, as black-box evasion probes do. The margin's exponential
    histogram is finest near 0, where this looks. Test as ``LowConfidenceDetector``'s."""

    name = "low margin"
    metric = semconv.METRIC_MARGIN
    default_threshold = 0.1


class _Run:
    """A ``ConfidenceRule``'s working state: windows in a row with the mean confidence below the threshold."""

    def __init__(self):
        self.windows = 0


@dataclass(frozen=True)
class ConfidenceRule(Detector):
    """The preset users expect: an alarm when the mean confidence stays below ``threshold`` for ``minutes``.
    Statistic: the window's mean confidence; threshold: ``threshold`` for ``ceil(minutes x 60 / window_s)`` windows
    in a row. A plain rule, not a calibrated test: how often it fires depends on the model (the calibrated
    counterpart is ``LowConfidenceDetector``). As in Prometheus alerting rules ("expr for 5m")."""

    threshold: float = 0.7
    minutes: float = 5.0
    window_s: float = 60.0
    _run: _Run = state(_Run)
    name = "confidence below threshold"
    kind = PERFORMANCE
    example_metric, example_order = semconv.METRIC_CONFIDENCE, -1

    def reset(self) -> None:
        self._run.windows = 0

    @classmethod
    def _unit_test_params(cls) -> dict:
        return {}

    @classmethod
    def _unit_test_window(cls, rng, index, changed):
        from .synthetic import window

        return window(index, confidence=rng.uniform(0.5, 0.65, 200) if changed else rng.uniform(0.8, 1.0, 200))

    def update(self, window: ClosedWindow, reference: Reference | None) -> list[Finding]:
        h = window.histogram(semconv.METRIC_CONFIDENCE)
        if h is None or h.count == 0:
            return []
        mean = h.sum / h.count
        run = self._run
        run.windows = run.windows + 1 if mean < self.threshold else 0
        needed = max(1, math.ceil(self.minutes * 60 / self.window_s))
        alarm = run.windows >= needed
        if alarm:
            run.windows = 0
        return [
            self._finding(
                window,
                feature=None,
                statistic="mean confidence",
                value=mean,
                threshold=self.threshold,
                alarm=alarm,
                effect="windows below threshold",
                effect_size=float(needed if alarm else run.windows),
                severity=WARNING if alarm else "info",
                details={"windows needed": needed},
            )
        ]

"""Availability: a model version that stops reporting, or whose call rate collapses against its own usual rate;
and its counterpart, throughput surging above it.

Windows keep closing for a quiet model (by other models' data or by wall-clock silence, see ``state``), empty, so
silence reaches this detector as windows with no calls. The baseline is the call rate of the first
``baseline_windows`` windows, guarded by a conservative lower bound; after it, a Poisson CUSUM e-detector
(``sequential.CountDrop``) over drops to 0, 10%, 30% and 60% of that rate alarms at ``ln A``.

Real traffic is burstier than Poisson (diurnal cycles, batch jobs), which makes drops look more surprising than they
are; ``min_drop`` requires the window's rate to be at most that share of the baseline before an alarm.
"""

from __future__ import annotations

from dataclasses import dataclass

from ... import semconv
from ..references import Reference
from ..windows import ClosedWindow
from .base import AVAILABILITY, CRITICAL, PERFORMANCE, WARNING, Detector, Finding
from .degradation import SequentialConfig
from .sequential import CountDrop, CountRise, lower_bound_rate, upper_bound_rate


@dataclass
class AvailabilityDetector(Detector):
    config: SequentialConfig = SequentialConfig()
    min_drop: float = 0.5  # alarm only when the window's calls are at most this share of the baseline rate
    name = "availability"
    kind = AVAILABILITY

    def __post_init__(self):
        self.reset()

    def reset(self) -> None:
        self._calls, self._windows, self._test = 0.0, 0, None

    @classmethod
    def _unit_test_params(cls) -> dict:
        return {"config": SequentialConfig(false_alarm_days=1.0, window_s=86400.0 / 1000, baseline_windows=20)}

    @classmethod
    def _unit_test_window(cls, rng, index, changed):
        from .synthetic import window

        return window(index, calls=int(rng.poisson(2 if changed else 300)))

    def update(self, window: ClosedWindow, reference: Reference | None) -> list[Finding]:
        calls = window.counter(semconv.METRIC_CALLS)
        if self._test is None:
            if calls or self._windows:  # the baseline starts with the first window that has calls
                self._calls += calls
                self._windows += 1
                rate = lower_bound_rate(self._calls, self._windows)
                if self._windows >= self.config.baseline_windows and rate > 0:
                    self._test = CountDrop(rate)
            return []
        value = self._test.update(calls)
        threshold = self.config.log_threshold
        share = calls / self._test.rate0
        alarm = value >= threshold and share <= self.min_drop
        severity = (CRITICAL if calls == 0 else WARNING) if alarm else "info"
        details = {"calls": calls, "baseline calls per window": self._calls / self._windows}
        finding = self._evidence(window, value, threshold, alarm, "calls / baseline", share, severity, details)
        if alarm:
            self._test.reset()
        return [finding]


@dataclass
class ThroughputDetector(Detector):
    """Throughput surging above its usual rate (a flood, a scraping or extraction campaign, a retry storm): a Poisson
    CUSUM e-detector (``sequential.CountRise``) against the baseline rate's upper bound; an alarm also needs the
    window's calls to be at least ``min_rise`` times the baseline rate. Bursty traffic makes rises look more
    surprising than they are, which ``min_rise`` tempers."""

    config: SequentialConfig = SequentialConfig()
    min_rise: float = 2.0
    name = "throughput"
    kind = PERFORMANCE

    def __post_init__(self):
        self.reset()

    def reset(self) -> None:
        self._calls, self._windows, self._test = 0.0, 0, None

    @classmethod
    def _unit_test_params(cls) -> dict:
        return {"config": SequentialConfig(false_alarm_days=1.0, window_s=86400.0 / 1000, baseline_windows=20)}

    @classmethod
    def _unit_test_window(cls, rng, index, changed):
        from .synthetic import window

        return window(index, calls=int(rng.poisson(3000 if changed else 300)))

    def update(self, window: ClosedWindow, reference: Reference | None) -> list[Finding]:
        calls = window.counter(semconv.METRIC_CALLS)
        if self._test is None:
            if calls or self._windows:
                self._calls += calls
                self._windows += 1
                if self._windows >= self.config.baseline_windows and self._calls > 0:
                    self._test = CountRise(upper_bound_rate(self._calls, self._windows))
            return []
        value = self._test.update(calls)
        threshold = self.config.log_threshold
        ratio = calls / (self._calls / self._windows)
        alarm = value >= threshold and ratio >= self.min_rise
        details = {"calls": calls, "baseline calls per window": self._calls / self._windows}
        finding = self._evidence(
            window, value, threshold, alarm, "calls / baseline", ratio, WARNING if alarm else "info", details
        )
        if alarm:
            self._test.reset()
        return [finding]

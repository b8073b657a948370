"""Proportions per window that must not rise above their baseline: the shared base, and failed calls.

Each detector learns a baseline from its first ``baseline_windows`` windows with data (the reference period), then
runs a calibrated sequential test against it (``sequential``): an alarm at ``ln A``, with
``A = false_alarm_days * 86400 / window_s``, so false alarms come at most once per ``false_alarm_days`` on average
while the baseline holds. Learned rates are guarded by a conservative confidence bound, so a short baseline does not
cause false alarms. After an alarm the test restarts; the baseline stays. The other proportions: low confidence and
low margin (``confidence``), wrong predictions (``accuracy``), slow calls (``latency``).
"""

from __future__ import annotations

from ... import semconv
from ..references import Reference
from ..state.windows import ClosedWindow
from .base import PERFORMANCE, WARNING, Detector, Finding
from .sequential import FAST, RateIncrease, SequentialConfig, upper_bound


class RateDetector(Detector):
    """A proportion per window (events out of trials) that must not rise above its baseline.

    Statistic: ``sequential.RateIncrease``, a mixture of betting CUSUMs on the window's events against ``p0``, the
    Wilson upper bound (at ``alpha = 1e-3``) of the rate in the first ``baseline_windows`` windows. Threshold
    ``ln A``; a bet that is fair at any rate up to ``p0`` makes the statistic an e-detector, so false alarms come at
    most once per ``A`` windows on average while the rate stays at or below it (Waudby-Smith & Ramdas 2024,
    "Estimating means of bounded random variables by betting", JRSS B; Shin, Ramdas & Rinaldo 2024, e-detectors).
    After an alarm the test restarts; the baseline stays."""

    kind = PERFORMANCE
    baseline_trials = 0  # the baseline also waits for this many trials: a tighter guard, faster detection

    def __init__(self, config: SequentialConfig | None = None):
        self.config = config or SequentialConfig()
        self.reset()

    def reset(self) -> None:
        self._baseline = [0.0, 0.0, 0]  # events, trials, windows
        self._test = None

    @classmethod
    def _unit_test_params(cls) -> dict:
        return {"config": FAST}

    def _count(self, window: ClosedWindow) -> tuple[float, float]:
        raise NotImplementedError

    def update(self, window: ClosedWindow, reference: Reference | None) -> list[Finding]:
        events, trials = self._count(window)
        if trials <= 0:
            return []
        if self._test is None:
            base = self._baseline
            base[0] += events
            base[1] += trials
            base[2] += 1
            if base[2] >= self.config.baseline_windows and base[1] >= self.baseline_trials:
                self._test = RateIncrease(upper_bound(base[0], base[1]))
            return []
        value = self._test.update(events, trials)
        threshold = self.config.log_threshold
        alarm = value >= threshold
        baseline = self._baseline[0] / self._baseline[1]
        details = {"rate": events / trials, "baseline": baseline, **self._details(window)}
        finding = self._evidence(
            window,
            value,
            threshold,
            alarm,
            "rate - baseline",
            events / trials - baseline,
            WARNING if alarm else "info",
            details,
        )
        if alarm:
            self._test.reset()
        return [finding]

    def _details(self, window: ClosedWindow) -> dict:
        return {}


class ErrorRateDetector(RateDetector):
    """Failed calls per call (``otelml.inference.calls`` with ``error.type``) rising above the baseline. Statistic,
    threshold and false alarms: ``RateDetector``'s (a betting CUSUM at ``ln A``, one false alarm per ``A`` windows
    at most on average; Waudby-Smith & Ramdas 2024)."""

    name = "error rate"
    example_metric, example_match = semconv.METRIC_DURATION, {semconv.ERROR_TYPE: None}  # failed calls

    def _count(self, window):
        errors = sum(v for (m, extra), v in window.counters.items() if m == semconv.METRIC_CALLS and extra)
        return errors, window.counter(semconv.METRIC_CALLS)

    @classmethod
    def _unit_test_window(cls, rng, index, changed):
        from .synthetic import window

        calls = 500
        return window(index, calls=calls, errors=int(rng.binomial(calls, 0.2 if changed else 0.01)))

"""Availability: a model version that stops reporting, or whose call rate collapses against its own usual rate;
and its counterpart, throughput surging above it.

Windows keep closing for a quiet model (by other models' data or by wall-clock silence, see ``state``), empty, so
silence reaches this detector as windows with no calls. The baseline is the call rate of the first
``baseline_windows`` windows, guarded by a conservative lower bound; after it, a Poisson CUSUM e-detector
(``sequential.CountDrop``) over drops to 0, 10%, 30% and 60% of that rate alarms at ``ln A``.

A partial window (a source's export for it came late and landed in the next window, see ``windows``) is skipped:
its count is not the window's count, and the next window holds more than a window's worth; neither says anything
about the call rate. Silence is not partial: a source that sent nothing over a window's span leaves it empty and
complete.

Real traffic is burstier than Poisson (diurnal cycles, batch jobs), which makes drops look more surprising than they
are; ``min_drop`` requires the window's rate to be at most that share of the baseline before an alarm.
"""

from __future__ import annotations

from dataclasses import dataclass

from ... import semconv
from ..references import Reference
from ..state.windows import ClosedWindow
from .base import AVAILABILITY, CRITICAL, PERFORMANCE, WARNING, Detector, Finding, state
from .sequential import FAST, CountDrop, CountRise, SequentialConfig, lower_bound_rate, upper_bound_rate


class _Rate:
    """A call-rate detector's working state: calls and windows of the baseline, then the test against it."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.calls, self.windows, self.test = 0.0, 0, None


@dataclass(frozen=True)
class _CallRate(Detector):
    """Calls per window against the version's own baseline rate (learned from the first ``baseline_windows``
    windows, starting with the first that has calls); subclasses say which test and when it alarms."""

    config: SequentialConfig = SequentialConfig()
    _rate: _Rate = state(_Rate)
    _test_windows = (2, 300)  # calls per window in the contract test: (changed, stationary) means, per subclass

    def reset(self) -> None:
        self._rate.reset()

    @classmethod
    def _unit_test_params(cls) -> dict:
        return {"config": FAST}

    @classmethod
    def _unit_test_window(cls, rng, index, changed):
        from .synthetic import window

        return window(index, calls=int(rng.poisson(cls._test_windows[0] if changed else cls._test_windows[1])))

    def update(self, window: ClosedWindow, reference: Reference | None) -> list[Finding]:
        if window.partial:  # its count is not this window's count (an export came late)
            return []
        calls, rate = window.counter(semconv.METRIC_CALLS), self._rate
        if rate.test is None:
            if calls or rate.windows:
                rate.calls, rate.windows = rate.calls + calls, rate.windows + 1
                if rate.windows >= self.config.baseline_windows:
                    rate.test = self._start()
            return []
        value = rate.test.update(calls)
        threshold = self.config.log_threshold
        ratio = calls / self._compared_to()
        alarm = value >= threshold and self._large(ratio)
        details = {"calls": calls, "baseline calls per window": rate.calls / rate.windows}
        finding = self._evidence(
            window,
            value,
            threshold,
            alarm,
            "calls / baseline",
            ratio,
            self._severity(calls) if alarm else "info",
            details,
        )
        if alarm:
            rate.test.reset()
        return [finding]


@dataclass(frozen=True)
class AvailabilityDetector(_CallRate):
    """A model that stops reporting, or whose calls per window collapse: a Poisson CUSUM e-detector
    (``sequential.CountDrop``, likelihood ratios of drops to 0-60% of the rate, Page 1954 and Lorden 1971) against
    the baseline rate's lower bound; threshold ``ln A``, so at most one false alarm per ``A`` windows on average
    while calls keep at least that Poisson rate; an alarm also needs the window's calls to be at most ``min_drop``
    of the baseline rate. Silence (0 calls) is critical."""

    min_drop: float = 0.5  # alarm only when the window's calls are at most this share of the baseline rate
    name = "availability"
    kind = AVAILABILITY

    def _start(self):
        rate = lower_bound_rate(self._rate.calls, self._rate.windows)
        return CountDrop(rate) if rate > 0 else None

    def _compared_to(self) -> float:
        return self._rate.test.rate0  # the guarded (lower) baseline rate

    def _large(self, ratio: float) -> bool:
        return ratio <= self.min_drop

    @staticmethod
    def _severity(calls) -> str:
        return CRITICAL if calls == 0 else WARNING


@dataclass(frozen=True)
class ThroughputDetector(_CallRate):
    """Throughput surging above its usual rate (a flood, a scraping or extraction campaign, a retry storm): a Poisson
    CUSUM e-detector (``sequential.CountRise``, Page 1954, Lorden 1971) against the baseline rate's upper bound;
    threshold ``ln A``, so at most one false alarm per ``A`` windows on average while calls stay at most that Poisson
    rate; an alarm also needs the window's calls to be at least ``min_rise`` times the baseline rate. Bursty traffic
    makes rises look more surprising than they are, which ``min_rise`` tempers."""

    min_rise: float = 2.0
    name = "throughput"
    kind = PERFORMANCE
    _test_windows = (3000, 300)

    def _start(self):
        rate = self._rate
        return CountRise(upper_bound_rate(rate.calls, rate.windows)) if rate.calls > 0 else None

    def _compared_to(self) -> float:
        return self._rate.calls / self._rate.windows  # the baseline's mean rate

    def _large(self, ratio: float) -> bool:
        return ratio >= self.min_rise

    @staticmethod
    def _severity(calls) -> str:
        return WARNING

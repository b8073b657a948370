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
from ..windows import ClosedWindow
from .base import AVAILABILITY, CRITICAL, PERFORMANCE, WARNING, Detector, Finding
from .degradation import SequentialConfig
from .sequential import CountDrop, CountRise, lower_bound_rate, upper_bound_rate


class _CallRate(Detector):
    """Calls per window against the version's own baseline rate (learned from the first ``baseline_windows``
    windows, starting with the first that has calls); subclasses say which test and when it alarms."""

    _test_windows = (2, 300)  # calls per window in the contract test: (changed, stationary) means, per subclass

    def __post_init__(self):
        self.reset()

    def reset(self) -> None:
        self._set(_calls=0.0, _windows=0, _test=None)

    @classmethod
    def _unit_test_params(cls) -> dict:
        return {"config": SequentialConfig(false_alarm_days=1.0, window_s=86400.0 / 1000, baseline_windows=20)}

    @classmethod
    def _unit_test_window(cls, rng, index, changed):
        from .synthetic import window

        return window(index, calls=int(rng.poisson(cls._test_windows[0] if changed else cls._test_windows[1])))

    def update(self, window: ClosedWindow, reference: Reference | None) -> list[Finding]:
        if window.partial:  # its count is not this window's count (an export came late)
            return []
        calls = window.counter(semconv.METRIC_CALLS)
        if self._test is None:
            if calls or self._windows:
                self._set(_calls=self._calls + calls, _windows=self._windows + 1)
                if self._windows >= self.config.baseline_windows:
                    self._set(_test=self._start())
            return []
        value = self._test.update(calls)
        threshold = self.config.log_threshold
        ratio = calls / self._compared_to()
        alarm = value >= threshold and self._large(ratio)
        details = {"calls": calls, "baseline calls per window": self._calls / self._windows}
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
            self._test.reset()
        return [finding]


@dataclass(frozen=True)
class AvailabilityDetector(_CallRate):
    """A model that stops reporting, or whose calls per window collapse: a Poisson CUSUM e-detector
    (``sequential.CountDrop``, likelihood ratios of drops to 0-60% of the rate, Page 1954 and Lorden 1971) against
    the baseline rate's lower bound; threshold ``ln A``, so at most one false alarm per ``A`` windows on average
    while calls keep at least that Poisson rate; an alarm also needs the window's calls to be at most ``min_drop``
    of the baseline rate. Silence (0 calls) is critical."""

    config: SequentialConfig = SequentialConfig()
    min_drop: float = 0.5  # alarm only when the window's calls are at most this share of the baseline rate
    name = "availability"
    kind = AVAILABILITY

    def _start(self):
        rate = lower_bound_rate(self._calls, self._windows)
        return CountDrop(rate) if rate > 0 else None

    def _compared_to(self) -> float:
        return self._test.rate0  # the guarded (lower) baseline rate

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

    config: SequentialConfig = SequentialConfig()
    min_rise: float = 2.0
    name = "throughput"
    kind = PERFORMANCE
    _test_windows = (3000, 300)

    def _start(self):
        return CountRise(upper_bound_rate(self._calls, self._windows)) if self._calls > 0 else None

    def _compared_to(self) -> float:
        return self._calls / self._windows  # the baseline's mean rate

    def _large(self, ratio: float) -> bool:
        return ratio >= self.min_rise

    @staticmethod
    def _severity(calls) -> str:
        return WARNING

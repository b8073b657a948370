"""Latency against the version's baseline period: the whole distribution of successful calls' durations
(``LatencyDetector``), and a slow tail of a few percent of calls (``SlowCallsDetector``).
"""

from __future__ import annotations

import math

import numpy as np

from ... import histogram, semconv
from ..references import Reference
from ..state.windows import ClosedWindow
from .base import PERFORMANCE, WARNING, Detector, Finding
from .edetector import FeatureEDetector
from .rates import RateDetector
from .sequential import FAST, RateIncrease, SequentialConfig, upper_bound


class LatencyDetector(Detector):
    """Inference latency changing against the baseline period: the distribution e-detector of ``edetector`` (PIT
    location and scale betting CUSUMs and a multinomial CUSUM, Shin, Ramdas & Rinaldo 2024) on the
    ``otelml.inference.duration`` histogram of successful calls, with the merged baseline windows as its
    reference; threshold ``ln A``, so at most one false alarm per ``A`` windows on average while latency keeps its
    baseline distribution; p50/p95/p99 now and in the baseline in the details.
    Alarms only when the p50, p95 or p99 also rose by at least ``min_increase`` (relative) above the highest it was
    in any single baseline window: latency that swung during the baseline (a machine under varying load, whose
    calls wait for a core now and then) must go beyond its swings, which a new window of the same kind does in
    fewer than one in ``baseline_windows + 1``. A slow tail of a few percent of calls is ``SlowCallsDetector``'s.
    A partial window (``windows``) is skipped: an export stalled past its window, or a replica's calls are missing
    from it, so its calls are not a fair sample of the model's."""

    name = "latency"
    kind = PERFORMANCE
    example_metric, example_order = semconv.METRIC_DURATION, 1  # the slowest calls
    QUANTILES = (50, 95, 99)

    def __init__(self, config: SequentialConfig | None = None, min_increase: float = 0.1):
        self.config = config or SequentialConfig()
        self.min_increase = min_increase
        self.reset()

    def reset(self) -> None:
        self._baseline: list = []
        self._highest: dict = {}  # quantile -> the highest it was in a baseline window
        self._detector = None

    @classmethod
    def _unit_test_params(cls) -> dict:
        return {"config": FAST}

    @classmethod
    def _unit_test_window(cls, rng, index, changed):
        from .synthetic import window

        return window(index, durations=rng.lognormal(math.log(0.02 * (2 if changed else 1)), 0.3, 300))

    def _quantiles(self, h) -> dict:
        return {f"p{q}": histogram.quantile(h, q / 100) for q in self.QUANTILES}

    def update(self, window: ClosedWindow, reference: Reference | None) -> list[Finding]:
        live = successful_durations(window)
        if live is None or live.count == 0 or window.partial:
            return []
        now = self._quantiles(live)
        if self._detector is None:
            self._baseline.append(live)
            self._highest = {q: max(v, self._highest.get(q, 0.0)) for q, v in now.items()}
            if len(self._baseline) >= self.config.baseline_windows:
                self._baseline = [histogram.merge_all(self._baseline)]
                self._detector = FeatureEDetector(self._baseline[0])
            return []
        value = self._detector.update(live)
        then = {f"baseline {q}": v for q, v in self._quantiles(self._baseline[0]).items()}
        highest = {f"baseline window max {q}": v for q, v in self._highest.items()}
        increases = {q: now[q] / self._highest[q] - 1 for q in now if self._highest.get(q, 0) > 0}
        largest = max(increases, key=increases.get, default="p95")
        increase = increases.get(largest, 0.0)
        threshold = self.config.log_threshold
        alarm = value >= threshold and increase >= self.min_increase
        finding = self._evidence(
            window,
            value,
            threshold,
            alarm,
            f"{largest} relative increase over the highest baseline window",
            increase,
            WARNING if alarm else "info",
            {**now, **then, **highest},
        )
        if alarm:
            self._detector.reset()
        return [finding]


class SlowCallsDetector(RateDetector):
    """Successful calls slower than the baseline's p99 (``otelml.inference.duration``) becoming more common: a slow
    tail, a few percent of calls many times slower, that moves neither the p95 nor the whole distribution much.

    Statistic: the share of calls in buckets at or above the cut, the upper bound of the baseline's bucket that holds
    its p99 (so at most 1% of baseline calls lie above it), tested with ``RateIncrease`` against the baseline's share
    guarded by its upper confidence bound; alarm at ``ln A``, so false alarms come at most once per ``A`` windows on
    average while the baseline holds (Waudby-Smith & Ramdas 2024, "Estimating means of bounded random variables by
    betting", JRSS B). A window at a coarser histogram scale counts only its buckets wholly above the cut: fewer slow
    calls, never more. Partial windows are skipped, as by ``LatencyDetector``.

    Example:
        >>> import numpy as np
        >>> from .synthetic import window
        >>> rng = np.random.default_rng(0)
        >>> det = SlowCallsDetector(SequentialConfig(false_alarm_days=1, window_s=86.4, baseline_windows=5))
        >>> for i in range(5):
        ...     _ = det.update(window(i, durations=rng.lognormal(-4, 0.3, 500)), None)
        >>> tail = [det.update(window(5 + i, durations=rng.lognormal(-4, 0.3, 500) * np.where(
        ...     rng.uniform(size=500) < 0.03, 10, 1)), None)[0] for i in range(10)]
        >>> any(f.alarm for f in tail)
        True
    """

    name = "slow calls"
    example_metric, example_order = semconv.METRIC_DURATION, 1
    tail_share = 0.01  # the cut is the baseline's (1 - tail_share) quantile, rounded up to a bucket bound

    def reset(self) -> None:
        super().reset()
        self._cut = None
        self._seen: list = []  # the baseline windows' histograms until the cut is set

    @classmethod
    def _unit_test_window(cls, rng, index, changed):
        from .synthetic import window

        slow = np.where(rng.uniform(size=400) < (0.05 if changed else 0.0), 10.0, 1.0)
        return window(index, durations=rng.lognormal(math.log(0.02), 0.3, 400) * slow)

    def _count(self, window):
        live = successful_durations(window)
        if live is None or live.count == 0:
            return 0.0, 0.0
        lower, _, counts = live.buckets()
        return float(counts[lower >= self._cut].sum()), float(live.count)

    def update(self, window: ClosedWindow, reference: Reference | None) -> list[Finding]:
        if window.partial:
            return []
        if self._cut is not None:
            return super().update(window, reference)
        live = successful_durations(window)
        if live is not None and live.count > 0:
            self._seen.append(live)
        if len(self._seen) >= self.config.baseline_windows:
            base = histogram.merge_all(self._seen)
            _, upper, counts = base.buckets()
            above = base.count - np.cumsum(counts)  # calls above each bucket's upper bound
            at = int(np.argmax(above <= self.tail_share * base.count))
            self._cut, self._seen = float(upper[at]), []
            self._baseline = [float(above[at]), float(base.count), self.config.baseline_windows]
            self._test = RateIncrease(upper_bound(above[at], base.count))
        return []

    def _details(self, window: ClosedWindow) -> dict:
        return {"slower than (s)": self._cut}


def successful_durations(window: ClosedWindow):
    """The merged duration histogram of a window's successful calls (None without any)."""
    parts = [h for (m, extra), h in window.histograms.items() if m == semconv.METRIC_DURATION and not extra]
    return histogram.merge_all(parts) if parts else None

"""Degradation of a model version against its own baseline: errors, low confidence, latency, accuracy.

Each detector learns a baseline from its first ``baseline_windows`` windows with data (the reference period), then
runs a calibrated sequential test against it (``sequential``, ``edetector``): an alarm at ``ln A``, with
``A = false_alarm_days * 86400 / window_s``, so false alarms come at most once per ``false_alarm_days`` on average
while the baseline holds. Learned rates are guarded by a conservative confidence bound, so a short baseline does not
cause false alarms. After an alarm the test restarts; the baseline stays.

``ConfidenceRule`` is the exception: the plain rule "mean confidence below X for N minutes" that users expect,
with no statistical calibration.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from ... import histogram, semconv
from ..references import Reference
from ..windows import ClosedWindow
from .base import PERFORMANCE, WARNING, Detector, Finding
from .edetector import FeatureEDetector, log_sum_exp
from .sequential import RateIncrease, upper_bound


@dataclass(frozen=True)
class SequentialConfig:
    false_alarm_days: float = 30.0
    window_s: float = 60.0
    baseline_windows: int = 30

    @property
    def log_threshold(self) -> float:
        return math.log(self.false_alarm_days * 86400.0 / self.window_s)


_FAST = {"config": SequentialConfig(false_alarm_days=1.0, window_s=86400.0 / 1000, baseline_windows=20)}


class _RateDetector(Detector):
    """A proportion per window (events out of trials) that must not rise above its baseline.

    Statistic: ``sequential.RateIncrease``, a mixture of betting CUSUMs on the window's events against ``p0``, the
    Wilson upper bound (at ``alpha = 1e-3``) of the rate in the first ``baseline_windows`` windows. Threshold
    ``ln A``; a bet that is fair at any rate up to ``p0`` makes the statistic an e-detector, so false alarms come at
    most once per ``A`` windows on average while the rate stays at or below it (Waudby-Smith & Ramdas 2024,
    "Estimating means of bounded random variables by betting", JRSS B; Shin, Ramdas & Rinaldo 2024, e-detectors).
    After an alarm the test restarts; the baseline stays."""

    kind = PERFORMANCE
    baseline_trials = 0  # the baseline also waits for this many trials: a tighter guard, faster detection

    def __init__(self, config: SequentialConfig = SequentialConfig()):
        self.config = config
        self.reset()

    def reset(self) -> None:
        self._baseline = [0.0, 0.0, 0]  # events, trials, windows
        self._test = None

    @classmethod
    def _unit_test_params(cls) -> dict:
        return dict(_FAST)

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


class ErrorRateDetector(_RateDetector):
    """Failed calls per call (``otelml.inference.calls`` with ``error.type``) rising above the baseline. Statistic,
    threshold and false alarms: ``_RateDetector``'s (a betting CUSUM at ``ln A``, one false alarm per ``A`` windows
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


class LowConfidenceDetector(_RateDetector):
    """Share of predictions whose confidence is below ``threshold`` rising above the baseline (counted in whole
    buckets at or below the threshold, the same way in the baseline and after it). Statistic, threshold and false
    alarms: ``_RateDetector``'s (a betting CUSUM at ``ln A``, one false alarm per ``A`` windows at most on average;
    Waudby-Smith & Ramdas 2024)."""

    name = "low confidence"
    metric = semconv.METRIC_CONFIDENCE
    example_metric, example_order = semconv.METRIC_CONFIDENCE, -1  # the least confident calls
    default_threshold = 0.6

    def __init__(self, config: SequentialConfig = SequentialConfig(), threshold: float | None = None):
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


class AccuracyDetector(_RateDetector):
    """Wrong predictions per labelled prediction (``otelml.outcomes`` from late ground truth) rising above the
    baseline; accuracy and macro precision, recall and F1 of the window, and the accuracy over the last
    ``recent_windows`` windows with labels, in the details. Statistic, threshold and false alarms:
    ``_RateDetector``'s (a betting CUSUM at ``ln A``, one false alarm per ``A`` windows at most on average;
    Waudby-Smith & Ramdas 2024); the baseline waits for ``baseline_trials`` labelled predictions."""

    name = "accuracy"
    baseline_trials = 5000  # labelled predictions: guards the baseline error rate to within about 1.3 points
    recent_windows = 10

    def reset(self) -> None:
        super().reset()
        self._recent: deque = deque(maxlen=self.recent_windows)  # (wrong, labelled) of the last windows with labels

    def _count(self, window):
        outcomes = _outcomes(window)
        total = sum(outcomes.values())
        wrong = sum(v for (p, t), v in outcomes.items() if p != t)
        if total:
            self._recent.append((wrong, total))
        return wrong, total

    def _details(self, window):
        wrong, labelled = (sum(column) for column in zip(*self._recent))
        return {
            **classification_metrics(_outcomes(window)),
            f"accuracy, last {len(self._recent)} windows": 1 - wrong / labelled,
            f"labelled, last {len(self._recent)} windows": labelled,
        }

    @classmethod
    def _unit_test_window(cls, rng, index, changed):
        from .synthetic import window

        n = 300
        wrong = int(rng.binomial(n, 0.35 if changed else 0.1))
        return window(index, outcomes={("a", "a"): n - wrong, ("a", "b"): wrong})


class ClassMetricsDetector(Detector):
    """Precision or recall of any one class (hence its F1) falling against the baseline, from late ground truth.

    Statistic: for every class of the baseline, two proportions that must not rise: misses among its true rows
    (1 - recall) and false hits among its predicted rows (1 - precision), each a :class:`RateIncrease` CUSUM
    e-detector against its guarded baseline rate; the statistic is the log of their mean, itself an e-detector
    (Shin, Ramdas & Rinaldo 2024), so the alarm at ``ln A`` keeps false alarms to one per ``false_alarm_days``
    however many classes there are. A falling recall of a rare class that barely moves the accuracy is caught here.
    The finding names the class and metric carrying the evidence, with precision, recall and F1 now and then.

    Example:
        >>> from .synthetic import window
        >>> det = ClassMetricsDetector(SequentialConfig(false_alarm_days=1, window_s=86.4, baseline_windows=5))
        >>> fine = {("a", "a"): 900, ("b", "b"): 90, ("a", "b"): 10}
        >>> worse = {("a", "a"): 900, ("b", "b"): 40, ("a", "b"): 60}
        >>> _ = [det.update(window(i, outcomes=fine), None) for i in range(5)]
        >>> found = [det.update(window(5 + i, outcomes=worse), None) for i in range(5)]
        >>> any(f[0].alarm and f[0].details["class"] == "b" for f in found)
        True
    """

    name = "class metrics"
    kind = PERFORMANCE
    baseline_trials = 5000  # labelled predictions, as for the accuracy
    max_classes = 50  # the most frequent classes of the baseline are tested

    def __init__(self, config: SequentialConfig = SequentialConfig()):
        self.config = config
        self.reset()

    def reset(self) -> None:
        self._baseline: dict = {}  # (predicted, true) -> count
        self._windows = 0
        self._tests: dict = {}  # (metric, class) -> RateIncrease

    @classmethod
    def _unit_test_params(cls) -> dict:
        return dict(_FAST)

    @classmethod
    def _unit_test_window(cls, rng, index, changed):
        from .synthetic import window

        rare = 60
        missed = int(rng.binomial(rare, 0.6 if changed else 0.1))
        return window(index, outcomes={("a", "a"): 600, ("b", "b"): rare - missed, ("a", "b"): missed})

    @staticmethod
    def _rates(outcomes: dict, label) -> dict:
        """(events, trials) of misses among true ``label`` and false hits among predicted ``label``."""
        true = sum(v for (_, t), v in outcomes.items() if t == label)
        predicted = sum(v for (p, _), v in outcomes.items() if p == label)
        hit = outcomes.get((label, label), 0)
        return {"recall": (true - hit, true), "precision": (predicted - hit, predicted)}

    def update(self, window: ClosedWindow, reference: Reference | None) -> list[Finding]:
        outcomes = _outcomes(window)
        if not outcomes:
            return []
        if not self._tests:
            for pair, count in outcomes.items():
                self._baseline[pair] = self._baseline.get(pair, 0) + count
            self._windows += 1
            if self._windows >= self.config.baseline_windows and sum(self._baseline.values()) >= self.baseline_trials:
                self._start_tests()
            return []
        values = {}
        for (metric, label), test in self._tests.items():
            events, trials = self._rates(outcomes, label)[metric]
            values[(metric, label)] = test.update(events, trials)
        model_log = log_sum_exp(list(values.values())) - math.log(len(values))
        threshold = self.config.log_threshold
        alarm = model_log >= threshold
        metric, label = max(values, key=values.get)
        now = classification_metrics(outcomes, label)
        then = classification_metrics(self._baseline, label)
        finding = self._evidence(
            window,
            model_log,
            threshold,
            alarm,
            f"{metric} drop",
            then[metric] - now[metric],
            WARNING if alarm else "info",
            {"class": label, "metric": metric, **now, **{f"baseline {k}": v for k, v in then.items()}},
            statistic="log e-value (mean over class precision and recall tests)",
        )
        if alarm:
            for test in self._tests.values():
                test.reset()
        return [finding]

    def _start_tests(self) -> None:
        totals: dict = {}
        for (predicted, true), count in self._baseline.items():
            totals[true] = totals.get(true, 0) + count
            totals[predicted] = totals.get(predicted, 0) + count
        for label in sorted(totals, key=totals.get, reverse=True)[: self.max_classes]:
            for metric, (events, trials) in self._rates(self._baseline, label).items():
                if trials > 0:
                    self._tests[(metric, label)] = RateIncrease(upper_bound(events, trials))


def _outcomes(window: ClosedWindow) -> dict:
    found = {}
    for (metric, extra), value in window.counters.items():
        if metric == semconv.METRIC_OUTCOMES:
            attributes = dict(extra)
            key = (attributes.get(semconv.PREDICTION_LABEL), attributes.get(semconv.TRUE_LABEL))
            found[key] = found.get(key, 0) + value
    return found


def classification_metrics(outcomes: dict, only=None) -> dict:
    """Accuracy and macro-averaged precision, recall and F1 from {(predicted, true): count} (or, with ``only``,
    the precision, recall and F1 of that one class).

    Example:
        >>> classification_metrics({("a", "a"): 8, ("b", "a"): 2, ("b", "b"): 5})["accuracy"]
        0.8666666666666667
        >>> classification_metrics({("a", "a"): 8, ("b", "a"): 2, ("b", "b"): 5}, only="a")["recall"]
        0.8
    """
    total = sum(outcomes.values())
    if not total:
        return {}
    labels = [only] if only is not None else sorted({label for pair in outcomes for label in pair}, key=str)
    precision, recall, f1 = [], [], []
    for label in labels:
        tp = outcomes.get((label, label), 0)
        predicted = sum(v for (p, _), v in outcomes.items() if p == label)
        actual = sum(v for (_, t), v in outcomes.items() if t == label)
        p = tp / predicted if predicted else 0.0
        r = tp / actual if actual else 0.0
        precision.append(p)
        recall.append(r)
        f1.append(2 * p * r / (p + r) if p + r else 0.0)
    correct = sum(v for (p, t), v in outcomes.items() if p == t)
    return {
        "accuracy": correct / total,
        "precision": float(np.mean(precision)),
        "recall": float(np.mean(recall)),
        "f1": float(np.mean(f1)),
        "labelled": total,
    }


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

    def __init__(self, config: SequentialConfig = SequentialConfig(), min_increase: float = 0.1):
        self.config = config
        self.min_increase = min_increase
        self.reset()

    def reset(self) -> None:
        self._baseline: list = []
        self._highest: dict = {}  # quantile -> the highest it was in a baseline window
        self._detector = None

    @classmethod
    def _unit_test_params(cls) -> dict:
        return dict(_FAST)

    @classmethod
    def _unit_test_window(cls, rng, index, changed):
        from .synthetic import window

        return window(index, durations=rng.lognormal(math.log(0.02 * (2 if changed else 1)), 0.3, 300))

    def _quantiles(self, h) -> dict:
        return {f"p{q}": histogram.quantile(h, q / 100) for q in self.QUANTILES}

    def update(self, window: ClosedWindow, reference: Reference | None) -> list[Finding]:
        live = _successful_durations(window)
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


class SlowCallsDetector(_RateDetector):
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
        live = _successful_durations(window)
        if live is None or live.count == 0:
            return 0.0, 0.0
        lower, _, counts = live.buckets()
        return float(counts[lower >= self._cut].sum()), float(live.count)

    def update(self, window: ClosedWindow, reference: Reference | None) -> list[Finding]:
        if window.partial:
            return []
        if self._cut is not None:
            return super().update(window, reference)
        live = _successful_durations(window)
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


def _successful_durations(window: ClosedWindow):
    parts = [h for (m, extra), h in window.histograms.items() if m == semconv.METRIC_DURATION and not extra]
    return histogram.merge_all(parts) if parts else None


@dataclass(frozen=True)
class ConfidenceRule(Detector):
    """The preset users expect: an alarm when the mean confidence stays below ``threshold`` for ``minutes``.
    Statistic: the window's mean confidence; threshold: ``threshold`` for ``ceil(minutes x 60 / window_s)`` windows
    in a row. A plain rule, not a calibrated test: how often it fires depends on the model (the calibrated
    counterpart is ``LowConfidenceDetector``). As in Prometheus alerting rules ("expr for 5m")."""

    threshold: float = 0.7
    minutes: float = 5.0
    window_s: float = 60.0
    name = "confidence below threshold"
    kind = PERFORMANCE
    example_metric, example_order = semconv.METRIC_CONFIDENCE, -1

    def __post_init__(self):
        self.reset()

    def reset(self) -> None:
        self._set(_run=0)

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
        self._set(_run=self._run + 1 if mean < self.threshold else 0)
        needed = max(1, math.ceil(self.minutes * 60 / self.window_s))
        alarm = self._run >= needed
        if alarm:
            self._set(_run=0)
        return [
            self._finding(
                window,
                feature=None,
                statistic="mean confidence",
                value=mean,
                threshold=self.threshold,
                alarm=alarm,
                effect="windows below threshold",
                effect_size=float(needed if alarm else self._run),
                severity=WARNING if alarm else "info",
                details={"windows needed": needed},
            )
        ]

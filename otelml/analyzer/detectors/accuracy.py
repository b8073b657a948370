"""Accuracy against late ground truth (``otelml.outcomes``): wrong predictions per labelled prediction, and the
precision and recall of every class, falling against the version's baseline; ``classification_metrics`` for the
findings' details and the evaluation.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from ... import semconv
from ..references import Reference
from ..state.windows import ClosedWindow
from .base import PERFORMANCE, WARNING, Detector, Finding
from .edetector import log_sum_exp
from .rates import RateDetector
from .sequential import FAST, RateIncrease, SequentialConfig, upper_bound


class AccuracyDetector(RateDetector):
    """Wrong predictions per labelled prediction (``otelml.outcomes`` from late ground truth) rising above the
    baseline; accuracy and macro precision, recall and F1 of the window, and the accuracy over the last
    ``recent_windows`` windows with labels, in the details. Statistic, threshold and false alarms:
    ``RateDetector``'s (a betting CUSUM at ``ln A``, one false alarm per ``A`` windows at most on average;
    Waudby-Smith & Ramdas 2024); the baseline waits for ``baseline_trials`` labelled predictions."""

    name = "accuracy"
    baseline_trials = 5000  # labelled predictions: guards the baseline error rate to within about 1.3 points
    recent_windows = 10

    def reset(self) -> None:
        super().reset()
        self._recent: deque = deque(maxlen=self.recent_windows)  # (wrong, labelled) of the last windows with labels

    def _count(self, window):
        outcomes = window_outcomes(window)
        total = sum(outcomes.values())
        wrong = sum(v for (p, t), v in outcomes.items() if p != t)
        if total:
            self._recent.append((wrong, total))
        return wrong, total

    def _details(self, window):
        wrong, labelled = (sum(column) for column in zip(*self._recent))
        return {
            **classification_metrics(window_outcomes(window)),
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

    def __init__(self, config: SequentialConfig | None = None):
        self.config = config or SequentialConfig()
        self.reset()

    def reset(self) -> None:
        self._baseline: dict = {}  # (predicted, true) -> count
        self._windows = 0
        self._tests: dict = {}  # (metric, class) -> RateIncrease

    @classmethod
    def _unit_test_params(cls) -> dict:
        return {"config": FAST}

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
        outcomes = window_outcomes(window)
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


def window_outcomes(window: ClosedWindow) -> dict:
    """{(predicted label, true label): count} of a window's labelled predictions."""
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

"""Drift of categorical values: the predicted-label mix (``otelml.predictions``) or the values of non-numeric
features (``otelml.feature.category.count``), against the version's baseline period.

Statistic: per stream, the multinomial likelihood-ratio e-detector of ``edetector`` (a predictable, exponentially
weighted estimate of the category mix, guarded by the chi-square ball of the baseline's sampling error plus
``w_min``), as CUSUMs at two memories; per model, the average over streams. Values never seen in the baseline share
one "unseen" category with a small floor mass. Threshold ``ln A`` as everywhere, and an alarm also needs a total
variation distance of at least ``min_effect`` between the window's mix and the baseline's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from ... import semconv
from ..references import Reference
from ..state.windows import ClosedWindow
from .base import DRIFT, WARNING, Detector, Finding, state
from .edetector import log_sum_exp, multinomial_increment
from .sequential import FAST, SequentialConfig

LABELS, FEATURES = "labels", "features"


@dataclass
class _Stream:
    baseline: dict = field(default_factory=dict)  # category -> count
    windows: int = 0
    categories: list | None = None  # frozen after the baseline; the last slot is "unseen"
    p0: np.ndarray | None = None
    radius: float = 0.0
    seen: np.ndarray | None = None
    w: np.ndarray | None = None


@dataclass(frozen=True)
class CategoryDriftDetector(Detector):
    """The mix of predicted labels (``source="labels"``) or of non-numeric feature values (``"features"``) moving
    away from the version's baseline mix. Statistic: the mean over streams of multinomial likelihood-ratio CUSUM
    e-detectors (Shin, Ramdas & Rinaldo 2024), each against the chi-square ball of the baseline's sampling error;
    threshold ``ln A`` (the mean of e-detectors is one under any dependence, so at most one false alarm per ``A``
    windows on average while every mix stays within its ball) and a total variation of at least ``min_effect``.
    The window's own Pearson chi-square against the baseline is in the details and the finding's p-value."""

    source: str = LABELS  # "labels": the predicted-label mix; "features": non-numeric feature values
    config: SequentialConfig = field(default_factory=SequentialConfig)
    alpha_ref: float = 1e-3
    w_min: float = 0.0
    min_effect: float = 0.05  # total variation distance
    memories: tuple = (10, 50)
    _streams: dict = state(dict)  # stream name -> _Stream, its working state
    name = "category drift"
    kind = DRIFT

    def __post_init__(self):
        if self.source not in (LABELS, FEATURES):
            raise ValueError(f"source must be {LABELS!r} or {FEATURES!r}")

    @property
    def _decay(self) -> np.ndarray:
        """Per memory, the weight the estimate of the mix keeps each window."""
        return np.array([1 - 1 / m for m in self.memories])

    def reset(self) -> None:
        self._streams.clear()

    @classmethod
    def _unit_test_params(cls) -> dict:
        return {"config": FAST}

    @classmethod
    def _unit_test_window(cls, rng, index, changed):
        from .synthetic import window

        mix = [0.2, 0.3, 0.5] if changed else [0.6, 0.3, 0.1]
        return window(index, labels=rng.choice(["a", "b", "c"], size=400, p=mix))

    def _mixes(self, window: ClosedWindow) -> dict:
        """Stream name -> {category: count} in this window."""
        mixes: dict = {}
        for (metric, extra), value in window.counters.items():
            attributes = dict(extra)
            if self.source == LABELS and metric == semconv.METRIC_PREDICTIONS:
                mixes.setdefault("predicted label", {})[attributes.get(semconv.PREDICTION_LABEL)] = value
            elif self.source == FEATURES and metric == semconv.METRIC_FEATURE_CATEGORY:
                name = attributes.get(semconv.FEATURE_NAME)
                mixes.setdefault(name, {})[attributes.get(semconv.FEATURE_CATEGORY)] = value
        return mixes

    def update(self, window: ClosedWindow, reference: Reference | None) -> list[Finding]:
        mixes = self._mixes(window)
        log_values, effects, chi_square = {}, {}, {}
        for name, mix in mixes.items():
            stream = self._streams.setdefault(name, _Stream())
            if stream.categories is None:
                self._learn(stream, mix)
                continue
            counts = np.zeros(len(stream.categories) + 1)
            index = {c: i for i, c in enumerate(stream.categories)}
            for category, value in mix.items():
                counts[index.get(category, len(stream.categories))] += value
            increment, stream.seen = multinomial_increment(counts, stream.p0, stream.seen, self._decay, stream.radius)
            stream.w = np.maximum(stream.w, 0.0) + increment
            log_values[name] = log_sum_exp(stream.w - math.log(stream.w.size))
            effects[name] = 0.5 * float(np.abs(counts / counts.sum() - stream.p0).sum()) if counts.sum() else 0.0
            chi_square[name] = _chi_square(counts, stream.p0)
        if not log_values:
            return []
        value = log_sum_exp(list(log_values.values())) - math.log(len(log_values))
        threshold = self.config.log_threshold
        top = max(log_values, key=log_values.get)
        alarm = value >= threshold and effects[top] >= self.min_effect
        details = {
            "source": self.source,
            "mix": mixes.get(top, {}),
            "baseline": self._streams[top].baseline,
            **chi_square[top],
        }
        finding = self._evidence(
            window,
            value,
            threshold,
            alarm,
            "total variation",
            effects[top],
            WARNING if alarm else "info",
            details,
            feature=top,
            statistic="log e-value (mean over streams)",
            p_value=chi_square[top].get("chi_square_p"),
        )
        if alarm:
            for stream in self._streams.values():
                if stream.w is not None:
                    stream.w[:] = 0.0
        return [finding]

    def _learn(self, stream: _Stream, mix: dict) -> None:
        for category, value in mix.items():
            stream.baseline[category] = stream.baseline.get(category, 0) + value
        stream.windows += 1
        if stream.windows < self.config.baseline_windows:
            return
        stream.categories = sorted(stream.baseline, key=str)
        m = float(sum(stream.baseline.values()))
        p0 = np.array([stream.baseline[c] for c in stream.categories] + [0.0]) / m
        p0 = np.maximum(p0, 0.5 / m)
        stream.p0 = p0 / p0.sum()
        k = p0.size
        stream.radius = math.sqrt(stats.chi2.isf(self.alpha_ref, k - 1) / m) + self.w_min
        stream.seen = np.zeros((self._decay.size, k))
        stream.w = np.zeros(self._decay.size)


def _chi_square(counts: np.ndarray, p0: np.ndarray) -> dict:
    """Pearson's chi-square of one window's mix against the baseline mix, as a per-window effect description (the
    alarm is the sequential e-detector's, not this test's)."""
    if counts.sum() == 0:
        return {}
    statistic, p_value = stats.chisquare(counts, counts.sum() * p0)
    return {"chi_square": float(statistic), "chi_square_p": float(p_value)}

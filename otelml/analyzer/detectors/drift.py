"""Input and output drift of one model version: a feature-level e-detector each, one calibrated alarm per model.

Statistic: the average over features of each feature's mixture e-detector (``edetector.FeatureBank``),
``log M = logsumexp_f(log M_f) - ln F``. An average of e-detectors is an e-detector under any dependence between
features, so the model alarms when ``log M >= ln A`` with an average run length to false alarm of at least ``A``
windows, however many features there are and however they correlate. ``A`` comes from the target "at most one
false drift alarm per model per ``false_alarm_days`` days": ``A = days * 86400 / window seconds``.

An alarm also needs an effect that matters: the normalised Wasserstein distance (W1 / reference sd) between the
reference and the live data since the feature's statistic last fell to zero (the estimated change point) must be at
least ``min_effect``; findings also carry KS, PSI and Jensen-Shannon (``distances``). Features whose own statistic
passes ``ln(F A)`` are named as confirmed; otherwise the strongest contributors are. After an alarm every feature's
detector restarts.

Reference: Shin, Ramdas & Rinaldo (2024), "E-detectors: a nonparametric framework for sequential change detection".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ... import histogram, semconv
from ..references import Reference
from ..windows import ClosedWindow
from .base import CRITICAL, DRIFT, INFO, WARNING, Detector, Finding
from .distances import all_distances, wasserstein_sd
from .edetector import EDetectorConfig, FeatureBank, log_sum_exp


@dataclass(frozen=True)
class DriftConfig:
    false_alarm_days: float = 30.0  # at most one false alarm per model per this many days
    window_s: float = 60.0
    min_effect: float = 0.05  # smallest W1/sd worth an alarm
    metric: str = semconv.METRIC_FEATURE_VALUE  # or METRIC_CONFIDENCE, METRIC_PREDICTION_VALUE for output drift
    edetector: EDetectorConfig = field(default_factory=EDetectorConfig)

    @property
    def log_threshold(self) -> float:
        return math.log(self.false_alarm_days * 86400.0 / self.window_s)


class DriftDetector(Detector):
    """Drift of a model version's feature distributions (or of one output distribution) against its reference."""

    name = "drift"
    kind = DRIFT

    def __init__(self, config: DriftConfig = DriftConfig()):
        self.config = config
        self._names: list = []  # watched streams, in the bank's order
        self._bank: FeatureBank | None = None
        self._since_zero: dict = {}  # name -> [live histograms since the statistic was last <= 0]
        self._reference_hash = None

    def reset(self) -> None:
        if self._bank is not None:
            self._bank.reset()
        self._since_zero = {}

    @classmethod
    def _unit_test_params(cls) -> dict:
        return {"config": DriftConfig(false_alarm_days=1.0, window_s=86400.0 / 1000)}

    @classmethod
    def _unit_test_reference(cls, rng) -> Reference:
        from .synthetic import window

        return Reference("m", "1", window(0, features=rng.normal(size=(100_000, 4))).histograms, "test", 100_000)

    @classmethod
    def _unit_test_window(cls, rng, index, changed):
        from .synthetic import window

        return window(index, features=rng.normal(1.0 if changed else 0.0, 1.0, size=(300, 4)))

    def _streams(self, histograms: dict) -> dict:
        """Name -> histogram of the streams this detector watches."""
        if self.config.metric == semconv.METRIC_FEATURE_VALUE:
            return {
                dict(extra)[semconv.FEATURE_NAME]: h
                for (m, extra), h in histograms.items()
                if m == semconv.METRIC_FEATURE_VALUE
            }
        merged = [h for (m, _), h in histograms.items() if m == self.config.metric]
        return {self.config.metric: histogram.merge_all(merged)} if merged else {}

    def _prepare(self, reference: Reference) -> None:
        if reference.hash == self._reference_hash:
            return
        self._reference_hash = reference.hash
        streams = {name: h for name, h in self._streams(reference.histograms).items() if h.count}
        self._names = list(streams)
        self._bank = FeatureBank(list(streams.values()), self.config.edetector) if streams else None
        self._since_zero = {}

    def update(self, window: ClosedWindow, reference: Reference | None) -> list[Finding]:
        if reference is None:
            return []
        self._prepare(reference)
        if self._bank is None:
            return []
        live = self._streams(window.histograms)
        values = self._bank.update([live.get(name) for name in self._names])
        log_values = dict(zip(self._names, values.tolist()))
        for name, value in log_values.items():
            h = live.get(name)
            if value <= 0:
                self._since_zero.pop(name, None)
            elif h is not None and h.count:
                pending = self._since_zero.setdefault(name, [])
                pending.append(h)
                if len(pending) >= 64:
                    pending[:] = [histogram.merge_all(pending)]
        n = len(self._names)
        model_log = log_sum_exp(values) - math.log(n)
        threshold = self.config.log_threshold
        if model_log < threshold:
            return [self._model_finding(window, model_log, threshold, False, None, [])]
        index = {name: i for i, name in enumerate(self._names)}
        since_change = {name: histogram.merge_all(parts) for name, parts in self._since_zero.items() if parts}
        effects = {name: wasserstein_sd(h, self._bank.references[index[name]]) for name, h in since_change.items()}
        ranked = sorted(log_values, key=log_values.get, reverse=True)
        confirmed = [f for f in ranked if log_values[f] >= threshold + math.log(n)]
        named = confirmed or ranked[:3]
        largest = max((effects.get(f, 0.0) for f in named), default=0.0)
        if largest < self.config.min_effect:
            return [self._model_finding(window, model_log, threshold, False, largest, named)]
        findings = [self._model_finding(window, model_log, threshold, True, largest, named)]
        for name in named:
            distances = (
                all_distances(since_change[name], self._bank.references[index[name]]) if name in since_change else {}
            )
            details = {"metric": self.config.metric, **self._bank.components(index[name]), **distances}
            findings.append(
                self._evidence(
                    window,
                    log_values[name],
                    threshold + math.log(n),
                    name in confirmed,
                    "wasserstein/sd",
                    effects.get(name),
                    _severity(effects.get(name) or 0.0),
                    details,
                    feature=name,
                )
            )
        self.reset()
        return findings

    def _model_finding(self, window, model_log, threshold, alarm, effect, named) -> Finding:
        details = {"metric": self.config.metric, "features": list(named), "watched": len(self._names)}
        return self._evidence(
            window,
            model_log,
            threshold,
            alarm,
            "wasserstein/sd" if effect is not None else None,
            effect,
            _severity(effect or 0.0) if alarm else INFO,
            details,
            statistic="log e-value (mean over features)",
        )


def _severity(effect: float) -> str:
    return CRITICAL if effect >= 0.5 else WARNING if effect >= 0.2 else INFO

"""Input and output drift of one model version: two tests per feature, one calibrated alarm per model.

Statistic: two parts that share the false-alarm budget, a share ``s`` (``scan_share``, 3/4) for the scan.

- The average over features of each feature's mixture e-detector (``edetector.FeatureBank``: shifts, changes of
  spread, any change of shape), ``log M = logsumexp_f(log M_f) - ln F``. An average of e-detectors is an e-detector
  under any dependence between features: alarming at ``log M >= ln(A / (1 - s))`` has an average run length to
  false alarm of at least ``A / (1 - s)`` windows, a bound.
- The largest over features of each feature's mean-shift scan (``scan.MeanShiftScan``, faster on shifts of the mean),
  ``log R = max_f log_arl(g_f) - ln F``, calibrated so that alarming at ``log R >= ln(A / s)`` has an average run
  length of about ``A / s`` windows (a union bound over features; see ``scan``).

The model alarms when ``max(log M + ln(1 - s), log R + ln s) >= ln A``: at most about one false alarm per ``A``
windows, the two parts' rates added. ``A`` comes from the target "at most one false drift alarm per model per
``false_alarm_days`` days": ``A = days * 86400 / window seconds``.

An alarm also needs an effect that matters: the normalised Wasserstein distance (W1 / reference sd) between the
reference and the live data since the feature's e-detector statistic last fell to zero (the estimated change point)
must be at least ``min_effect``; findings also carry KS, PSI and Jensen-Shannon (``distances``). Features whose own
statistic passes ``ln(F A)`` (either part, with its share) are named as confirmed; otherwise the strongest
contributors are. After an alarm every feature's detector restarts.

References: Shin, Ramdas & Rinaldo (2024), "E-detectors: a nonparametric framework for sequential change detection";
for the scan, ``scan``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ... import histogram, semconv
from ..references import Reference
from ..state.windows import ClosedWindow
from .base import CRITICAL, DRIFT, INFO, WARNING, Detector, Finding
from .distances import all_distances, wasserstein_sd
from .edetector import EDetectorConfig, FeatureBank, log_sum_exp
from .scan import MeanShiftScan


@dataclass(frozen=True)
class DriftConfig:
    false_alarm_days: float = 30.0  # at most one false alarm per model per this many days
    window_s: float = 60.0
    min_effect: float = 0.05  # smallest W1/sd worth an alarm
    scan_share: float = 0.75  # share of the false-alarm budget of the mean-shift scan; the e-detectors get the rest
    metric: str = semconv.METRIC_FEATURE_VALUE  # or METRIC_CONFIDENCE, METRIC_PREDICTION_VALUE for output drift
    edetector: EDetectorConfig = field(default_factory=EDetectorConfig)

    def __post_init__(self):
        if not 0.0 <= self.scan_share <= 1.0:
            raise ValueError(f"scan_share must lie in [0, 1], got {self.scan_share}")

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
        self._scan: MeanShiftScan | None = None
        self._since_zero: dict = {}  # name -> [live histograms since the statistic was last <= 0]
        self._reference_hash = None

    @property
    def example_metric(self) -> str:
        return self.config.metric  # example calls: the drifted feature's (or the output's) exemplars

    def reset(self) -> None:
        if self._bank is not None:
            self._bank.reset()
        if self._scan is not None:
            self._scan.reset()
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
        if self._bank is not None:
            self._scan = MeanShiftScan(
                self._bank.reference_counts,
                distributions=self._bank.score_distributions(),
                alpha_ref=self._bank.config.alpha_ref,  # per feature
            )
        self._since_zero = {}

    def update(self, window: ClosedWindow, reference: Reference | None) -> list[Finding]:
        if reference is None:
            return []
        self._prepare(reference)
        if self._bank is None:
            return []
        live = self._streams(window.histograms)
        values = self._bank.update([live.get(name) for name in self._names])
        scans = self._scan.update(self._bank.scan_sums, self._bank.scan_counts)
        for name, value in zip(self._names, values.tolist()):
            h = live.get(name)
            if value <= 0:
                self._since_zero.pop(name, None)
            elif h is not None and h.count:
                pending = self._since_zero.setdefault(name, [])
                pending.append(h)
                if len(pending) >= 64:
                    pending[:] = [histogram.merge_all(pending)]
        n = len(self._names)
        share = self.config.scan_share
        e_weight, scan_weight = _log(1 - share), _log(share)
        parts = {"e-detector": log_sum_exp(values) - math.log(n), "mean-shift scan": float(scans.max()) - math.log(n)}
        weighted = {
            "e-detector": parts["e-detector"] + e_weight,
            "mean-shift scan": parts["mean-shift scan"] + scan_weight,
        }
        model_log = max(weighted.values())
        log_values = dict(zip(self._names, np.maximum(values + e_weight, scans + scan_weight).tolist()))
        threshold = self.config.log_threshold
        if model_log < threshold:
            return [self._model_finding(window, model_log, threshold, False, None, [], parts, weighted)]
        index = {name: i for i, name in enumerate(self._names)}
        since_change = {name: histogram.merge_all(hs) for name, hs in self._since_zero.items() if hs}
        effects = {name: wasserstein_sd(h, self._bank.references[index[name]]) for name, h in since_change.items()}
        ranked = sorted(log_values, key=log_values.get, reverse=True)
        confirmed = [f for f in ranked if log_values[f] >= threshold + math.log(n)]
        named = confirmed or ranked[:3]
        largest = max((effects.get(f, 0.0) for f in named), default=0.0)
        if largest < self.config.min_effect:
            return [self._model_finding(window, model_log, threshold, False, largest, named, parts, weighted)]
        findings = [self._model_finding(window, model_log, threshold, True, largest, named, parts, weighted)]
        for name in named:
            distances = (
                all_distances(since_change[name], self._bank.references[index[name]]) if name in since_change else {}
            )
            i = index[name]
            details = {"metric": self.config.metric, **self._bank.components(i), **distances}
            details["e-detector"], details["mean-shift scan"] = float(values[i]), float(scans[i])
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
                    statistic="log evidence (e-detector or mean-shift scan, weighted by its share)",
                    e_value=math.exp(min(float(values[i]), 700)),
                )
            )
        self.reset()
        return findings

    def _model_finding(self, window, model_log, threshold, alarm, effect, named, parts, weighted) -> Finding:
        details = {"metric": self.config.metric, "features": list(named), "watched": len(self._names), **parts}
        details["carried by"] = max(weighted, key=weighted.get)
        return self._evidence(
            window,
            model_log,
            threshold,
            alarm,
            "wasserstein/sd" if effect is not None else None,
            effect,
            _severity(effect or 0.0) if alarm else INFO,
            details,
            statistic="log evidence (e-detector mean or mean-shift scan, weighted by its share)",
            e_value=math.exp(min(parts["e-detector"], 700)),
        )


def _log(x: float) -> float:
    return math.log(x) if x > 0 else -math.inf


def _severity(effect: float) -> str:
    return CRITICAL if effect >= 0.5 else WARNING if effect >= 0.2 else INFO

"""Runs the detectors of every model version on each closed window, against its pinned reference.

Each model version gets its own detector instances (input drift on the feature histograms, output drift on the
confidence histogram); their state travels in the analyzer's checkpoints. The latest finding of each detector and
a bounded list of recent alarms are kept for the status API.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict

from .. import semconv
from .detectors import DriftConfig, DriftDetector, Finding
from .references import Reference
from .windows import ClosedWindow

MAX_ALARMS = 1000


class Detection:
    def __init__(self, window_s: float, false_alarm_days: float = 30.0, min_effect: float = 0.05):
        self.window_s = window_s
        self.false_alarm_days = false_alarm_days
        self.min_effect = min_effect
        self._detectors: dict = {}  # (model, version) -> {label: Detector}
        self.latest: dict = {}  # (model, version) -> {label: Finding}
        self.alarms: deque = deque(maxlen=MAX_ALARMS)

    def _for(self, model: str, version: str) -> dict:
        found = self._detectors.get((model, version))
        if found is None:
            config = dict(false_alarm_days=self.false_alarm_days, window_s=self.window_s, min_effect=self.min_effect)
            found = self._detectors[(model, version)] = {
                "input drift": DriftDetector(DriftConfig(**config)),
                "output drift": DriftDetector(DriftConfig(metric=semconv.METRIC_CONFIDENCE, **config)),
            }
        return found

    def on_window(self, window: ClosedWindow, reference: Reference | None) -> list[Finding]:
        """Findings of every detector on one closed window (alarms first)."""
        if reference is None:
            return []
        findings = []
        latest = self.latest.setdefault((window.model, window.version), {})
        for label, detector in self._for(window.model, window.version).items():
            produced = detector.update(window, reference)
            if produced:
                latest[label] = produced[0]
            findings += produced
        alarms = [f for f in findings if f.alarm]
        self.alarms.extend(alarms)
        return alarms + [f for f in findings if not f.alarm]

    def summary(self, model: str, version: str) -> dict:
        return {label: _brief(f) for label, f in self.latest.get((model, version), {}).items()}


def _brief(finding: Finding) -> dict:
    return {k: v for k, v in asdict(finding).items() if k not in ("model", "version", "kind", "detector")}


def as_dict(finding: Finding) -> dict:
    return asdict(finding)

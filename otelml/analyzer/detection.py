"""Runs the detectors of every model version on each closed window.

Each model version gets its own detector instances; their state travels in the analyzer's checkpoints:

- input drift (feature histograms), output drift (confidence histogram) and prediction drift (the predicted values
  of regression and scoring models) against the pinned reference;
- error rate, low confidence, accuracy from late ground truth, latency, slow calls and availability against the
  version's own
  baseline period; the "mean confidence below X for N minutes" rule;
- label mix and categorical-feature drift against the version's baseline period;
- integrity, derived from the drift detectors: the outputs moved (output drift or label mix alarmed) while the inputs
  did not; and, for a new version, its outputs differ from the previous version's on inputs that do not (the
  previous version's last windows serve as its reference)
  (input drift's statistic stays below half its threshold) -- the signature of a swapped, corrupted or poisoned
  model rather than of a changing world. Only a window whose inputs were observed and judged in it, and that is not
  partial (``windows``), can say the inputs were stable.

The latest finding of each detector and a bounded list of recent alarms are kept for the status API.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, replace

from .. import semconv
from .detectors import (
    AccuracyDetector,
    AvailabilityDetector,
    CategoryDriftDetector,
    ClassMetricsDetector,
    ConfidenceRule,
    DriftConfig,
    DriftDetector,
    ErrorRateDetector,
    Finding,
    InputRangeDetector,
    LatencyDetector,
    LowConfidenceDetector,
    LowMarginDetector,
    SequentialConfig,
    SlowCallsDetector,
    ThroughputDetector,
)
from .detectors.base import CRITICAL, INTEGRITY
from .logs import logger
from .references import Reference
from .state.windows import ClosedWindow

MAX_ALARMS = 1000
INPUT_DRIFT, OUTPUT_DRIFT, PREDICTION_DRIFT, LABEL_MIX = "input drift", "output drift", "prediction drift", "label mix"
OUTPUTS = (semconv.METRIC_CONFIDENCE, semconv.METRIC_PREDICTION_VALUE)  # output drift, prediction drift


class Detection:
    def __init__(
        self,
        window_s: float,
        false_alarm_days: float = 30.0,
        min_effect: float = 0.05,
        baseline_windows: int = 30,
        drift_scan_share: float = 0.75,
        confidence_threshold: float = 0.7,
        confidence_minutes: float = 5.0,
        low_confidence_threshold: float = 0.6,
    ):
        self.window_s = window_s
        self.false_alarm_days = false_alarm_days
        self.min_effect = min_effect
        self.baseline_windows = baseline_windows
        self.drift_scan_share = drift_scan_share
        self.confidence_rule = (confidence_threshold, confidence_minutes)
        self.low_confidence_threshold = low_confidence_threshold
        self.settings = (
            window_s,
            false_alarm_days,
            min_effect,
            baseline_windows,
            drift_scan_share,
            *self.confidence_rule,
            low_confidence_threshold,
        )
        self._detectors: dict = {}  # (model, version) -> {label: Detector}
        self.latest: dict = {}  # (model, version) -> {label: Finding}
        self.alarms: deque = deque(maxlen=MAX_ALARMS)
        self._versus: dict = {}  # (model, version) -> drift detectors against the previous version
        self._input_levels: dict = {}  # (model, version) -> (input drift's peak level, the previous window's)
        self.failed = 0  # detector updates that raised (each logged), shown in /api/health

    def forget(self, key: tuple) -> None:
        """Drop the detectors and findings of a model version (evicted at the cap on models)."""
        for table in (self._detectors, self.latest, self._versus, self._input_levels):
            table.pop(key, None)

    def _drift(self, **metric) -> DriftDetector:
        """A drift detector with these settings (input drift, or ``metric=`` another histogram's)."""
        return DriftDetector(
            DriftConfig(
                false_alarm_days=self.false_alarm_days,
                window_s=self.window_s,
                min_effect=self.min_effect,
                scan_share=self.drift_scan_share,
                **metric,
            )
        )

    def _for(self, model: str, version: str) -> dict:
        found = self._detectors.get((model, version))
        if found is None:
            found = self._detectors[(model, version)] = self._new_detectors()
        return found

    def _new_detectors(self) -> dict:
        sequential = SequentialConfig(
            false_alarm_days=self.false_alarm_days, window_s=self.window_s, baseline_windows=self.baseline_windows
        )
        return {
            INPUT_DRIFT: self._drift(),
            OUTPUT_DRIFT: self._drift(metric=semconv.METRIC_CONFIDENCE),
            PREDICTION_DRIFT: self._drift(metric=semconv.METRIC_PREDICTION_VALUE),
            LABEL_MIX: CategoryDriftDetector(source="labels", config=sequential, min_effect=self.min_effect),
            "category drift": CategoryDriftDetector(source="features", config=sequential, min_effect=self.min_effect),
            "input range": InputRangeDetector(sequential),
            "error rate": ErrorRateDetector(sequential),
            "low confidence": LowConfidenceDetector(sequential, self.low_confidence_threshold),
            "low margin": LowMarginDetector(sequential),
            "accuracy": AccuracyDetector(sequential),
            "class metrics": ClassMetricsDetector(sequential),
            "latency": LatencyDetector(sequential),
            "slow calls": SlowCallsDetector(sequential),
            "confidence rule": ConfidenceRule(*self.confidence_rule, window_s=self.window_s),
            "availability": AvailabilityDetector(sequential),
            "throughput": ThroughputDetector(sequential),
        }

    def on_window(
        self, window: ClosedWindow, reference: Reference | None, previous: Reference | None = None
    ) -> list[Finding]:
        """Findings of every detector on one closed window, alarms first. ``previous`` is the output and input
        behaviour of the model's previous version (its last windows), to compare a new version with."""
        findings = []
        latest = self.latest.setdefault((window.model, window.version), {})
        for label, detector in self._for(window.model, window.version).items():
            try:
                produced = detector.update(window, reference)
            except Exception:  # one detector's failure must not take the others, or other models, with it
                self.failed += 1
                logger.exception("detector %s failed on model %r version %r", label, window.model, window.version)
                continue
            if produced:
                latest[label] = produced[0]
            findings += produced
        integrity = self._integrity(window, self._inputs_since_outputs_moved(window, latest), findings, "integrity")
        if previous is not None:
            compared = self._compare_versions(window, previous)
            findings += compared
            integrity = integrity or self._integrity(
                window, compared[0] if compared else None, compared, "version comparison"
            )
        if integrity is not None:
            latest["integrity"] = integrity
            findings.append(integrity)
        alarms = [f for f in findings if f.alarm]
        self.alarms.extend(alarms)
        return alarms + [f for f in findings if not f.alarm]

    def _inputs_since_outputs_moved(self, window: ClosedWindow, latest: dict) -> Finding | None:
        """This window's input drift finding, its statistic raised to the largest (relative to the threshold) since
        the outputs' statistics were last below half their thresholds, and the window before that: input drift
        restarts after an alarm, so while the world changes its statistic drops to nothing every other window, and
        an output alarm in such a window does not mean the inputs were stable."""
        inputs = latest.get(INPUT_DRIFT)
        if inputs is None or inputs.window_end_unix_nano != window.end_unix_nano or inputs.threshold <= 0:
            return None
        levels = self._input_levels
        level = inputs.value / inputs.threshold
        peak, before = levels.get((window.model, window.version), (level, level))
        outputs = [
            f
            for label in (OUTPUT_DRIFT, PREDICTION_DRIFT, LABEL_MIX)
            if (f := latest.get(label)) is not None and f.window_end_unix_nano == window.end_unix_nano
        ]
        moving = any(f.value >= f.threshold / 2 for f in outputs)
        peak = max(peak, level) if moving else max(level, before)
        levels[(window.model, window.version)] = (peak, level)
        return replace(inputs, value=max(inputs.value, peak * inputs.threshold))

    def _compare_versions(self, window: ClosedWindow, previous: Reference) -> list[Finding]:
        """Input and output drift of this version against the previous version's recent behaviour."""
        key = (window.model, window.version)
        detectors = self._versus.get(key)
        if detectors is None:
            detectors = self._versus[key] = (self._drift(), *(self._drift(metric=m) for m in OUTPUTS))
        inputs = detectors[0].update(window, previous)
        outputs = [f for d in detectors[1:] for f in d.update(window, previous)]
        return inputs[:1] + outputs  # the inputs' model-level finding first

    @staticmethod
    def _integrity(window, inputs: Finding | None, findings, detector: str) -> Finding | None:
        output = next(
            (
                f
                for f in findings
                if f.alarm
                and ((f.feature is None and f.details.get("metric") in OUTPUTS) or f.details.get("source") == "labels")
            ),
            None,
        )
        if output is None or not _inputs_judged(window, inputs) or inputs.value >= inputs.threshold / 2:
            return None
        return Finding.on(
            window,
            kind=INTEGRITY,
            detector=detector,
            feature=None,
            statistic="output log statistic while inputs are stable",
            value=output.value,
            threshold=output.threshold,
            alarm=True,
            e_value=output.e_value,
            effect=output.effect,
            effect_size=output.effect_size,
            severity=CRITICAL,
            trace_ids=output.trace_ids,
            details={"input drift log statistic": inputs.value, "input drift threshold": inputs.threshold},
        )

    def summary(self, model: str, version: str) -> dict:
        return {label: _brief(f) for label, f in self.latest.get((model, version), {}).items()}


def _inputs_judged(window: ClosedWindow, inputs: Finding | None) -> bool:
    """Whether ``inputs`` judged this window's own inputs: a finding of this window, on feature values observed in
    it, and a window that is not partial (where a source's inputs may be missing while its outputs are not)."""
    return (
        inputs is not None
        and not window.partial
        and inputs.window_end_unix_nano == window.end_unix_nano
        and any(m == semconv.METRIC_FEATURE_VALUE and h.count for (m, _), h in window.histograms.items())
    )


def _brief(finding: Finding) -> dict:
    return {k: v for k, v in asdict(finding).items() if k not in ("model", "version", "kind", "detector")}


def as_dict(finding: Finding) -> dict:
    return asdict(finding)

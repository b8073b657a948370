"""The detectors compared, behind one interface: ``make(reference_rows) -> detector`` and
``detector.update(rows, calls=None) -> row or None``, the row (1-based, within the window) at which the model
alarmed. Every detector restarts after an alarm, as the analyzer restarts its DriftDetector; ``calls`` (the window's
calls, where the stream has them) lets otelml build the window as the SDK and the analyzer would.

To judge a changed DriftDetector on one stream, pass ``otelml(config)`` (or any such ``make``) to
``measure.null_rate`` and ``measure.delays``.
"""

from __future__ import annotations

import copy
import math

import numpy as np
from evaluate.detectors import Otelml, River, _ecdf_steps, adwin
from evaluate.streams import merged_window, names
from scipy import stats

from otelml.analyzer.detectors.drift import DriftConfig
from otelml.analyzer.references import from_data

A = round(math.exp(DriftConfig().log_threshold))  # 43,200 windows: one false alarm per 30 days of 60-s windows


class OtelmlModel:
    """otelml's DriftDetector on SDK histograms of each window, against a Reference built by the SDK's code."""

    def __init__(self, reference_rows: np.ndarray, config: DriftConfig | None = None):
        features = reference_rows.shape[1]
        reference = from_data("m", "1", names(features), reference_rows, "realistic evaluation")
        self.model = Otelml(reference, config)
        self.rng = np.random.default_rng(features)  # which replica and export each call goes to

    def update(self, rows: np.ndarray, calls: list | None = None) -> int | None:
        if calls is None:
            alarm = self.model.update(rows)
        else:
            alarm = self.model.update_window(merged_window(self.model.index, calls, self.rng))
        return len(rows) if alarm else None  # it decides at the end of the window


class AdwinModel:
    """One River ADWIN per feature, fed the reference and then the live values one by one; the model alarms when any
    feature's does, and then every feature restarts from the reference (River's own ADWIN would start empty).

    Values are scaled by the reference's range, ``(x - min) / (max - min)``: ADWIN's bound is for values in [0, 1],
    and on raw values of a wide range (hundreds or thousands) it raised many false alarms, a misuse rather than a
    property of ADWIN. Flags and values already in [0, 1] are unchanged. Values after the alarm, in the same
    window, are not fed (the model restarts there)."""

    def __init__(self, reference_rows: np.ndarray, delta: float):
        low, high = reference_rows.min(axis=0), reference_rows.max(axis=0)
        self.low, self.span = low, np.where(high > low, high - low, 1.0)
        self.fresh = River(adwin(delta), reference_rows.shape[1], warm=self.scaled(reference_rows)).detectors
        self.restart()

    def scaled(self, rows: np.ndarray) -> np.ndarray:
        return (rows - self.low) / self.span

    def restart(self) -> None:
        self.current = copy.deepcopy(self.fresh)
        self.steps = [_step(detector) for detector in self.current]

    def update(self, rows: np.ndarray, calls: list | None = None) -> int | None:
        stop, x = len(rows), self.scaled(rows)
        for j, step in enumerate(self.steps):
            for i, v in enumerate(x[:stop, j].tolist()):
                if step(v):
                    stop = i  # the other features need to be fed only up to here
                    break
        if stop == len(rows):
            return None
        self.restart()
        return stop + 1


def _step(detector):
    """``value -> fired`` of one River ADWIN: its Rust helper's update where River has one (five times faster than
    going through ``ADWIN.update`` and ``drift_detected``), else the public calls."""
    helper = getattr(detector, "_helper", None)
    if helper is not None and hasattr(helper, "update"):
        return helper.update

    def step(v):
        detector.update(v)
        return detector.drift_detected

    return step


class KsModel:
    """A two-sample KS test of every window against the reference, per feature, at p < 1/(A F): the p-value of
    ``evaluate.detectors.ks_pvalues`` (scipy's ``kstwo.sf(D, round(n m / (n + m)))``, ties counted exactly),
    compared through its critical D for the window's size, which is the same test and much faster."""

    def __init__(self, reference_rows: np.ndarray, a: float = A):
        self.sorted = np.sort(reference_rows, axis=0)
        self.level = 1 / (a * reference_rows.shape[1])
        self.critical = {}

    def update(self, rows: np.ndarray, calls: list | None = None) -> int | None:
        n, m = len(rows), len(self.sorted)
        if n not in self.critical:
            self.critical[n] = float(stats.kstwo.isf(self.level, round(n * m / (n + m))))
        return len(rows) if ks_statistics(self.sorted, rows).max() > self.critical[n] else None


def ks_statistics(ref_sorted: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The two-sample KS statistic of each column of ``rows`` against the sorted reference (ties counted)."""
    xs = np.sort(rows, axis=0).T  # features x rows: _ecdf_steps works along rows
    below_window, upto_window = _ecdf_steps(xs)
    m = ref_sorted.shape[0]
    d = np.empty(xs.shape[0])
    for f, column in enumerate(xs):
        below = np.searchsorted(ref_sorted[:, f], column, side="left") / m
        upto = np.searchsorted(ref_sorted[:, f], column, side="right") / m
        d[f] = max(np.abs(upto - upto_window[f]).max(), np.abs(below - below_window[f]).max())
    return d


def otelml(config: DriftConfig | None = None):
    """The maker of otelml's DriftDetector (its default DriftConfig(): window_s 60, A = 43,200)."""
    return lambda reference_rows: OtelmlModel(reference_rows, config)


def adwin_model(delta: float, bonferroni: bool = True):
    """The maker of ADWIN(delta / F) per feature (or ADWIN(delta) on each feature without ``bonferroni``)."""
    return lambda reference_rows: AdwinModel(reference_rows, delta / (reference_rows.shape[1] if bonferroni else 1))


def ks_model(a: float = A):
    return lambda reference_rows: KsModel(reference_rows, a)


def lowered(nats: float) -> DriftConfig:
    """otelml's default configuration with its threshold ln A lowered by ``nats``."""
    default = DriftConfig()
    return DriftConfig(false_alarm_days=default.false_alarm_days * math.exp(-nats))


DEFAULT = {  # the detectors of the tables, in their column order
    "otelml": otelml(),
    "ADWIN(0.002/F)": adwin_model(0.002),
    "ADWIN(1e-5/F)": adwin_model(1e-5),
    "KS p<1/(A F)": ks_model(),
}

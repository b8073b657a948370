"""The detectors compared, behind one interface (``Otelml``, ``River``, the oracle CUSUM, the per-window KS test), and
the delay of each on a stream."""

from __future__ import annotations

import numpy as np
from river import drift
from scipy import stats

from otelml.analyzer.detectors.drift import DriftConfig, DriftDetector
from otelml.analyzer.detectors.synthetic import window
from otelml.analyzer.references import Reference

from .streams import ROWS, A


def threshold_config(a: float) -> DriftConfig:
    return DriftConfig(false_alarm_days=a * 60.0 / 86400.0)


class Otelml:
    """otelml's DriftDetector on the histograms of each window; ``update`` returns whether the model alarms."""

    def __init__(self, reference: Reference, config: DriftConfig | None = None):
        self.detector = DriftDetector(config or DriftConfig())
        self.reference = reference
        self.index = 0
        self.last = []

    def update(self, rows: np.ndarray) -> bool:
        return self.update_window(window(self.index, features=rows))

    def update_window(self, closed) -> bool:
        self.index += 1
        self.last = self.detector.update(closed, self.reference)
        return any(f.alarm and f.feature is None for f in self.last)

    def named(self) -> list:
        return self.last[0].details.get("features", []) if self.last else []


class River:
    """One River detector per feature, fed value by value (warm-up values first, their alarms ignored)."""

    def __init__(self, make, features: int, warm: np.ndarray | None = None):
        self.detectors = [make() for _ in range(features)]
        if warm is not None:
            for det, column in zip(self.detectors, warm.T):
                for v in column.tolist():
                    det.update(v)

    def update(self, rows: np.ndarray) -> np.ndarray:
        """Per feature, the first row of this window at which its detector fired, or -1."""
        first = np.full(len(self.detectors), -1)
        for j, (det, column) in enumerate(zip(self.detectors, rows.T)):
            for i, v in enumerate(column.tolist()):
                det.update(v)
                if det.drift_detected and first[j] < 0:
                    first[j] = i
        return first


STRICT_DELTA = 1e-5  # an ADWIN with fewer false alarms than the default, for a comparison at equal false alarms
ADWINS = {"ADWIN": "adwin", "ADWIN strict": "adwin strict"}  # table 3's keys -> table 1's false-alarm counts
ADWIN_NAMES = {"ADWIN": "ADWIN(0.002)", "ADWIN strict": f"ADWIN({STRICT_DELTA:g})"}


def adwin(delta: float = 0.002):
    return lambda: drift.ADWIN(delta=delta)  # River's default delta is 0.002


ORACLE_SHIFT = 0.1  # the shift the oracle CUSUM knows
ORACLE_THRESHOLDS = np.arange(5.0, 14.01, 0.25)  # its candidate thresholds (log scale)
# otelml at other ln A than its 10.67 (other false_alarm_days), for comparisons at equal false alarms
SINGLE_SWEEP = np.array([8.5, 9.0, 9.25, 9.5, 10.0, 11.0, 12.0, 13.0])  # one feature (table 3)
MODEL_SWEEP = np.array([5.0, 6.0, 7.0, 8.5])  # 20 features, +0.1 sd on 3 of them (table 2b)
SWEEP_CHANGE = 1  # CHANGES index of +0.1 sd


class OracleCusum:
    """A Gaussian CUSUM that knows the data (mean 0, sd 1) and the shift (+ORACLE_SHIFT sd) and sees exact values,
    run at every threshold of ORACLE_THRESHOLDS at once: the best any detector could do on the +0.1 sd change
    (Moustakides 1986), for scale. ``update`` returns which thresholds alarmed (and restarts those)."""

    def __init__(self):
        self.w = np.zeros(ORACLE_THRESHOLDS.size)

    def update(self, values: np.ndarray) -> np.ndarray:
        step = ORACLE_SHIFT * float(values.sum()) - values.size * ORACLE_SHIFT**2 / 2
        self.w = np.maximum(self.w, 0.0) + step
        fired = self.w >= ORACLE_THRESHOLDS
        self.w[fired] = 0.0
        return fired


def kswin(seed: int = 0):
    return lambda: drift.KSWIN(seed=seed)  # River's defaults: alpha = 0.005, window 100, statistic window 30


def ks_pvalues(ref_sorted: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Two-sample KS p-values of each window against the reference, per feature (windows x features).

    ``x`` is windows x rows x features, ``ref_sorted`` rows x features. The statistic is exact, ties included; the
    p-value is scipy's asymptotic one, ``kstwo.sf(D, round(n m / (n + m)))``, which is what
    ``scipy.stats.ks_2samp`` uses for a reference of more than 10,000 rows.
    """
    windows, n, features = x.shape
    m = ref_sorted.shape[0]
    d = np.empty((windows, features))
    for f in range(features):
        xs = np.sort(x[:, :, f], axis=1)
        below_window, upto_window = _ecdf_steps(xs)
        below = np.searchsorted(ref_sorted[:, f], xs, side="left") / m
        upto = np.searchsorted(ref_sorted[:, f], xs, side="right") / m
        d[:, f] = np.maximum(np.abs(upto - upto_window), np.abs(below - below_window)).max(axis=1)
    return stats.kstwo.sf(d, round(n * m / (n + m)))


def _ecdf_steps(xs: np.ndarray):
    """For each value of each sorted row: the row's share of values below it and at or below it (ties counted)."""
    n = xs.shape[1]
    index = np.arange(n)
    first = np.ones(xs.shape, dtype=bool)
    first[:, 1:] = xs[:, 1:] != xs[:, :-1]
    last = np.ones(xs.shape, dtype=bool)
    last[:, :-1] = first[:, 1:]
    below = np.maximum.accumulate(np.where(first, index, 0), axis=1)
    upto = np.minimum.accumulate(np.where(last, index + 1, n)[:, ::-1], axis=1)[:, ::-1]
    return below / n, upto / n


def first_alarm_window(update, windows) -> int | None:
    for i, rows in enumerate(windows):
        if update(rows):
            return i
    return None


def river_delay(detectors: River, post: np.ndarray) -> int | None:
    """Rows from the change to the first alarm of a value-by-value detector (``post``: windows x rows x features)."""
    for w, rows in enumerate(post):
        first = detectors.update(rows)
        if (first >= 0).any():
            return w * ROWS + int(first[first >= 0].min()) + 1
    return None


def otelml_delay(reference, pre: np.ndarray, post: np.ndarray, a: float = A) -> int | None:
    """Rows from the change to otelml's first alarm at threshold ``ln a`` (``pre``, ``post``: windows of rows)."""
    model = Otelml(reference, threshold_config(a))
    for rows in pre:
        model.update(rows)
    at = first_alarm_window(model.update, post)
    return None if at is None else (at + 1) * ROWS


def oracle_delays(pre: np.ndarray, post: np.ndarray) -> list:
    """The oracle CUSUM's delay in rows at each threshold (None: not within the horizon)."""
    oracle = OracleCusum()
    for rows in pre:
        oracle.update(rows[:, 0])
    delays = [None] * ORACLE_THRESHOLDS.size
    for w, rows in enumerate(post):
        for t in np.flatnonzero(oracle.update(rows[:, 0])):
            if delays[t] is None:
                delays[t] = (w + 1) * ROWS
        if all(d is not None for d in delays):
            break
    return delays

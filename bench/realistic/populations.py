"""Populations to draw references and live windows from, and the changes made to them.

A population is either a real data set's rows (``Empirical``: rows are drawn with replacement, so rare values that a
small reference misses do turn up live) or independent generated columns (``Independent``). A change moves the mean
of chosen features by a number of standard deviations, or their spread by a ratio: on few-valued features by
exponential tilting of the feature's own distribution (``p_k`` proportional to ``p_k exp(theta x_k)``, no new values
appear), on continuous ones by adding a constant (or scaling around the mean).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import optimize

FEW_VALUES = 20  # a feature with at most this many values, or ...
TOP_SHARE = 0.10  # ... whose most common value holds at least this share of rows, is few-valued (tilted)
ZERO_INFLATED = 0.5  # more than this share of zeros


@dataclasses.dataclass(frozen=True)
class Change:
    label: str
    kind: str  # "mean": shift by ``size`` sd; "sd": spread times ``size``
    size: float
    features: int  # how many features change
    eligible: str  # which features may change: "any", "zero-inflated" (more than half zeros), "spread" (3+ values)
    horizon: int = 1  # times the plan's horizon (small changes take longer)


@dataclasses.dataclass(frozen=True)
class FeatureInfo:
    """What a change needs to know about one feature of a population."""

    values: int  # distinct values
    few_valued: bool
    zero_share: float
    mean: float
    sd: float

    def eligible(self, which: str) -> bool:
        if self.values < 2 or self.sd == 0:
            return False
        if which == "zero-inflated":
            return self.zero_share > ZERO_INFLATED
        if which == "spread":
            return self.values >= 3
        return True


def describe(x: np.ndarray, weights: np.ndarray | None = None) -> FeatureInfo:
    """FeatureInfo of one column of rows (with row weights, for an empirical population)."""
    values, inverse = np.unique(x, return_inverse=True)
    w = np.full(x.size, 1 / x.size) if weights is None else weights
    probs = np.bincount(inverse, weights=w, minlength=values.size)
    mean = float(probs @ values)
    sd = float(np.sqrt(max(probs @ (values - mean) ** 2, 0.0)))
    few = values.size <= FEW_VALUES or probs.max() >= TOP_SHARE
    return FeatureInfo(int(values.size), bool(few), float(probs[values == 0].sum()), mean, sd)


# --- exponential tilting ------------------------------------------------------------------------------------------
def _tilted(probs: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    w = probs * np.exp(exponent - exponent.max())
    return w / w.sum()


def tilt_mean(values: np.ndarray, probs: np.ndarray, target: float, base: np.ndarray | None = None) -> float | None:
    """The theta for which ``probs * exp(theta * values)`` (times ``exp(base)``) has mean ``target``; None where no
    tilt gets there (the target at or beyond the largest or smallest value)."""
    base = np.zeros(values.size) if base is None else base
    support = values[probs > 0]
    if not support.min() < target < support.max():
        return None
    span = float(np.ptp(support))

    def gap(theta):
        return float(_tilted(probs, base + theta * values) @ values) - target

    low, high = -1.0 / span, 1.0 / span
    for _ in range(60):
        if gap(low) <= 0 <= gap(high):
            return optimize.brentq(gap, low, high, xtol=1e-12 / span)
        low, high = low * 2, high * 2
    return None


def tilt_spread(values: np.ndarray, probs: np.ndarray, ratio: float) -> np.ndarray | None:
    """Probabilities ``probs * exp(a x + b (x - mean)^2)`` with the same mean and ``ratio`` times the sd, or None
    where no such tilt exists (a spread beyond what these values allow)."""
    mean = float(probs @ values)
    var = float(probs @ (values - mean) ** 2)
    centred = (values - mean) / np.sqrt(var)

    def gaps(ab):
        p = _tilted(probs, ab[0] * centred + ab[1] * centred**2)
        m = float(p @ centred)
        return [m, float(p @ (centred - m) ** 2) / ratio**2 - 1]

    sign = 1 if ratio > 1 else -1
    for start in (0.01, 0.0, 0.001, 0.05, 0.2):  # the solver needs a start near the answer on long tails
        solution = optimize.root(gaps, [0.0, sign * start], method="hybr")
        if solution.success and max(abs(g) for g in gaps(solution.x)) < 1e-6:
            return _tilted(probs, solution.x[0] * centred + solution.x[1] * centred**2)
    return None


# --- populations --------------------------------------------------------------------------------------------------
class Independent:
    """Generated features, independent of each other: each a discrete distribution (values, probabilities) or a
    normal one (values None, probabilities (mean, sd)). Columns in ``zero_in_reference`` are all zeros in every
    reference (a feature constant in the reference but not in the population)."""

    def __init__(self, columns: list, zero_in_reference: tuple = ()):
        self.columns = columns
        self.zero_in_reference = zero_in_reference
        self.features = len(columns)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        out = np.empty((n, self.features))
        for j, (values, probs) in enumerate(self.columns):
            if values is None:
                out[:, j] = rng.normal(probs[0], probs[1], n)
            else:
                out[:, j] = values[np.searchsorted(np.cumsum(probs), rng.random(n) * probs.sum(), side="right")]
        return out

    def reference(self, rng: np.random.Generator, n: int) -> np.ndarray:
        out = self.sample(rng, n)
        out[:, list(self.zero_in_reference)] = 0.0
        return out

    def info(self) -> list:
        infos = []
        for values, probs in self.columns:
            if values is None:
                infos.append(FeatureInfo(10**9, False, 0.0, float(probs[0]), float(probs[1])))
            else:
                mean = float(probs @ values)
                sd = float(np.sqrt(probs @ (values - mean) ** 2))
                few = values.size <= FEW_VALUES or probs.max() >= TOP_SHARE
                infos.append(FeatureInfo(int(values.size), few, float(probs[values == 0].sum()), mean, sd))
        return infos

    def changed(self, change: Change, chosen: list) -> Independent | None:
        columns = list(self.columns)
        for j in chosen:
            values, probs = columns[j]
            if values is None:
                mean, sd = probs
                columns[j] = (
                    None,
                    (mean + change.size * sd, sd) if change.kind == "mean" else (mean, sd * change.size),
                )
                continue
            if change.kind == "mean":
                info = self.info()[j]
                theta = tilt_mean(values, probs, info.mean + change.size * info.sd)
                if theta is None:
                    return None
                columns[j] = (values, _tilted(probs, theta * values))
            else:
                new = tilt_spread(values, probs, change.size)
                if new is None:
                    return None
                columns[j] = (values, new)
        return Independent(columns)


class Empirical:
    """The rows of a real data set as a population: rows are drawn with replacement, with probabilities
    ``weights`` (a tilt), and continuous columns may be moved: ``x -> mean + (x - mean) * scale + offset``."""

    def __init__(self, rows: np.ndarray, weights=None, offsets=None, scales=None):
        self.rows = rows
        self.features = rows.shape[1]
        self.weights = weights
        self.offsets = offsets
        self.scales = scales
        self._info = None

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.weights is None:
            index = rng.integers(0, len(self.rows), n)
        else:
            index = np.searchsorted(np.cumsum(self.weights), rng.random(n), side="right").clip(0, len(self.rows) - 1)
        x = self.rows[index]
        if self.offsets is not None:
            means = self.rows.mean(axis=0)
            x = means + (x - means) * self.scales + self.offsets
        return x

    reference = sample

    def info(self) -> list:
        if self._info is None:
            self._info = [describe(self.rows[:, j], self.weights) for j in range(self.features)]
        return self._info

    def changed(self, change: Change, chosen: list) -> Empirical | None:
        info = self.info()
        few = [j for j in chosen if info[j].few_valued]
        offsets, scales = np.zeros(self.features), np.ones(self.features)
        for j in chosen:
            if j in few:
                continue
            if change.kind == "mean":
                offsets[j] = change.size * info[j].sd
            else:
                scales[j] = change.size
        weights = np.full(len(self.rows), 1 / len(self.rows))
        if change.kind == "mean" and few:
            # Coordinate-wise: each feature's theta solved with the others fixed, until every mean is on target.
            thetas = np.zeros(len(few))
            for _ in range(20):
                for i, j in enumerate(few):
                    base = self.rows[:, few] @ thetas - thetas[i] * self.rows[:, j]
                    theta = tilt_mean(self.rows[:, j], weights, info[j].mean + change.size * info[j].sd, base)
                    if theta is None:
                        return None
                    thetas[i] = theta
                tilted = _tilted(weights, self.rows[:, few] @ thetas)
                if all(abs(tilted @ self.rows[:, j] - info[j].mean - change.size * info[j].sd) < 1e-6 for j in few):
                    break
            else:
                return None  # no joint tilt moves every feature's mean as asked
            weights = tilted
        elif few:
            for j in few:  # one feature at a time (the spread change is made on one)
                values, inverse = np.unique(self.rows[:, j], return_inverse=True)
                probs = np.bincount(inverse, weights=weights, minlength=values.size)
                new = tilt_spread(values, probs, change.size)
                if new is None:
                    return None
                weights = weights * (new / probs)[inverse]
        return Empirical(self.rows, weights / weights.sum(), offsets, scales)


def choose(info: list, change: Change, seed: int) -> list | None:
    """The features a change moves for ``seed``, spread over the eligible ones from seed to seed: as many as the
    change asks for, or all the eligible ones where there are fewer (None where there is none)."""
    eligible = [j for j, f in enumerate(info) if f.eligible(change.eligible)]
    if not eligible:
        return None
    count = min(change.features, len(eligible))  # as many as there are, up to the number asked for
    start = (seed * count) % len(eligible)
    return [eligible[(start + i) % len(eligible)] for i in range(count)]

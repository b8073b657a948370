"""Effect sizes between a live and a reference histogram, computed on their common layout, bucket for bucket.

They describe how large a change is; they are not tests (their null distributions depend on sample sizes: PSI at
0.1 is crossed by chance in most windows of 200 rows). Alarms come from the e-detectors; these go in the findings.

- ``ks``: the two-sample Kolmogorov-Smirnov distance at bucket edges (never above the raw-data distance);
- ``psi``: population stability index, with half-count smoothing of empty buckets;
- ``js``: Jensen-Shannon divergence in nats;
- ``wasserstein_sd``: W1 over bucket midpoints, divided by the reference's standard deviation (a location shift of
  d sd reads as about d), or by the pooled sd of reference and live where that is larger, so that a constant or
  nearly constant reference gives a finite effect (a reference of zeros against a window with one 3 in 200 rows:
  0.1, not infinity); two different constants are measured in the sd of their mixture (0 against 3: 2).

Example:
    >>> import numpy as np
    >>> from otelml.histogram import from_values
    >>> rng = np.random.default_rng(0)
    >>> ref, live = from_values(rng.normal(size=50_000)), from_values(rng.normal(0.5, 1, size=50_000))
    >>> {k: round(v, 1) for k, v in all_distances(live, ref).items()}
    {'ks': 0.2, 'psi': 0.3, 'js': 0.0, 'wasserstein_sd': 0.5}
"""

from __future__ import annotations

import math

import numpy as np

from ... import histogram


def _common(live: histogram.ExpHistogram, reference: histogram.ExpHistogram):
    """Counts of both on the union of their buckets, in order along the line, and the buckets' midpoints."""
    live, reference = histogram.align(live, reference)
    keys_l, counts_l = histogram.positions(live)
    keys_r, counts_r = histogram.positions(reference)
    keys = np.union1d(keys_l, keys_r)
    a = np.zeros(keys.size)
    b = np.zeros(keys.size)
    a[np.searchsorted(keys, keys_l)] = counts_l
    b[np.searchsorted(keys, keys_r)] = counts_r
    return a, b, midpoints(keys, live, reference)


def midpoints(keys, *hists):
    """Midpoint of each bucket key, clipped to the data's range (bucket bounds past it, or inf, mean nothing)."""
    low, high = min(h.min for h in hists), max(h.max for h in hists)
    lower, upper = histogram.key_bounds(keys, hists[0].scale, hists[0].zero_threshold)
    return np.clip(lower, low, high) / 2 + np.clip(upper, low, high) / 2  # halves first: no overflow at 1e308


def ks(live, reference) -> float:
    a, b, _ = _common(live, reference)
    return float(np.max(np.abs(np.cumsum(a) / a.sum() - np.cumsum(b) / b.sum())))


def psi(live, reference) -> float:
    a, b, _ = _common(live, reference)
    p, q = (a + 0.5) / (a.sum() + 0.5 * a.size), (b + 0.5) / (b.sum() + 0.5 * b.size)
    return float(np.sum((p - q) * np.log(p / q)))


def js(live, reference) -> float:
    a, b, _ = _common(live, reference)
    p, q = a / a.sum(), b / b.sum()
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum()
    return float((kl_p + kl_q) / 2)


def wasserstein_sd(live, reference) -> float:
    a, b, mid = _common(live, reference)
    # The ratio is free of the unit, so measure in units of the largest value: squares of values near 1e-200 were 0
    # (a division by zero) and near 1e200 infinite (NaN), both sent by the fuzzer
    x = mid / (float(np.max(np.abs(mid))) or 1.0)
    cdf_a, cdf_b = np.cumsum(a) / a.sum(), np.cumsum(b) / b.sum()
    w1 = float(np.sum(np.abs(cdf_a - cdf_b)[:-1] * np.diff(x)))
    if w1 == 0:
        return 0.0
    # The unit: the reference's sd, or the pooled sd of the two where that is larger (a reference that is constant,
    # or nearly, would make any change look infinitely large), or, for two constants, the sd of their mixture
    p, q = a / a.sum(), b / b.sum()
    sd = max(math.sqrt(_var(q, x)), math.sqrt((_var(p, x) + _var(q, x)) / 2)) or math.sqrt(_var((p + q) / 2, x))
    return w1 / sd if sd > 0 else 0.0


def _var(weights, values) -> float:
    mean = np.sum(weights * values)
    return float(np.sum(weights * (values - mean) ** 2))


def all_distances(live, reference) -> dict:
    return {
        name: fn(live, reference)
        for name, fn in (("ks", ks), ("psi", psi), ("js", js), ("wasserstein_sd", wasserstein_sd))
    }

"""Values at the edges of what decoding lets through, as the fuzzer found them, never make a detector raise."""

import dataclasses
import math

import numpy as np
import pytest

from otelml import histogram
from otelml.analyzer.detectors.edetector import FeatureEDetector
from otelml.analyzer.detectors.sequential import RateIncrease


def test_a_baseline_rate_of_one_leaves_nothing_to_bet_on_and_other_rates_still_alarm():
    """A baseline in which every call failed gave an upper bound of 1.0, and RateIncrease refused it ("p0 must lie
    in [0, 1)"), failing the detector at every window."""
    full = RateIncrease(1.0)
    assert all(full.update(100, 100) == 0.0 for _ in range(50))
    half = RateIncrease(0.5)
    assert max(half.update(90, 100) for _ in range(5)) > math.log(1e4)


def test_a_reference_whose_zero_bucket_reaches_infinity_is_usable():
    """The top bucket's upper bound is 2**1024 (infinite); a histogram whose zero bucket was folded up to it made the
    e-detector compute an infinite bucket index (OverflowError at every window of that model)."""
    values = np.random.default_rng(0).lognormal(0, 1, (1000, 1))
    reference = histogram.from_columns(values)[0]
    detector = FeatureEDetector(dataclasses.replace(reference, zero_threshold=math.inf))
    assert math.isfinite(detector.update(histogram.from_columns(values[:100] * 3)[0]))


@pytest.mark.parametrize("low, high", [(1e-200, 3e-200), (1e200, 3e200), (-1e308, 1e308), (1.0, 3.0)])
def test_the_drift_effect_size_is_the_same_at_any_magnitude(low, high):
    """Values near 1e-200 made the drift detector's effect size divide by zero (their squares are 0), and values near
    1e200 gave NaN (found by the fuzz run, the detector failed). The effect is free of the unit, so it is the same
    at every magnitude."""
    from otelml.analyzer.detectors.distances import wasserstein_sd

    reference = histogram.from_values(np.full(100, low))
    live = histogram.from_values(np.r_[np.full(50, low), np.full(50, high)])
    with np.errstate(all="raise"):
        assert wasserstein_sd(reference, live) == pytest.approx(1.0)
        assert wasserstein_sd(live, reference) == pytest.approx(2**0.5)

"""Values at the edges of what decoding lets through, as the fuzzer found them, never make a detector raise."""

import dataclasses
import math

import numpy as np

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

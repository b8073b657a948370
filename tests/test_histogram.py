"""The shared exponential histogram: exact bucket membership, OTLP index semantics, merging, resolution."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics._internal.exponential_histogram.mapping.exponent_mapping import ExponentMapping
from opentelemetry.sdk.metrics._internal.exponential_histogram.mapping.logarithm_mapping import LogarithmMapping
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View

from otelml import histogram as H

finite = st.floats(min_value=-1e300, max_value=1e300, width=64)  # sums stay finite
anything = st.floats(width=64)


def recount(h: H.ExpHistogram, values: np.ndarray) -> np.ndarray:
    """Count ``values`` into ``h``'s own buckets by their bounds (upper-inclusive, zero bucket closed).

    Subnormal magnitudes belong to the lowest normal bucket, as OpenTelemetry's mappings define."""
    lower, upper, _ = h.buckets()
    counts = np.zeros(lower.size, dtype=np.int64)
    tiny = np.finfo(np.float64).tiny
    for v in values[np.isfinite(values)]:
        if 0 < abs(v) < tiny and abs(v) > h.zero_threshold:
            v = math.copysign(tiny, v)
        if abs(v) <= h.zero_threshold:
            hits = np.flatnonzero((lower <= v) & (v <= upper) & (np.abs(lower) == np.abs(upper)))
        elif v > 0:
            hits = np.flatnonzero((lower < v) & (v <= upper))
        else:
            hits = np.flatnonzero((lower <= v) & (v < upper))
        assert hits.size == 1, f"value {v!r} lies in {hits.size} buckets"
        counts[hits[0]] += 1
    return counts


def assert_consistent(h: H.ExpHistogram, values: np.ndarray, layout=H.DEFAULT_LAYOUT):
    fin = values[np.isfinite(values)]
    assert h.count == fin.size
    assert h.zero_count + int(h.positive.sum()) + int(h.negative.sum()) == fin.size
    assert h.positive.size <= layout.max_size and h.negative.size <= layout.max_size
    assert H.MIN_SCALE <= h.scale <= layout.max_scale
    if fin.size:
        assert h.min == fin.min() and h.max == fin.max()
        with np.errstate(over="ignore"):
            expected, scale = float(fin.sum()), float(np.abs(fin).sum())
        assert math.isclose(h.sum, expected, rel_tol=1e-9, abs_tol=1e-9 * scale) or not math.isfinite(expected)
        _, _, counts = h.buckets()
        np.testing.assert_array_equal(recount(h, values), counts)


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(0, 300), elements=anything))
def test_every_value_lies_in_the_bucket_it_is_counted_in(values):
    assert_consistent(H.from_values(values), values)


@settings(max_examples=100, deadline=None)
@given(st.lists(arrays(np.float64, st.integers(0, 80), elements=finite), min_size=1, max_size=6))
def test_merging_is_exact_for_the_merged_layout(parts):
    merged = H.merge_all([H.from_values(p) for p in parts])
    assert_consistent(merged, np.concatenate(parts))


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 60), st.integers(1, 6)), elements=anything))
def test_columns_are_independent(matrix):
    together = H.from_columns(matrix)
    for column, h in enumerate(together):
        assert h == H.from_values(matrix[:, column])


@pytest.mark.parametrize("scale", [-3, 0, 3, 8, 15, 20])
def test_bucket_indices_match_the_opentelemetry_sdk_mapping(scale):
    """Same index semantics as OTLP consumers: bucket i holds (base**i, base**(i+1)]."""
    rng = np.random.default_rng(scale + 10)
    span = min(40.0, 50_000 / 2.0**scale)  # octaves, so the dense bucket array stays small
    powers = 2.0 ** np.arange(-int(span // 2), int(span // 2) + 1)
    values = np.concatenate([2.0 ** rng.uniform(-span / 2, span / 2, 3000), powers, [1.0]])
    layout = H.Layout(max_size=100_000, max_scale=scale, max_fold_fraction=0.0)
    h = H.from_values(values, layout)
    assert h.scale == scale
    mapping = LogarithmMapping(scale) if scale > 0 else ExponentMapping(scale)
    expected = np.bincount([mapping.map_to_index(float(v)) - h.positive_offset for v in values])
    np.testing.assert_array_equal(h.positive, expected)


def test_nonfinite_values_are_left_out():
    h = H.from_values(np.array([1.0, np.nan, np.inf, -np.inf, -2.0]))
    assert (h.count, int(h.positive.sum()), int(h.negative.sum()), h.zero_count) == (2, 1, 1, 0)
    assert (h.min, h.max, h.sum) == (-2.0, 1.0, -1.0)


def test_empty_and_all_zero_inputs():
    assert H.from_values(np.array([])).count == 0
    zeros = H.from_values(np.zeros(5))
    assert (zeros.count, zeros.zero_count, zeros.positive.size) == (5, 5, 0)
    assert H.merge_all([]).count == 0


def test_invalid_layouts_and_shapes_are_rejected():
    with pytest.raises(ValueError, match="max_size"):
        H.Layout(max_size=1)
    with pytest.raises(ValueError, match="max_scale"):
        H.Layout(max_scale=21)
    with pytest.raises(ValueError, match="two-dimensional"):
        H.from_columns(np.zeros(3))


def ks_distance(a: H.ExpHistogram, b: H.ExpHistogram) -> float:
    """Two-sample KS distance on binned data, both histograms brought to their common layout."""
    a, b = H.align(a, b)
    edges = np.unique(np.concatenate([a.buckets()[1], b.buckets()[1]]))

    def cdf(h):
        _, upper, counts = h.buckets()
        below = np.concatenate([[0], np.cumsum(counts)])
        return below[np.searchsorted(upper, edges, side="right")] / h.count

    return float(np.max(np.abs(cdf(a) - cdf(b))))


def contaminated(rng, mean, n=20_000):
    """``mean +/- 1`` that now and then holds 0 or a tiny value (1% each)."""
    x = rng.normal(mean, 1.0, n)
    picks = rng.permutation(n)
    x[picks[: n // 100]] = 0.0
    x[picks[n // 100 : n // 50]] = 1e-9
    return x


def test_a_small_shift_stays_visible_in_a_wide_range_feature():
    """A 0.2 sd shift of 1000 +/- 1 with stray zeros and tiny values: population KS distance 0.078."""
    shifted, same = [], []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        base = H.from_values(contaminated(rng, 1000.0))
        shifted.append(ks_distance(base, H.from_values(contaminated(rng, 1000.2))))
        same.append(ks_distance(base, H.from_values(contaminated(rng, 1000.0))))
    assert min(shifted) > 0.05, shifted
    assert max(same) < 0.03, same


def test_a_plain_exponential_histogram_loses_that_shift():
    """The OpenTelemetry SDK's own aggregation (160 buckets) falls to a coarse scale on the same data."""
    rng = np.random.default_rng(0)
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        metric_readers=[reader], views=[View(instrument_name="*", aggregation=ExponentialBucketHistogramAggregation())]
    )
    hist = provider.get_meter("t").create_histogram("x")
    for v in contaminated(rng, 1000.0, 5000):
        hist.record(float(v))
    point = reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics[0].data.data_points[0]
    ours = H.from_values(contaminated(rng, 1000.0, 5000))
    assert point.scale <= 2 < 10 <= ours.scale
    provider.shutdown()


def test_a_merge_never_spans_more_than_max_size_buckets_whatever_the_indices():
    """A bucket at index -2^31 (beyond the doubles, refused at decode) merged with ordinary data used to allocate
    2^31 buckets when folding it into the zero bucket fell short; the merge now stays within the layout."""
    rng = np.random.default_rng(0)
    evil = H.ExpHistogram(
        scale=20, zero_threshold=0.0, zero_count=0, positive_offset=-(2**31), positive=np.array([1, 1]),
        negative_offset=0, negative=np.zeros(0, dtype=np.int64), count=2, sum=0.0,
    )  # fmt: skip
    merged = H.merge_all([H.from_values(rng.normal(size=50)) for _ in range(63)] + [evil])
    assert merged.count == 63 * 50 + 2
    assert merged.positive.size <= H.DEFAULT_LAYOUT.max_size
    assert merged.negative.size <= H.DEFAULT_LAYOUT.max_size

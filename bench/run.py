"""otelml SDK benchmark: ratios measured side by side in one run.

    python bench/run.py            # full run (about a minute)
    python bench/run.py --quick    # a few rounds, to check that it runs

Every comparison alternates its two sides round by round and reports the median per-call time of each side and
their ratio, because absolute times on a shared 2-core machine are noisy. Measured:

1. a decorated single-row call (20 features, class probabilities out) against a bare OpenTelemetry span with
   4 attributes, both on the same SDK tracer provider; goal: at most 2x;
2. a decorated 10,000 x 20 batch against the numpy floor (bucket indices and one bincount for the same values);
   goal: at most 3x;
3. the same batch recorded value by value with the SDK's ``Histogram.record()`` (exponential aggregation) against
   the decorated batch; goal: at least 100x slower.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import otelml
from otelml.testing import OTLPSink

FEATURES = 20
BATCH = 10_000


class DiscardSpans(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


def per_call(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def compare(a, b, calls_a: int, calls_b: int, rounds: int):
    """Median per-call seconds of ``a`` and ``b``, alternating rounds."""
    times_a, times_b = [], []
    for _ in range(rounds):
        times_a.append(per_call(a, calls_a))
        times_b.append(per_call(b, calls_b))
    return statistics.median(times_a), statistics.median(times_b)


def numpy_floor(x: np.ndarray, scale: int = 3):
    """Bucket indices and one bincount for all values: the least any exponential-histogram aggregation must do."""
    index = np.ceil(np.log2(np.abs(x)) * 2.0**scale).astype(np.int64) - 1
    keys = index - index.min(axis=0) + np.arange(x.shape[1]) * 4096
    return np.bincount(keys.ravel())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few short rounds only")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 15
    scale = 0.1 if args.quick else 1.0

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DiscardSpans(), max_queue_size=100_000))
    tracer = provider.get_tracer("bench")
    rng = np.random.default_rng(0)
    row = rng.normal(size=FEATURES)
    proba_row = np.array([[0.3, 0.7]])
    batch = rng.normal(size=(BATCH, FEATURES))
    proba_batch = np.column_stack([np.full(BATCH, 0.3), np.full(BATCH, 0.7)])
    attributes = {"a": "model", "b": "1", "c": "classification", "d": 1}

    results = []
    with OTLPSink() as sink:
        otelml.configure(endpoint=sink.http_endpoint, tracer_provider=provider, export_interval_s=5.0)

        @otelml.monitor(model="bench", version="1")
        def predict_row(x):
            return proba_row

        @otelml.monitor(model="bench-batch", version="1")
        def predict_batch(x):
            return proba_batch

        def bare_span():
            with tracer.start_as_current_span("predict", attributes=attributes):
                pass

        calls = int(20_000 * scale)
        decorated, bare = compare(lambda: predict_row(row), bare_span, calls, calls, rounds)
        results.append(
            ("single row, 20 features: decorated / bare span", decorated, bare, "<= 2", decorated / bare <= 2)
        )

        batch_calls = max(2, int(30 * scale))
        decorated_batch, floor = compare(
            lambda: predict_batch(batch), lambda: numpy_floor(batch), batch_calls, batch_calls, rounds
        )
        results.append(
            ("10k x 20 batch: decorated / numpy floor", decorated_batch, floor, "<= 3", decorated_batch / floor <= 3)
        )

        reader = InMemoryMetricReader()
        meters = MeterProvider(
            metric_readers=[reader],
            views=[View(instrument_name="*", aggregation=ExponentialBucketHistogramAggregation())],
        )
        histogram = meters.get_meter("bench").create_histogram("feature")
        names = [f"x{i}" for i in range(FEATURES)]
        values = np.abs(batch)  # record() drops negative values
        rows = BATCH if not args.quick else 500

        def value_by_value():
            for r in range(rows):
                for c in range(FEATURES):
                    histogram.record(values[r, c], attributes={"feature": names[c]})

        one_by_one = per_call(value_by_value, 1) * BATCH / rows
        results.append(
            (
                "10k x 20 batch: record() value by value / decorated",
                one_by_one,
                decorated_batch,
                ">= 100",
                one_by_one / decorated_batch >= 100,
            )
        )
        otelml.shutdown()
        meters.shutdown()
    provider.shutdown()

    print(f"otelml {otelml.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}, rounds {rounds}")
    print(f"{'comparison':55s} {'A':>12s} {'B':>12s} {'A/B':>8s} {'goal':>7s}")
    for name, a, b, goal, ok in results:
        print(f"{name:55s} {a * 1e6:10.1f}us {b * 1e6:10.1f}us {a / b:8.2f} {goal:>7s} {'ok' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

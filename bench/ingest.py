"""Analyzer ingest benchmark: exponential-histogram data points per second on one core, against a decode-only floor.

    python bench/ingest.py            # full run
    python bench/ingest.py --quick    # a few rounds, to check that it runs

The request is what the SDK sends: 50 model versions, each with 20 feature histograms and its latency, confidence
and margin histograms and counters (one export interval of 10,000-row batches), encoded by otelml's own encoder.

- decode-only floor: ``ExportMetricsServiceRequest.FromString`` plus reading every field of every point into Python
  (attributes, times, count, sum, scale, zero count and threshold, both bucket arrays) -- the least any Python
  consumer of the request must do;
- ingest: what the analyzer does per request, minus the network: decode and validate, journal to SQLite, turn points
  into stream deltas, and add them to event-time windows (``Analyzer.ingest``).

Both sides alternate round by round; medians are reported. Goals: at least 50,000 points/s, at most 3x the floor.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import numpy as np
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from otelml import semconv
from otelml.analyzer import Analyzer, AnalyzerConfig, decode_metrics
from otelml.sdk import encode
from otelml.sdk.outputs import read_outputs
from otelml.sdk.recorder import Registry

MODELS, FEATURES, ROWS = 50, 20, 10_000


def build_request(now_ns: int) -> bytes:
    rng = np.random.default_rng(0)
    registry = Registry()
    for m in range(MODELS):
        recorder = registry.recorder(f"model-{m}", "1", semconv.TASK_CLASSIFICATION)
        names = tuple(f"f{i}" for i in range(FEATURES))
        proba = rng.dirichlet([1, 1], size=ROWS)
        outputs = read_outputs(proba, "proba", semconv.TASK_CLASSIFICATION, None)
        recorder.record(names, rng.normal(size=(ROWS, FEATURES)), {}, outputs, 0.01, None, None)
    snapshots = registry.collect()
    for snap in snapshots:
        snap.start_unix_nano, snap.end_unix_nano = now_ns - 10**10, now_ns
    request = encode.encode({"service.name": "bench"}, "bench", snapshots)
    return request.SerializeToString()


def decode_floor(body: bytes) -> int:
    request = ExportMetricsServiceRequest.FromString(body)
    points = 0
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                for p in getattr(metric, kind).data_points:
                    read = [
                        {kv.key: kv.value.string_value for kv in p.attributes},
                        p.start_time_unix_nano,
                        p.time_unix_nano,
                    ]
                    if kind == "exponential_histogram":
                        read += [
                            p.count,
                            p.sum,
                            p.scale,
                            p.zero_count,
                            p.zero_threshold,
                            p.positive.offset,
                            list(p.positive.bucket_counts),
                            p.negative.offset,
                            list(p.negative.bucket_counts),
                        ]
                    else:
                        read.append(p.as_int)
                    points += len(read) > 0
    return points


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 11
    body = build_request(time.time_ns())
    points = decode_floor(body)
    histograms = len(decode_metrics(body, "application/x-protobuf").points)

    with tempfile.TemporaryDirectory() as state_dir:
        analyzer = Analyzer(AnalyzerConfig(state_dir=state_dir, warmup=10**9))
        floor_times, ingest_times = [], []
        for _ in range(rounds):
            start = time.perf_counter()
            decode_floor(body)
            floor_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            applied = analyzer.ingest(
                "metrics", "application/x-protobuf", body, decode_metrics(body, "application/x-protobuf")
            )
            ingest_times.append(time.perf_counter() - start)
            assert applied.rejected == 0 and applied.accepted == points, applied.errors
        analyzer.close()

    floor, ingest = statistics.median(floor_times), statistics.median(ingest_times)
    rate = points / ingest
    print(f"request: {len(body) / 1e6:.2f} MB, {points} data points ({histograms} decoded), rounds {rounds}")
    print(f"{'decode-only floor':22s} {floor * 1e3:9.2f} ms  {points / floor:12,.0f} points/s")
    print(
        f"{'analyzer ingest':22s} {ingest * 1e3:9.2f} ms  {rate:12,.0f} points/s  "
        f"(goal >= 50,000: {'ok' if rate >= 50_000 else 'MISSED'})"
    )
    print(f"{'ingest / floor':22s} {ingest / floor:9.2f}x     (goal <= 3: {'ok' if ingest / floor <= 3 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

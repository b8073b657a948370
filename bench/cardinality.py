"""Cardinality flood against a real analyzer process: are memory and time bounded, and do new models still get in?

One command::

    .venv/bin/python bench/cardinality.py            # 1,000,000 distinct names of each kind
    .venv/bin/python bench/cardinality.py --names 200000

A real ``otelml analyzer`` (small caps from a config file, 60-s windows on the data's own clock, no lateness) gets,
over OTLP/HTTP protobuf, in requests of ``--batch`` points:

1. a known model ("steady") that sends its predicted-label mix every window throughout;
2. ``--names`` distinct names of every kind: model names (each sent twice, in two requests, so each gets in by
   eviction, the worst case for the model cap), feature names of one model, category values of one feature of
   another, predicted-label values of a third, and sources (``service.instance.id``, one request each, so a
   fiftieth of ``--names``) of a fourth;
3. then a new legitimate model ("newcomer") with a steady label mix for the baseline, then a changed mix (a fault),
   while once-sent model names keep flooding.

It reports the analyzer's peak RSS (sampled from /proc), request latency (median, p99, max), the wall time from the
newcomer's first request to its first accepted point and to its first label-mix alarm, and /api/health's counts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from otelml import semconv

S = 10**9
WINDOW_S = 60
MIX = {"a": 240, "b": 120, "c": 40}  # a baseline label mix, per window
FAULT = {"a": 40, "b": 120, "c": 240}  # the same labels, the mix turned around


def sums_request(points, instance: str = "bench") -> bytes:
    """An OTLP metrics request of delta monotonic sums: ``points`` are ``(model, metric, attributes, value, end_ns)``
    (version "1", each over the second before ``end_ns``), all from the source ``instance``; grouped by metric."""
    by_metric: dict = {}
    for model, metric, attributes, value, end in points:
        pairs = {semconv.MODEL_NAME: model, semconv.MODEL_VERSION: "1", **attributes}
        by_metric.setdefault(metric, []).append(
            metrics_pb2.NumberDataPoint(
                attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in pairs.items()],
                start_time_unix_nano=end - S,
                time_unix_nano=end,
                as_int=value,
            )
        )
    metrics = [
        metrics_pb2.Metric(
            name=metric,
            sum=metrics_pb2.Sum(
                aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_DELTA, is_monotonic=True, data_points=data
            ),
        )
        for metric, data in by_metric.items()
    ]
    resource = Resource(attributes=[KeyValue(key="service.instance.id", value=AnyValue(string_value=instance))])
    return ExportMetricsServiceRequest(
        resource_metrics=[
            metrics_pb2.ResourceMetrics(resource=resource, scope_metrics=[metrics_pb2.ScopeMetrics(metrics=metrics)])
        ]
    ).SerializeToString()


def label_mix(model: str, mix: dict, end_ns: int) -> list:
    """Points of ``model``'s predicted-label counts."""
    return [(model, semconv.METRIC_PREDICTIONS, {semconv.PREDICTION_LABEL: k}, v, end_ns) for k, v in mix.items()]


def base_time() -> int:
    """A window boundary a day ago: the bench's data clock starts there and runs faster than the wall clock."""
    return (time.time_ns() - 86400 * S) // (WINDOW_S * S) * (WINDOW_S * S)


class Client:
    """Posts to the analyzer's OTLP/HTTP receiver and keeps every request's latency."""

    def __init__(self, port: int, api: int):
        self.port, self.api, self.latencies = port, api, []

    def post(self, body: bytes) -> dict:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/v1/metrics", data=body, method="POST")
        request.add_header("Content-Type", "application/x-protobuf")
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = response.read()
        self.latencies.append(time.perf_counter() - started)
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse

        partial = ExportMetricsServiceResponse.FromString(answer).partial_success
        return {"rejected": partial.rejected_data_points}

    def get(self, path: str):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.api}{path}", timeout=120) as response:
            return json.loads(response.read())


class RssSampler(threading.Thread):
    """Samples a process's resident memory every ``every`` seconds; ``peak`` in MiB and ``series`` over time."""

    def __init__(self, pid: int, every: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.every, self.peak, self.series, self._stop = pid, every, 0.0, [], threading.Event()
        self.started = time.monotonic()

    def run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
            except (OSError, StopIteration):
                return
            self.peak = max(self.peak, rss)
            self.series.append((round(time.monotonic() - self.started, 1), round(rss, 1)))

    def stop(self) -> None:
        self._stop.set()


def flood(client: Client, names: int, batch: int, t0: int, log) -> None:
    """``names`` distinct names of every kind, in the flood's own window (window 2 of the data clock)."""
    end = t0 + 2 * WINDOW_S * S + 30 * S
    kinds = {
        "model names (each sent twice)": lambda i: ("flood-%d" % i, semconv.METRIC_ROWS, {}, 1, end),
        "feature names": lambda i: (
            "wide-features",
            semconv.METRIC_FEATURE_NONFINITE,
            {semconv.FEATURE_NAME: "f%d" % i, semconv.NONFINITE_KIND: semconv.NONFINITE_NAN},
            1,
            end,
        ),
        "category values": lambda i: (
            "wide-categories",
            semconv.METRIC_FEATURE_CATEGORY,
            {semconv.FEATURE_NAME: "colour", semconv.FEATURE_CATEGORY: "c%d" % i},
            1,
            end,
        ),
        "label values": lambda i: (
            "wide-labels",
            semconv.METRIC_PREDICTIONS,
            {semconv.PREDICTION_LABEL: "l%d" % i},
            1,
            end,
        ),
    }
    for kind, point in kinds.items():
        started = time.monotonic()
        for first in range(0, names, batch):
            body = sums_request([point(i) for i in range(first, min(first + batch, names))])
            client.post(body)
            if kind.startswith("model names"):
                client.post(body)
        log(f"{kind}: {names:,} in {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    for first in range(0, names, batch):  # one point per source: sources of one model
        for i in range(first, min(first + batch, names), max(1, batch // 50)):
            client.post(sums_request([("wide-sources", semconv.METRIC_ROWS, {}, 1, end)], instance="src-%d" % i))
    log(f"source values: {len(range(0, names, max(1, batch // 50))):,} requests in {time.monotonic() - started:.1f} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--names", type=int, default=1_000_000, help="distinct names of each kind")
    parser.add_argument("--batch", type=int, default=5000, help="points per request")
    parser.add_argument("--max-models", type=int, default=1000)
    args = parser.parse_args(argv)

    from otelml.testing import free_port, launch_analyzer

    def log(text):
        print(f"[{time.monotonic() - began:7.1f} s] {text}", flush=True)

    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "analyzer.toml")
        with open(config, "w") as f:
            f.write(
                f"[analyzer]\nwindow = {WINDOW_S}\nlateness = 0\nbaseline_windows = 5\n"
                f"[analyzer.limits]\nmax_models = {args.max_models}\n"
            )
        ports = [free_port() for _ in range(3)]
        with open(os.path.join(tmp, "analyzer.log"), "w") as output:
            proc = launch_analyzer(ports, os.path.join(tmp, "state"), "--config", config, output=output)
            try:
                return run(Client(ports[1], ports[2]), proc, args, log)
            finally:
                proc.terminate()
                proc.wait(60)


def run(client: Client, proc, args, log) -> int:
    rss = RssSampler(proc.pid)
    rss.start()
    t0 = base_time()
    for w in range(2):  # the known model, confirmed before the flood
        client.post(sums_request(label_mix("steady", MIX, t0 + w * WINDOW_S * S + 30 * S), instance="steady"))
    flood(client, args.names, args.batch, t0, log)
    flood_latencies = list(client.latencies)
    client.latencies.clear()

    first_request = time.monotonic()
    accepted_at = alarm_at = None
    for w in range(3, 20):
        end = t0 + w * WINDOW_S * S + 30 * S
        mix = FAULT if w >= 10 else MIX
        client.post(sums_request(label_mix("steady", MIX, end), instance="steady"))
        for attempt in range(2):  # the newcomer exports twice a window
            answer = client.post(sums_request(label_mix("newcomer", mix, end + attempt * S), instance="newcomer"))
            if accepted_at is None and answer["rejected"] == 0:
                accepted_at = time.monotonic() - first_request
        once = [("once-%d-%d" % (w, i), semconv.METRIC_ROWS, {}, 1, end) for i in range(args.batch)]
        client.post(sums_request(once, instance="flood"))  # names sent once keep flooding
        alarms = [a for a in client.get("/api/alarms")["alarms"] if a["model"] == "newcomer"]
        if alarm_at is None and any(a["feature"] == "predicted label" for a in alarms):
            alarm_at = time.monotonic() - first_request
    rss.stop()
    health = client.get("/api/health")
    steady = next(m for m in client.get("/api/models")["models"] if m["model"] == "steady")

    def latency(values):
        values = sorted(values)
        return {
            "median_ms": round(1e3 * statistics.median(values), 1),
            "p99_ms": round(1e3 * values[int(0.99 * (len(values) - 1))], 1),
            "max_ms": round(1e3 * values[-1], 1),
            "requests": len(values),
        }

    report = {
        "names_per_kind": args.names,
        "batch": args.batch,
        "max_models": args.max_models,
        "peak_rss_mib": round(rss.peak, 1),
        "rss_over_time_mib": rss.series[:: max(1, len(rss.series) // 20)],
        "flood_latency": latency(flood_latencies),
        "after_flood_latency": latency(client.latencies),
        "newcomer_accepted_after_s": None if accepted_at is None else round(accepted_at, 2),
        "newcomer_alarm_after_s": None if alarm_at is None else round(alarm_at, 2),
        "steady_windows_closed": steady["windows_closed"],
        "health_points": health["points"],
        "models_held": health["models"],
        "seconds": round(time.monotonic() - rss.started, 1),
    }
    print(json.dumps(report, indent=2))
    return 0 if accepted_at is not None and alarm_at is not None else 1


if __name__ == "__main__":
    sys.exit(main())

"""End to end over loopback: the real OpenTelemetry OTLP exporters (gRPC and HTTP) to a real receiver, asserting
on the decoded wire data; and SDK replicas to a real analyzer process beside a CPU hog, where late exports must not
read as faults and real faults must still be found."""

import collections
import contextlib
import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.request

import numpy as np
import pytest

import otelml
from otelml import semconv
from otelml.testing import OTLPSink, attributes, free_port, launch_analyzer

from .stack import poll, stop_popen

ROWS_SINGLE, BATCHES, BATCH_ROWS = 300, 4, 1500


def send_traffic():
    rng = np.random.default_rng(0)

    @otelml.monitor(model="credit", version="2", feature_names=["income", "debt", "age"], classes=["deny", "grant"])
    def score(x):
        x = np.atleast_2d(x)
        p = 1 / (1 + np.exp(-(x[:, 0] - x[:, 1])))
        return np.column_stack([1 - p, p])

    for _ in range(ROWS_SINGLE):
        score(rng.normal(size=3))
    for _ in range(BATCHES):
        batch = rng.normal(size=(BATCH_ROWS, 3))
        batch[:, 2] -= 5.0  # negative values travel too (the SDK's record() would drop them)
        score(batch)
    otelml.record_outcome("grant", model="credit", version="2", predicted="deny")


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_spans_histograms_and_exemplars_arrive_intact(sink, protocol):
    endpoint = sink.grpc_endpoint if protocol == "grpc" else sink.http_endpoint
    otelml.configure(endpoint=endpoint, protocol=protocol, service_name="scoring-api", set_global_tracer_provider=False)
    send_traffic()
    assert otelml.shutdown()
    transport = "grpc" if protocol == "grpc" else "http"
    assert sink.transports[transport] >= 2 and sink.transports[{"grpc": "http", "http": "grpc"}[transport]] == 0

    calls, rows = ROWS_SINGLE + BATCHES, ROWS_SINGLE + BATCHES * BATCH_ROWS
    spans = sink.spans()
    assert len(spans) == calls and {s.name for s in spans} == {"predict credit"}
    span_traces = {s.trace_id for s in spans}

    features = sink.metric_points(semconv.METRIC_FEATURE_VALUE)
    by_feature = {}
    for resource, attrs, point in features:
        assert resource["service.name"] == "scoring-api"
        assert attrs[semconv.MODEL_NAME] == "credit" and attrs[semconv.MODEL_VERSION] == "2"
        by_feature[attrs[semconv.FEATURE_NAME]] = by_feature.get(attrs[semconv.FEATURE_NAME], 0) + point.count
        assert point.count == point.zero_count + sum(point.positive.bucket_counts) + sum(point.negative.bucket_counts)
        assert point.start_time_unix_nano < point.time_unix_nano
        for exemplar in point.exemplars:
            assert exemplar.trace_id in span_traces
    assert by_feature == {"income": rows, "debt": rows, "age": rows}
    assert any(p.exemplars for _, _, p in features)
    assert any(sum(p.negative.bucket_counts) for _, a, p in features if a[semconv.FEATURE_NAME] == "age")

    assert sum(p.count for _, _, p in sink.metric_points(semconv.METRIC_CONFIDENCE)) == rows
    assert sum(p.count for _, _, p in sink.metric_points(semconv.METRIC_MARGIN)) == rows
    assert sum(p.count for _, _, p in sink.metric_points(semconv.METRIC_DURATION)) == calls
    assert sum(p.as_int for _, _, p in sink.metric_points(semconv.METRIC_CALLS)) == calls
    assert sum(p.as_int for _, _, p in sink.metric_points(semconv.METRIC_ROWS)) == rows
    labels = {a[semconv.PREDICTION_LABEL]: p.as_int for _, a, p in sink.metric_points(semconv.METRIC_PREDICTIONS)}
    assert set(labels) == {"deny", "grant"} and sum(labels.values()) == rows
    outcomes = sink.metric_points(semconv.METRIC_OUTCOMES)
    assert [(a[semconv.PREDICTION_LABEL], a[semconv.TRUE_LABEL], p.as_int) for _, a, p in outcomes] == [
        ("deny", "grant", 1)
    ]


def test_a_wide_range_feature_travels_with_its_zero_threshold(sink):
    otelml.configure(endpoint=sink.http_endpoint, create_tracer_provider=False)
    rng = np.random.default_rng(5)
    x = rng.normal(1000.0, 1.0, size=(5000, 1))
    x[::100] = 1e-9

    @otelml.monitor(model="wide", version="1", task="regression")
    def predict(rows):
        return rows[:, 0]

    predict(x)
    assert otelml.shutdown()
    [(_, _, point)] = sink.metric_points(semconv.METRIC_FEATURE_VALUE)
    assert point.zero_count == 50 and 0 < point.zero_threshold < 1000 and point.scale >= 10
    assert sum(p.count for _, _, p in sink.metric_points(semconv.METRIC_PREDICTION_VALUE)) == 5000


def test_a_dead_collector_costs_the_caller_nothing_and_nothing_is_lost_once_it_is_back(dropped):
    port = free_port()
    otelml.configure(
        endpoint=f"http://127.0.0.1:{port}", create_tracer_provider=False, export_interval_s=3600, timeout_s=0.5
    )
    predict = otelml.monitor(model="m", version="1")(lambda x: np.full((len(x), 2), 0.5))
    results = [predict(np.ones((10, 3))) for _ in range(20)]
    assert all(r.shape == (10, 2) for r in results)
    assert not otelml.force_flush()  # nobody is listening: kept for the next interval
    predict(np.ones((5, 3)))
    with OTLPSink(http_port=port) as sink:
        assert otelml.shutdown()
        rows = sum(p.as_int for _, _, p in sink.metric_points(semconv.METRIC_ROWS))
    assert rows == 205
    assert "export_failed" not in dropped()


def test_configuration_from_opentelemetry_environment_variables_alone(sink):
    """An application that only calls otelml.configure(): endpoint, protocol and resource come from the env."""
    program = textwrap.dedent(
        """
        import numpy as np, otelml
        otelml.configure()
        predict = otelml.monitor(model="env", version="1")(lambda x: np.full((len(x), 2), 0.5))
        predict(np.ones((7, 2)))
        raise SystemExit(0 if otelml.shutdown() else 1)
        """
    )
    env = dict(
        os.environ,
        OTEL_SERVICE_NAME="from-env",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test,team=risk",
        OTEL_EXPORTER_OTLP_ENDPOINT=sink.grpc_endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_INSECURE="true",
    )
    subprocess.run([sys.executable, "-c", program], env=env, check=True, timeout=60)
    assert sink.transports == {"grpc": 2, "http": 0}
    [(resource, _, point)] = sink.metric_points(semconv.METRIC_ROWS)
    assert point.as_int == 7
    assert resource["service.name"] == "from-env" and resource["team"] == "risk"
    [span] = sink.spans()
    [rs] = sink.requests["traces"][0].resource_spans
    assert attributes(rs.resource.attributes)["deployment.environment"] == "test" and span.name == "predict env"


def test_an_application_tracer_provider_is_used_not_replaced(sink, spans):
    otelml.configure(endpoint=sink.http_endpoint, tracer_provider=spans[0], service_name="app")
    otelml.monitor(model="m", version="1")(lambda x: np.zeros(len(x)))(np.ones((2, 2)))
    assert otelml.shutdown()
    assert len(spans[1].get_finished_spans()) == 1 and sink.spans() == []
    assert sum(p.as_int for _, _, p in sink.metric_points(semconv.METRIC_ROWS)) == 2


def test_configure_is_idempotent_and_rejects_unknown_settings():
    first = otelml.configure(export_metrics=False, create_tracer_provider=False)
    assert otelml.configure(export_metrics=False, create_tracer_provider=False) is first
    with pytest.raises(TypeError, match="unknown settings"):
        otelml.configure(endpoint_url="x")
    assert otelml.shutdown()


# --- a loaded machine: late exports must not read as outages, surges, slowdowns or swaps ---------------------------

REPLICA = """
import sys, threading, time
import numpy as np
import otelml

endpoint, instance, start_at, fault_at, stop_at = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:6])
otelml.configure(endpoint=endpoint, service_name="scoring", resource_attributes={"service.instance.id": instance},
                 create_tracer_provider=False, export_interval_s=1.0)  # an export interval as long as the window

def serve(name, seed):
    rng = np.random.default_rng(seed)
    weights = np.array([1.0, -1.0, 0.5])

    @otelml.monitor(model=name, version="1", feature_names=["a", "b", "c"], classes=["no", "yes"])
    def predict(x):
        faulty = time.time() >= fault_at
        time.sleep(rng.lognormal(np.log(0.05), 0.3) * (5 if faulty and name == "slow" else 1))  # a remote lookup
        z = x @ weights
        if faulty and name == "swap":
            z = 0.1 * z - 1.0  # tampered weights: other outputs for the same inputs
        p = 1 / (1 + np.exp(-z))
        return np.column_stack([1 - p, p])

    while time.time() < stop_at:
        if name == "down" and time.time() >= fault_at:
            break  # nobody calls this model any more
        predict(rng.normal(size=(int(rng.integers(1, 4)), 3)))

time.sleep(max(0.0, start_at - time.time()))
threads = [threading.Thread(target=serve, args=(n, i + 10 * int(instance))) for i, n in enumerate(MODELS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
raise SystemExit(0 if otelml.shutdown() else 1)
"""
MODELS = ("steady", "swap", "slow", "down")
FAULTS = {"swap": ("integrity", "critical"), "down": ("availability", "critical"), "slow": ("latency", "warning")}
PHANTOMS = ("integrity", "availability", "throughput", "latency", "slow calls")
ANALYZER_SETTINGS = """[analyzer]
window = 1
lateness = 0
idle_timeout = 5
warmup = 1000
baseline_windows = 10
alert_resolve_windows = 3
alerts_endpoint = "{alerts}"
alerts_protocol = "http/protobuf"
"""


@contextlib.contextmanager
def cpu_hog(processes=2):
    """Busy loops beside the test, as other work on a loaded machine; always ended."""
    hogs = []
    try:
        for _ in range(processes):
            hogs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        yield hogs
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait(10)


@pytest.fixture(scope="module")
def loaded_run(tmp_path_factory):
    """Two replicas serving four models through the SDK to a real analyzer process with one-second windows and an
    export interval as long as the window, beside a CPU hog; at ``fault_at`` the model ``swap`` is swapped, ``slow``
    gets five times slower and ``down`` stops being called. Returns the analyzer's alarms, the alert records' attributes,
    the times, and its model summaries."""
    tmp = tmp_path_factory.mktemp("loaded")
    ports = [free_port() for _ in range(3)]
    settings = tmp / "analyzer.toml"
    replicas, analyzer = [], None
    with cpu_hog(), OTLPSink() as siem, open(tmp / "analyzer.log", "w") as log:
        settings.write_text(ANALYZER_SETTINGS.format(alerts=siem.http_endpoint))
        try:
            analyzer = launch_analyzer(ports, str(tmp / "state"), "--config", str(settings), output=log)
            start_at = time.time() + 8  # the replicas start together, once imported
            fault_at, stop_at = start_at + 25, start_at + 35
            program = REPLICA.replace("MODELS", repr(MODELS))
            for instance in ("1", "2"):
                command = [sys.executable, "-c", program, f"http://127.0.0.1:{ports[1]}", instance]
                replicas.append(subprocess.Popen(command + [str(t) for t in (start_at, fault_at, stop_at)]))
            for replica in replicas:
                assert replica.wait(timeout=stop_at - time.time() + 60) == 0
            api = f"http://127.0.0.1:{ports[2]}"

            def closed_through_the_end():
                models = {m["model"]: m for m in _get(f"{api}/api/models")["models"]}
                ends = [(models[n]["last_closed_window"] or {}).get("end_unix_nano", 0) for n in MODELS if n in models]
                return len(ends) == len(MODELS) and min(ends) >= (stop_at - 1) * 1e9 and models

            models = poll(closed_through_the_end, "windows closed up to the end of the traffic", timeout_s=60)
            alarms = _get(f"{api}/api/alarms")["alarms"]
            siem.wait_for(
                lambda: all(any(fault == _detector(a) for a in _alerts(siem)) for fault in FAULTS.values()), 30
            )
            records = _alerts(siem)
        finally:
            for replica in replicas:
                if replica.poll() is None:
                    replica.kill()
                    replica.wait(10)
            if analyzer is not None:
                stop_popen(analyzer)
    (tmp / "run.json").write_text(json.dumps({"alarms": alarms, "alerts": records, "models": models}, default=str))
    print(  # shown with -s or on failure: what the run looked like
        f"run in {tmp}; windows closed / partial:",
        {m: (s["windows_closed"], s.get("partial_windows")) for m, s in models.items()},
        "alerts:",
        sorted(collections.Counter((a[semconv.MODEL_NAME], *_detector(a)) for a in records).items()),
        "first alarm after the fault (s):",
        {
            (m, d): min(
                (
                    a["window_start_unix_nano"] / 1e9 - fault_at
                    for a in alarms
                    if (a["model"], a["detector"]) == (m, d) and a["window_start_unix_nano"] >= (fault_at - 1) * 1e9
                ),
                default=None,
            )
            for m, (d, _) in FAULTS.items()
        },
    )
    return {
        "alarms": alarms,
        "alerts": records,
        "fault_at": fault_at,
        "stop_at": stop_at,
        "models": models,
        "log": (tmp / "analyzer.log").read_text(),
    }


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def _alerts(sink) -> list:
    return [
        attributes(r.attributes)
        for request in list(sink.requests["logs"])
        for rl in request.resource_logs
        for sl in rl.scope_logs
        for r in sl.log_records
        if r.event_name == semconv.EVENT_ALERT and attributes(r.attributes)[semconv.ALERT_STATE] == "firing"
    ]


def _detector(alert) -> tuple:
    return alert[semconv.ALERT_DETECTOR], alert[semconv.ALERT_SEVERITY]


def test_a_loaded_machine_raises_no_phantom_outage_swap_or_slowdown(loaded_run):
    """Before the faults (and for the model without one, throughout), no integrity, availability, throughput,
    latency or slow-calls alert, though exports come late and windows are partial."""
    fault_ns, stop_ns = loaded_run["fault_at"] * 1e9, (loaded_run["stop_at"] - 1) * 1e9
    phantoms = [
        a
        for a in loaded_run["alerts"]
        if a[semconv.ALERT_DETECTOR] in PHANTOMS
        and a[semconv.ALERT_WINDOW_START] < (stop_ns if a[semconv.MODEL_NAME] == "steady" else fault_ns - 1e9)
    ]
    partial = {m: s.get("partial_windows") for m, s in loaded_run["models"].items()}
    described = [
        (
            *_detector(a),
            a[semconv.MODEL_NAME],
            f"{(a[semconv.ALERT_WINDOW_START] - fault_ns) / 1e9:+.0f} s from the fault",
        )
        for a in phantoms
    ]
    assert described == [], (
        partial,
        described,
        [(a["model"], a["detector"], a["details"]) for a in loaded_run["alarms"]],
    )


def test_on_a_loaded_machine_real_faults_are_found_in_their_first_windows(loaded_run):
    """A swapped model (a critical integrity alert), an outage (critical availability) and a five times slower model
    (latency), each within the first windows after the fault."""
    fault_ns = loaded_run["fault_at"] * 1e9
    for model, (detector, severity) in FAULTS.items():
        found = sorted(
            a["window_start_unix_nano"]
            for a in loaded_run["alarms"]
            if a["model"] == model and a["detector"] == detector and a["window_start_unix_nano"] >= fault_ns - 1e9
        )
        assert found, (model, detector, [(a["model"], a["detector"]) for a in loaded_run["alarms"]])
        # within the first windows after the fault: the swap and the outage in the first few (measured 0.9-1.9 s);
        # the slowdown needs about 40 slow calls of evidence (the latency test's bets are bounded per call), some
        # five windows at 250 ms a call (measured 4.6-6.1 s on a machine loaded 8 deep)
        within = 9e9 if detector == "latency" else 4e9
        assert found[0] <= fault_ns + within, (model, detector, (found[0] - fault_ns) / 1e9)
        assert any(_detector(a) == (detector, severity) for a in loaded_run["alerts"] if a[semconv.MODEL_NAME] == model)


def test_shutdown_with_a_collector_that_never_answers_is_bounded(dropped):
    """A black-holed collector (connections accepted by the kernel, never answered) used to hold shutdown, and so
    an application's exit or restart, for 34-47 s; now for shutdown_timeout_s, with exports running meanwhile."""
    import socket

    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(64)  # never accepted: every request waits for an answer until the exporter's own time-out
        otelml.configure(
            endpoint=f"http://127.0.0.1:{hole.getsockname()[1]}", create_tracer_provider=False, export_interval_s=0.2
        )
        predict = otelml.monitor(model="m", version="1")(lambda x: np.full((len(x), 2), 0.5))
        for _ in range(20):
            predict(np.ones((10, 3)))
        time.sleep(0.5)  # an export is under way and stuck
        started = time.monotonic()
        delivered = otelml.shutdown()
        took = time.monotonic() - started
    assert not delivered and took < 5.0 + 3.0, took  # the default shutdown_timeout_s is 5 s; generous for a busy box
    assert "export_failed" in dropped()


@pytest.mark.parametrize("bad", ["5", -1, float("nan"), True])
def test_a_bad_shutdown_timeout_is_refused_by_configure(bad):
    with pytest.raises(ValueError, match="shutdown_timeout_s must be a finite number"):
        otelml.configure(shutdown_timeout_s=bad, export_metrics=False, create_tracer_provider=False)

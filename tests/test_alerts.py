"""Alerts: one per incident, firing then resolved, as OTLP log records through the real exporters, never lost."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otelml
from otelml import semconv
from otelml.analyzer import AlertBook
from otelml.analyzer.detectors import Finding
from otelml.testing import OTLPSink, attributes, free_port, launch_analyzer

from .conftest import in_one_second_windows, one_second_windows_alerting_to, reference_build


def finding(feature, window, alarm=True, severity="critical", value=20.0):
    return Finding(
        kind="drift",
        detector="drift",
        model="m",
        version="1",
        feature=feature,
        statistic="log e-value",
        value=value,
        threshold=10.0,
        alarm=alarm,
        window_start_unix_nano=window * 60,
        window_end_unix_nano=window * 60 + 60,
        effect="wasserstein/sd",
        effect_size=0.4,
        severity=severity,
        trace_ids=(("ab" * 16, "cd" * 8),),
        details={"metric": semconv.METRIC_FEATURE_VALUE},
    )


def test_an_incident_on_twenty_features_is_one_alert_that_fires_updates_and_resolves():
    book = AlertBook(resolve_windows=3, update_windows=4)
    events = book.on_window("m", "1", 60, [finding(None, 0)] + [finding(f"x{i}", 0) for i in range(20)])
    [fired] = events
    assert fired.state == "firing" and fired.attributes[semconv.ALERT_FINDINGS] == 21
    assert len(fired.attributes[semconv.ALERT_FEATURES]) == 20 and fired.trace_id == "ab" * 16
    assert fired.severity_text == "ERROR" and fired.severity_number == 17
    updates = [e for w in range(1, 9) for e in book.on_window("m", "1", w * 60 + 60, [finding(None, w)])]
    assert [e.state for e in updates] == ["firing", "firing"]  # at most one update per 4 windows
    assert len({e.alert_id for e in updates + [fired]}) == 1 and len({e.event_id for e in updates + [fired]}) == 3
    quiet = [e for w in range(9, 13) for e in book.on_window("m", "1", w * 60 + 60, [finding(None, w, alarm=False)])]
    assert [e.state for e in quiet] == ["resolved"] and quiet[0].severity_text == "INFO"
    again = book.on_window("m", "1", 14 * 60, [finding(None, 13)])
    assert again[0].state == "firing" and again[0].alert_id != fired.alert_id  # a new incident


def test_an_alert_whose_severity_rises_sends_an_update_at_once():
    """A falling throughput (warning) that becomes an outage (critical) is one alert; the SIEM hears of the critical
    severity in the window it appears, not update_windows later."""
    book = AlertBook(resolve_windows=3, update_windows=10)
    [fired] = book.on_window("m", "1", 60, [finding(None, 0, severity="warning")])
    assert fired.attributes[semconv.ALERT_SEVERITY] == "warning"
    assert book.on_window("m", "1", 120, [finding(None, 1, severity="warning")]) == []
    [escalated] = book.on_window("m", "1", 180, [finding(None, 2, severity="critical")])
    assert escalated.alert_id == fired.alert_id and escalated.attributes[semconv.ALERT_SEVERITY] == "critical"
    assert escalated.severity_text == "ERROR"
    # a warning finding later does not lower the alert, nor send anything before update_windows
    assert book.on_window("m", "1", 240, [finding(None, 3, severity="warning")]) == []


def test_alert_ids_are_stable_when_the_same_windows_are_replayed():
    def run():
        book = AlertBook()
        return [e.event_id for w in range(3) for e in book.on_window("m", "1", w * 60 + 60, [finding(None, w)])]

    assert run() == run()


def test_severity_filter():
    book = AlertBook(min_severity="critical")
    assert book.on_window("m", "1", 60, [finding(None, 0, severity="warning")]) == []
    assert len(book.on_window("m", "1", 60, [finding(None, 0, severity="critical")])) == 1


def build_reference(state_dir, tmp_path, model="churn"):
    data = tmp_path / "train.npy"
    np.save(data, np.random.default_rng(0).normal(size=(50_000, 3)))
    reference_build(state_dir, data, model)


def send_drift_then_calm(analyzer_http_port, tracer_provider, drift_windows=3, calm_windows=6):
    otelml.configure(
        endpoint=f"http://127.0.0.1:{analyzer_http_port}",
        tracer_provider=tracer_provider,
        create_tracer_provider=False,
        export_interval_s=3600,
    )
    rng = np.random.default_rng(4)
    predict = otelml.monitor(model="churn", version="1")(lambda x: np.tile([0.3, 0.7], (len(x), 1)))

    def second(index):
        x = rng.normal(size=(300, 3))
        if 1 <= index <= drift_windows:
            x[:, 2] += 1.5
        return lambda: predict(x)

    try:
        windows = [second(i) for i in range(1 + drift_windows + calm_windows)]
        in_one_second_windows(windows, lambda: predict(rng.normal(size=(1, 3))))
    finally:
        otelml.shutdown()


def alert_records(sink):
    records = []
    for request in sink.requests["logs"]:
        for rl in request.resource_logs:
            for sl in rl.scope_logs:
                records.extend(sl.log_records)
    return [r for r in records if r.event_name == semconv.EVENT_ALERT]


def test_sdk_to_analyzer_to_an_otlp_log_backend_firing_then_resolved(tmp_path, sink, server):
    build_reference(str(tmp_path / "state"), tmp_path)
    analyzer = server(
        window=1, lateness=0, alert_resolve_windows=3, alerts_endpoint=sink.grpc_endpoint, alerts_protocol="grpc"
    )
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    try:
        send_drift_then_calm(analyzer.http.port, provider)
        ok = sink.wait_for(
            lambda: any(attributes(r.attributes)[semconv.ALERT_STATE] == "resolved" for r in alert_records(sink)), 30
        )
        assert ok, (
            sink.transports,
            len(sink.requests["logs"]),
            analyzer.sender.delivered,
            analyzer.sender.failures,
            analyzer.analyzer.store.outbox_waiting(),
        )
    finally:
        analyzer.stop()
    records = [r for r in alert_records(sink) if attributes(r.attributes)[semconv.ALERT_DETECTOR] == "input drift"]
    states = [attributes(r.attributes)[semconv.ALERT_STATE] for r in records]
    assert states[0] == "firing" and states[-1] == "resolved" and states.count("resolved") == 1
    assert len({attributes(r.attributes)[semconv.ALERT_ID] for r in records}) == 1  # one alert per incident
    fired = records[0]
    attrs = attributes(fired.attributes)
    assert fired.severity_number >= 13 and fired.severity_text in ("WARN", "ERROR")
    assert attrs[semconv.MODEL_NAME] == "churn" and attrs[semconv.ALERT_KIND] == "drift"
    assert attrs[semconv.ALERT_FEATURES] == ["x2"] and "x2" in fired.body.string_value
    assert attrs[semconv.FEATURE_NAME] == "x2"
    assert attrs[semconv.ALERT_VALUE] >= attrs[semconv.ALERT_THRESHOLD] and attrs[semconv.ALERT_EFFECT_SIZE] > 0.5
    assert attrs[semconv.ALERT_WINDOW_START] < attrs[semconv.ALERT_WINDOW_END]
    assert "drift alert" in fired.body.string_value
    real_traces = {f"{s.context.trace_id:032x}" for s in spans.get_finished_spans()}
    assert fired.trace_id.hex() in real_traces and len(fired.span_id) == 8


@pytest.mark.parametrize("kill", [False, True], ids=["backend down", "backend down and kill -9"])
def test_alerts_wait_in_the_outbox_and_arrive_once_in_order(tmp_path, kill):
    state_dir = str(tmp_path / "state")
    build_reference(state_dir, tmp_path)
    ports = [free_port() for _ in range(4)]  # grpc, http, status, the alert backend (down at first)

    def launch():
        return launch_analyzer(
            ports,
            state_dir,
            *one_second_windows_alerting_to(f"http://127.0.0.1:{ports[3]}", "http/protobuf"),
            env={"OTEL_EXPORTER_OTLP_TIMEOUT": "1"},
        )

    proc = launch()
    try:
        send_drift_then_calm(ports[1], None, calm_windows=1)
        time.sleep(1.5)  # the analyzer has tried and failed to deliver
        if kill:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        with OTLPSink(http_port=ports[3]) as sink:
            if kill:
                proc = launch()
            assert sink.wait_for(lambda: len(alert_records(sink)) >= 1, 40)
            time.sleep(2)  # anything else queued arrives too
            records = alert_records(sink)
    finally:
        proc.terminate()
        proc.wait(10)
    event_ids = [attributes(r.attributes)[semconv.ALERT_EVENT_ID] for r in records]
    assert len(event_ids) == len(set(event_ids))  # nothing twice
    assert any(attributes(r.attributes)[semconv.ALERT_KIND] == "drift" for r in records)
    times = [r.time_unix_nano for r in records]
    assert times == sorted(times)  # in order


def test_ocsf_detection_finding_field_by_field():
    import json

    from opentelemetry.proto.logs.v1 import logs_pb2

    from otelml.analyzer.alerts import ocsf, records

    book = AlertBook(resolve_windows=1, update_windows=1)
    fired = book.on_window("m", "1", 120 * 10**9, [finding(None, 1), finding("x3", 1)])[0]
    update = book.on_window("m", "1", 180 * 10**9, [finding(None, 2)])[0]
    resolved = book.on_window("m", "1", 240 * 10**9, [finding(None, 3, alarm=False)])[0]
    first, second, last = (ocsf.detection_finding(e) for e in (fired, update, resolved))
    assert (first["class_uid"], first["category_uid"], first["class_name"]) == (2004, 2, "Detection Finding")
    assert [e["activity_id"] for e in (first, second, last)] == [1, 2, 3]
    assert [e["type_uid"] for e in (first, second, last)] == [200401, 200402, 200403]
    assert [e["status_id"] for e in (first, second, last)] == [1, 2, 4]
    assert [e["is_alert"] for e in (first, second, last)] == [True, True, False]
    assert (first["severity_id"], first["severity"]) == (5, "Critical") and last["severity_id"] == 1
    assert first["time"] == 120_000 and first["start_time"] == 60 * 60 // 10**6 and first["end_time"] == 120_000
    info = first["finding_info"]
    assert info["uid"] == fired.alert_id == last["finding_info"]["uid"] and info["types"] == ["drift"]
    assert info["analytic"] == {"uid": "input drift", "name": "input drift", "type_id": 3, "type": "Statistical"}
    [analysis] = first["anomaly_analyses"]
    assert analysis["analysis_target"] == {"name": "m 1", "type": "Machine Learning Model"}
    [anomaly] = analysis["anomalies"]
    assert anomaly["observed_attribute"] == "x3" and anomaly["observation_type"] == "Distribution Analysis"
    assert (
        "log e-value = 20" in anomaly["observations"][0]["value"]
        and "wasserstein/sd = 0.4" in anomaly["observations"][0]["value"]
    )
    assert "threshold 10" in analysis["baselines"][0]["observations"][0]["value"]
    assert first["resources"] == [{"name": "m", "type": "Machine Learning Model", "version": "1"}]
    assert first["metadata"]["product"]["name"] == "otelml" and first["metadata"]["uid"] == fired.event_id
    assert first["unmapped"][semconv.ALERT_ID] == fired.alert_id
    record = logs_pb2.LogRecord.FromString(records.encode(fired, "ocsf"))
    assert json.loads(record.body.string_value) == first and record.event_name == semconv.EVENT_ALERT


def test_output_drift_findings_group_with_output_drift_not_input_drift():
    from otelml.analyzer import Reference
    from otelml.analyzer.detection import Detection
    from otelml.analyzer.detectors import synthetic

    rng = np.random.default_rng(3)
    base = synthetic.window(0, features=rng.normal(size=(50_000, 2)), confidence=rng.beta(9, 1, 50_000))
    ref = Reference("m", "1", base.histograms, "test", 50_000)
    detection, book = Detection(window_s=60), AlertBook()
    labels = set()
    for t in range(1, 8):
        w = synthetic.window(t, features=rng.normal(size=(300, 2)), confidence=rng.beta(2, 1, 300))
        for event in book.on_window("m", "1", w.end_unix_nano, detection.on_window(w, ref)):
            labels.add(event.attributes[semconv.ALERT_DETECTOR])
    assert "output drift" in labels and "input drift" not in labels


def test_changing_a_golden_reference_raises_an_integrity_alert(tmp_path, server, sink):
    state_dir = str(tmp_path / "state")
    build_reference(state_dir, tmp_path, model="golden")
    s = server(state_dir=state_dir, alerts_endpoint=sink.http_endpoint, alerts_protocol="http/protobuf")
    data = tmp_path / "other.npy"
    np.save(data, np.random.default_rng(9).normal(size=(1000, 3)))
    cli = [sys.executable, "-m", "otelml.cli", "reference"]
    built = subprocess.run(
        cli + ["build", "--model", "golden", "--version", "1", "--state-dir", state_dir, str(data)],
        capture_output=True,
        text=True,
        check=True,
    )
    candidate = built.stdout.split()[2]
    refused = subprocess.run(
        cli + ["pin", "--model", "golden", "--version", "1", "--hash", candidate, "--state-dir", state_dir],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1
    subprocess.run(
        cli + ["promote", "--model", "golden", "--version", "1", "--hash", candidate, "--state-dir", state_dir],
        check=True,
        capture_output=True,
    )
    assert sink.wait_for(lambda: len(alert_records(sink)) >= 2, 15)
    records = [attributes(r.attributes) for r in alert_records(sink)]
    assert [(a[semconv.ALERT_KIND], a[semconv.ALERT_DETECTOR], a[semconv.ALERT_SEVERITY]) for a in records] == [
        ("integrity", "reference guard", "critical"),
        ("integrity", "reference guard", "warning"),
    ]
    assert all(a[semconv.MODEL_NAME] == "golden" for a in records) and s.analyzer.alerts.reference_events_seen > 0


@pytest.mark.parametrize("also_the_hash_column", [False, True])
def test_a_pinned_reference_edited_in_the_database_is_not_used_and_raises_a_critical_alert(
    tmp_path, server, sink, also_the_hash_column
):
    """Someone rewrites the pinned reference's data in SQLite (and, the second time, its hash column to match): the
    analyzer notices at its next look at the store, stops using the reference, and sends one critical alert."""
    import sqlite3

    from otelml.analyzer import Reference, from_data
    from otelml.analyzer.store import codec

    state_dir = str(tmp_path / "state")
    build_reference(state_dir, tmp_path, model="golden")
    db = sqlite3.connect(f"{state_dir}/otelml.sqlite3")
    [(old_hash,)] = db.execute("SELECT hash FROM refs WHERE model = 'golden' AND status = 'pinned'").fetchall()
    forged = from_data("golden", "1", ["x0", "x1", "x2"], np.random.default_rng(7).normal(3, 1, (1000, 3)), "forged")
    forged = Reference(forged.model, forged.version, forged.histograms, "training data", 50_000)
    new_hash = forged.hash if also_the_hash_column else old_hash
    db.execute("UPDATE refs SET data = ?, hash = ? WHERE hash = ?", (codec.encode(forged), new_hash, old_hash))
    db.commit()
    db.close()
    s = server(state_dir=state_dir, alerts_endpoint=sink.http_endpoint, alerts_protocol="http/protobuf")
    assert sink.wait_for(lambda: len(alert_records(sink)) >= 1, 15)
    [record] = alert_records(sink)
    alert = attributes(record.attributes)
    assert (alert[semconv.ALERT_DETECTOR], alert[semconv.ALERT_SEVERITY], alert[semconv.MODEL_NAME]) == (
        "reference guard",
        "critical",
        "golden",
    )
    assert "changed in the store" in record.body.string_value and old_hash in record.body.string_value
    assert s.analyzer.store.pinned("golden", "1") is None  # not used for detection
    s.analyzer.tick()
    time.sleep(0.5)
    assert len(alert_records(sink)) == 1  # once


def test_the_outbox_sends_what_waits_in_the_order_of_its_events_and_reads_an_older_store(tmp_path):
    """Windows close in the order the data lets them (a quiet model's after a busy one's), so alerts arrive at the
    outbox out of time order; what waits (after an outage, say) goes out in the order of its events' times. A
    store made before the outbox kept event times opens and keeps its waiting records."""
    import sqlite3

    from otelml.analyzer import Store

    state = tmp_path / "old"
    state.mkdir()
    old = sqlite3.connect(state / "otelml.sqlite3")
    old.execute(
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE, created_ns INTEGER, "
        "payload BLOB)"
    )
    old.execute("INSERT INTO outbox (event_id, created_ns, payload) VALUES ('old', 5, x'01')")
    old.commit()
    old.close()
    store = Store(str(state))
    store.outbox_add([("late", 30, b"\x03"), ("early", 10, b"\x02"), ("later", 40, b"\x04"), ("early", 10, b"\x09")])
    head = store.outbox_head(3)
    assert [payload for _, payload in head] == [b"\x01", b"\x02", b"\x03"]  # 5, 10, 30; the duplicate ignored
    store.outbox_remove([seq for seq, _ in head])
    store.outbox_add([("middle", 35, b"\x05")])
    assert [payload for _, payload in store.outbox_head(10)] == [b"\x05", b"\x04"]
    assert store.outbox_waiting() == 2
    store.close()


def test_the_state_directory_and_database_are_the_analyzers_alone(tmp_path):
    """The store holds the journal, references and outbox: a directory it makes is 0700 and its files 0600 (they
    were 0755 and 0644, so any local user read them), an existing database included."""
    import stat

    from otelml.analyzer import Store

    store = Store(str(tmp_path / "state"))
    store.append("metrics:application/x-protobuf", b"x", 1)  # the -wal and -shm files exist now
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "state").iterdir()}
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert modes and set(modes.values()) == {0o600}, modes
    store.close()
    (tmp_path / "state" / "otelml.sqlite3").chmod(0o644)
    Store(str(tmp_path / "state")).close()
    assert stat.S_IMODE((tmp_path / "state" / "otelml.sqlite3").stat().st_mode) == 0o600

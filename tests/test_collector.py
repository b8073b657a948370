"""The production path with real components: application (SDK) -> OpenTelemetry Collector (collector/otelcol.yaml,
built from collector/builder-config.yaml) -> otelml analyzer, Jaeger v2 and Prometheus; alerts analyzer ->
collector -> Loki's OTLP endpoint (an OTLP receiver stands in) and the file exporter (the SIEM's pickup file).

One stack and one run of traffic serve every test of this module: a drifting model and two calm ones.
"""

import contextlib
import json
import math
import os
import subprocess
import urllib.parse

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otelml import semconv
from otelml.testing import OTLPSink, attributes, free_port, launch_analyzer

from . import stack
from .conftest import one_second_windows_alerting_to
from .test_alerts import alert_records, build_reference, send_drift_then_calm
from .yaml_subset import load

SERVICE = "scoring-api"
CALM = {"fraud": (40, 1), "credit": (25, 4)}  # calls, rows per call
# churn: send_drift_then_calm's 1 + 3 drifting + 6 calm one-second windows of 300 rows, and one closing row.
SENT = {"churn": {"calls": 11, "rows": 3001}, "fraud": {"calls": 40, "rows": 40}, "credit": {"calls": 25, "rows": 100}}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("collector")
    for name in ("collector", "jaeger", "prometheus"):  # skip (or fail on CI) before starting anything
        stack.binary(name)
    with contextlib.ExitStack() as cleanup:
        loki = cleanup.enter_context(OTLPSink())
        jaeger, jaeger_otlp, jaeger_query = stack.start_jaeger(tmp)
        cleanup.callback(jaeger.stop)
        analyzer_ports = [free_port() for _ in range(3)]
        collector_ports = {"grpc": free_port(), "http": free_port()}  # the analyzer sends alerts to the collector
        state_dir = str(tmp / "state")
        build_reference(state_dir, tmp)
        analyzer = launch_analyzer(
            analyzer_ports,
            state_dir,
            *one_second_windows_alerting_to(f"http://127.0.0.1:{collector_ports['grpc']}"),
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector_ports['http']}",
                "OTEL_METRIC_EXPORT_INTERVAL": "1000",
                "OTEL_SERVICE_NAME": "otelml-analyzer",
            },
        )
        cleanup.callback(stack.stop_popen, analyzer)
        collector, endpoints = stack.start_collector(
            tmp,
            analyzers=[f"127.0.0.1:{analyzer_ports[0]}"],
            jaeger=jaeger_otlp,
            loki=loki.http_endpoint,
            ports=collector_ports,
        )
        cleanup.callback(collector.stop)
        prometheus, prometheus_base = stack.start_prometheus(
            tmp, {"collector:8889": endpoints["prometheus"], "collector:8888": endpoints["telemetry"]}
        )
        cleanup.callback(prometheus.stop)

        provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
        cleanup.callback(provider.shutdown)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoints['http']}/v1/traces")))
        send_drift_then_calm(collector_ports["http"], provider)
        stack.send_models(endpoints["http"], provider, CALM)
        assert provider.force_flush()
        yield {
            "analyzer": f"http://127.0.0.1:{analyzer_ports[2]}",
            "alerts_file": endpoints["alerts_file"],
            "loki": loki,
            "jaeger": jaeger_query,
            "prometheus": prometheus_base,
        }
        assert collector.running(), collector.log()[-3000:]


def fired_drift_alert(records):
    found = [
        (r, a)
        for r, a in stack.alerts(records)
        if a[semconv.ALERT_DETECTOR] == "input drift" and a[semconv.ALERT_STATE] == semconv.ALERT_STATE_FIRING
    ]
    return found[0] if found else None


@pytest.fixture(scope="module")
def alert(run):
    """The drift alert's record, as the collector's file exporter wrote it."""
    return stack.poll(lambda: fired_drift_alert(stack.file_log_records(run["alerts_file"])), "the drift alert", 60)


def test_the_analyzer_sees_every_model_and_count_sent_through_the_collector(run):
    def counts():
        models = stack.get_json(f"{run['analyzer']}/api/models")["models"]
        return {m["model"]: {"calls": m["calls"], "rows": m["rows"]} for m in models}

    stack.poll_equal(counts, SENT, "the analyzer's counts", 30)
    health = stack.get_json(f"{run['analyzer']}/api/health")
    assert health["points"].get("rejected", 0) == 0 and health["points"].get("late", 0) == 0


def test_a_drift_alert_reaches_the_siem_file_and_loki_with_its_schema_intact(run, alert):
    record, attrs = alert
    schema = {name for key, name in vars(semconv).items() if key.startswith("ALERT_") and name.startswith("otelml.")}
    schema -= {semconv.ALERT_QUERIES, semconv.ALERT_FIRST_TRACE_ID}  # adversarial alerts only
    assert schema | {semconv.MODEL_NAME, semconv.MODEL_VERSION, semconv.FEATURE_NAME} == set(attrs)
    assert attrs[semconv.MODEL_NAME] == "churn" and attrs[semconv.MODEL_VERSION] == "1"
    assert attrs[semconv.ALERT_KIND] == "drift" and attrs[semconv.ALERT_FEATURES] == ["x2"]
    assert attrs[semconv.FEATURE_NAME] == "x2" and attrs[semconv.ALERT_SEVERITY] in ("warning", "critical")
    assert attrs[semconv.ALERT_VALUE] >= attrs[semconv.ALERT_THRESHOLD] and attrs[semconv.ALERT_EFFECT_SIZE] > 0.5
    assert isinstance(attrs[semconv.ALERT_WINDOW_START], int) and isinstance(attrs[semconv.ALERT_FINDINGS], int)
    assert attrs[semconv.ALERT_WINDOW_START] < attrs[semconv.ALERT_WINDOW_END]
    assert record.severity_number >= 13 and record.severity_text in ("WARN", "ERROR")
    assert "drift alert" in record.body.string_value and len(record.trace_id) == 16 and len(record.span_id) == 8

    def in_loki():
        return [
            r
            for r in alert_records(run["loki"])
            if attributes(r.attributes)[semconv.ALERT_ID] == attrs[semconv.ALERT_ID]
        ]

    same = stack.poll(in_loki, "the alert at the Loki endpoint", 30)[0]
    assert same.SerializeToString(deterministic=True) == record.SerializeToString(deterministic=True)


def jaeger_traces(run, **query):
    url = f"{run['jaeger']}/api/traces?" + urllib.parse.urlencode({"service": SERVICE, "limit": 1000, **query})
    return stack.get_json(url)["data"]


def test_decorated_calls_are_found_in_jaeger_by_service_and_operation(run):
    for model, sent in SENT.items():
        operation = f"predict {model}"
        stack.poll_equal(
            lambda operation=operation: len(jaeger_traces(run, operation=operation)),
            sent["calls"],
            f"traces of {operation!r} in Jaeger",
            30,
        )
        for trace in jaeger_traces(run, operation=operation):
            [span] = trace["spans"]
            tags = {t["key"]: t["value"] for t in span["tags"]}
            assert span["operationName"] == operation and tags[semconv.MODEL_NAME] == model
    operations = stack.get_json(f"{run['jaeger']}/api/services/{SERVICE}/operations")["data"]
    assert {f"predict {m}" for m in SENT} <= set(operations)


def test_the_alerts_trace_id_resolves_to_a_trace_in_jaeger(run, alert):
    record, _ = alert
    url = f"{run['jaeger']}/api/traces/{record.trace_id.hex()}"
    stack.poll(lambda: stack.get(url)[0] == 200, "the alert's trace in Jaeger", 30)
    [found] = stack.get_json(url)["data"]
    assert found["traceID"] == record.trace_id.hex()
    assert [s["operationName"] for s in found["spans"]] == ["predict churn"]
    assert found["spans"][0]["spanID"] == record.span_id.hex()


def test_prometheus_answers_latency_percentiles_and_counts(run):
    base = run["prometheus"]

    def counts():
        result = stack.promql(base, "histogram_count(sum by (otelml_model_name) (otelml_inference_duration_seconds))")
        return {r["metric"]["otelml_model_name"]: round(float(r["value"][1])) for r in result}

    expected = {model: sent["calls"] for model, sent in SENT.items()}
    stack.poll_equal(counts, expected, "the calls Prometheus counts", 60)
    for model in SENT:
        quantiles = []
        for q in (0.5, 0.95):
            query = (
                f"histogram_quantile({q}, sum by (otelml_model_name) "
                f'(otelml_inference_duration_seconds{{otelml_model_name="{model}"}}))'
            )
            [result] = stack.promql(base, query)
            quantiles.append(float(result["value"][1]))
        assert all(math.isfinite(v) for v in quantiles) and 0 < quantiles[0] <= quantiles[1] < 1, (model, quantiles)


def test_prometheus_has_the_analyzers_drift_scores(run, alert):
    base = run["prometheus"]
    query = 'otelml_analyzer_drift_score{otelml_model_name="churn", otelml_analyzer_detector="input drift"}'

    def same_as_the_analyzer():
        [churn] = [m for m in stack.get_json(f"{run['analyzer']}/api/models")["models"] if m["model"] == "churn"]
        latest = churn["detectors"]["input drift"]["value"]
        found = stack.promql(base, query)
        return found and math.isclose(float(found[0]["value"][1]), latest, rel_tol=1e-9, abs_tol=1e-12)

    stack.poll(same_as_the_analyzer, "Prometheus to hold the analyzer's latest input drift score", 60)
    peak = stack.promql(base, f"max_over_time({query}[10m])")
    assert float(peak[0]["value"][1]) > 0


def test_every_dashboard_query_runs_on_prometheus_and_finds_data(run):
    """The Grafana dashboards' PromQL, with Grafana's variables filled in, against the real Prometheus."""
    for path in sorted((stack.REPO / "grafana" / "dashboards").glob("*.json")):
        panels = json.loads(path.read_text())["panels"]
        for panel in panels:
            for target in panel["targets"]:
                if target["datasource"]["type"] != "prometheus":
                    continue
                query = target["expr"].replace("$__rate_interval", "5m").replace("$model", ".*")
                assert stack.promql(run["prometheus"], query), (path.name, panel["title"], query)


def test_the_slim_collector_has_exactly_the_components_the_configs_use():
    collector = stack.binary("collector")
    used = {}
    for path in (stack.COLLECTOR_CONFIG, stack.SCALEOUT_CONFIG):
        config = load(path.read_text())
        for kind in ("receivers", "processors", "exporters", "extensions"):
            used.setdefault(kind, set()).update(name.split("/")[0] for name in config.get(kind) or {})
    listed = load(subprocess.run([collector, "components"], capture_output=True, text=True, check=True).stdout)
    built = {kind: {c["name"] for c in listed.get(kind) or []} for kind in used}
    assert built == used
    env = {"OTELML_ANALYZERS": "[127.0.0.1:1, 127.0.0.1:2]"}
    for configs in ([stack.COLLECTOR_CONFIG], [stack.COLLECTOR_CONFIG, stack.SCALEOUT_CONFIG]):
        command = [collector, "validate", *(f"--config={c}" for c in configs)]
        done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, **env))
        assert done.returncode == 0, done.stderr

"""Scale-out with real components: the collector with collector/otelcol.yaml and collector/scaleout.yaml routes every
model's metrics and spans, by `otelml.model.name`, to one of two otelml analyzers (load-balancing exporter, static
resolver); a drift alert still fires; stopping one analyzer leaves the collector and the other analyzer working."""

import contextlib

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otelml import semconv
from otelml.testing import OTLPSink, free_port, launch_analyzer

from . import stack
from .conftest import one_second_windows_alerting_to
from .test_alerts import build_reference, send_drift_then_calm

CALM = {f"model-{i}": (3 + i, 2) for i in range(8)}  # calls, rows per call
MORE = {name: (2, 2) for name in CALM}


def models_on(analyzer: str) -> dict:
    """``{model: (calls, spans)}`` as one analyzer's ``/api/models`` reports them."""
    return {m["model"]: (m["calls"], m["spans"]) for m in stack.get_json(f"{analyzer}/api/models")["models"]}


def test_each_model_lands_on_one_analyzer_alerts_fire_and_one_analyzer_can_stop(tmp_path):
    stack.binary("collector")  # skip (or fail on CI) before starting anything
    with contextlib.ExitStack() as cleanup:
        sink = cleanup.enter_context(OTLPSink())  # stands in for Jaeger and Loki
        collector_grpc, collector_http = free_port(), free_port()
        analyzers = []
        for name in ("a", "b"):
            ports = [free_port() for _ in range(3)]
            state_dir = str(tmp_path / name)
            build_reference(state_dir, tmp_path)
            flags = one_second_windows_alerting_to(f"http://127.0.0.1:{collector_grpc}")
            analyzer = {
                "proc": launch_analyzer(ports, state_dir, *flags),
                "launch": (ports, state_dir, *flags),
                "otlp": f"127.0.0.1:{ports[0]}",
                "api": f"http://127.0.0.1:{ports[2]}",
            }
            cleanup.callback(lambda analyzer=analyzer: stack.stop_popen(analyzer["proc"]))
            analyzers.append(analyzer)
        collector, endpoints = stack.start_collector(
            tmp_path,
            analyzers=[a["otlp"] for a in analyzers],
            jaeger=sink.grpc_endpoint.removeprefix("http://"),
            loki=sink.http_endpoint,
            ports={"grpc": collector_grpc, "http": collector_http},
        )
        cleanup.callback(collector.stop)
        # Spans wait in the processor until flushed, so they reach the analyzers after the metrics that make their
        # models known (an analyzer counts spans per model version it knows).
        provider = TracerProvider(resource=Resource.create({"service.name": "scoring-api"}))
        cleanup.callback(provider.shutdown)
        exporter = OTLPSpanExporter(endpoint=f"{endpoints['http']}/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=3_600_000))

        send_drift_then_calm(collector_http, provider)
        stack.send_models(endpoints["http"], provider, CALM)
        calls = {name: calls for name, (calls, _) in CALM.items()} | {"churn": 11}

        def merged(spans: bool):
            seen = [models_on(a["api"]) for a in analyzers]
            both = set(seen[0]) & set(seen[1])
            return {"on both": sorted(both), "models": {m: counts[spans] for m, counts in (seen[0] | seen[1]).items()}}

        # Every model, with all its metrics and then all its spans, on exactly one analyzer.
        stack.poll_equal(lambda: merged(False), {"on both": [], "models": calls}, "each model's calls on one analyzer")
        assert provider.force_flush()
        stack.poll_equal(lambda: merged(True), {"on both": [], "models": calls}, "each model's spans with its calls")
        owners = [set(models_on(a["api"])) for a in analyzers]

        # The drift alert fires on whichever analyzer owns churn and reaches the collector's file exporter.
        def drift_alert():
            return [
                a
                for _, a in stack.alerts(stack.file_log_records(endpoints["alerts_file"]))
                if a[semconv.ALERT_DETECTOR] == "input drift" and a[semconv.MODEL_NAME] == "churn"
            ]

        stack.poll(drift_alert, "the churn drift alert in the collector's alerts file", 60)

        # Stop the analyzer that does not own churn; the collector and the other analyzer carry on.
        survivor, stopped = (0, 1) if "churn" in owners[0] else (1, 0)
        stack.stop_popen(analyzers[stopped]["proc"])
        before = models_on(analyzers[survivor]["api"])
        stack.send_models(endpoints["http"], provider, MORE)
        grown = {name: (calls + MORE.get(name, (0,))[0], spans) for name, (calls, spans) in before.items()}
        stack.poll_equal(lambda: models_on(analyzers[survivor]["api"]), grown, "the survivor's models to grow", 30)
        assert collector.running() and stack.get(endpoints["health"])[0] == 200
        assert analyzers[survivor]["proc"].poll() is None
        # The static resolver keeps the stopped analyzer's models routed to it: none moved to the survivor.
        assert set(models_on(analyzers[survivor]["api"])) == owners[survivor]

        # Restarted on its state, it gets what the collector kept retrying for it: nothing was lost.
        analyzers[stopped]["proc"] = launch_analyzer(*analyzers[stopped]["launch"])
        expected = {name: calls[name] + MORE.get(name, (0,))[0] for name in owners[stopped]}
        stack.poll_equal(
            lambda: {m: c for m, (c, _) in models_on(analyzers[stopped]["api"]).items()},
            expected,
            "the retried calls at the restarted analyzer",
            90,
        )

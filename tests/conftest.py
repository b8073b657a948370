"""Fresh OpenTelemetry providers and a fresh otelml runtime for every test; nothing global carries over."""

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otelml
from otelml.sdk.runtime import default_runtime
from otelml.testing import OTLPSink


@pytest.fixture(autouse=True)
def no_global_tracer_provider_left_behind():
    """Tests must not set the process-wide tracer provider: later tests would send their spans to it."""
    yield
    from opentelemetry import trace

    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider), "a test set the global tracer provider"


@pytest.fixture
def spans():
    """An SDK tracer provider exporting to memory: ``(provider, exporter)``."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


@pytest.fixture
def runtime(spans):
    """otelml configured with the test's tracer provider and no metric export; read metrics with ``collect()``."""
    rt = otelml.configure(tracer_provider=spans[0], export_metrics=False)
    yield rt
    otelml.shutdown()


@pytest.fixture
def server(tmp_path):
    """Starts real analyzers on ephemeral loopback ports (``server(**settings)``); stops them after the test."""
    from otelml.analyzer import AnalyzerConfig, Server

    servers = []

    def start(**settings):
        settings.setdefault("state_dir", str(tmp_path / "state"))
        config = AnalyzerConfig(otlp_grpc="127.0.0.1:0", otlp_http="127.0.0.1:0", http="127.0.0.1:0", **settings)
        s = Server(config).start()
        servers.append(s)
        return s

    yield start
    for s in servers:
        if not s.stopped:
            s.stop()


@pytest.fixture
def sink():
    with OTLPSink() as s:
        yield s


@pytest.fixture
def dropped():
    """Drops counted during the test, by reason: call the fixture value to read them."""
    before = default_runtime().health.totals()

    def read():
        after = default_runtime().health.totals()
        return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}

    return read


def collect(rt):
    """One merged view of everything recorded: {(model, version): snapshot}."""
    from otelml import semconv

    return {(s.attributes[semconv.MODEL_NAME], s.attributes[semconv.MODEL_VERSION]): s for s in rt.registry.collect()}


def one_second_windows_alerting_to(endpoint, protocol="grpc"):
    """``launch_analyzer`` flags: one-second windows closing without lateness, alerts sent to ``endpoint``."""
    return ["--window", "1", "--lateness", "0", "--alerts-endpoint", endpoint, "--alerts-protocol", protocol]


def in_one_second_windows(calls, close):
    """Each of ``calls`` (no-argument functions) in a window of its own, with one-second analyzer windows: call,
    export, wait for the next window. Then ``close()`` sends one more call past the last window, which closes it."""
    import time

    for call in calls:
        call()
        assert otelml.force_flush()
        time.sleep(1.02)
    close()
    assert otelml.force_flush()


def reference_build(state_dir, data, model, version="1"):
    """``otelml reference build`` as a user runs it; returns the completed process (its stdout names the hash)."""
    import subprocess
    import sys

    command = [
        sys.executable,
        "-m",
        "otelml.cli",
        "reference",
        "build",
        "--model",
        model,
        "--version",
        version,
        "--state-dir",
        str(state_dir),
        str(data),
    ]
    return subprocess.run(command, check=True, capture_output=True, text=True)

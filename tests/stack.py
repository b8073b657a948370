"""The production path as real processes on loopback: the collector built from collector/builder-config.yaml, Jaeger
v2, Prometheus, otelml analyzers, each run with the repository's own configuration files.

Binaries come from ``collector/build.sh`` (built once, cached). Where one cannot be had (no Go, no root for
apt-get), the test is skipped with the reason, or fails when ``CI=true``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import otelml
from otelml import semconv
from otelml.analyzer.ingest.otlp_json import parse_otlp_json
from otelml.testing import attributes, free_port

REPO = Path(__file__).resolve().parent.parent
COLLECTOR_CONFIG = REPO / "collector" / "otelcol.yaml"
SCALEOUT_CONFIG = REPO / "collector" / "scaleout.yaml"
JAEGER_CONFIG = REPO / "collector" / "jaeger" / "config.yaml"
PROMETHEUS_CONFIG = REPO / "collector" / "prometheus.yml"


def binary(name: str) -> str:
    """Path of ``name`` (collector, jaeger, prometheus), built or installed once by ``collector/build.sh``."""
    done = subprocess.run([str(REPO / "collector" / "build.sh"), name], capture_output=True, text=True)
    if done.returncode == 0:
        return done.stdout.strip().splitlines()[-1]
    reason = f"{name} could not be built: {done.stderr.strip()[-3000:]}"
    if done.returncode == 2 and os.environ.get("CI") != "true":
        pytest.skip(reason)
    pytest.fail(reason)


def get(url: str, timeout: float = 5.0):
    """``(status, body)`` of a GET; ``(None, error)`` when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError as exc:
        return None, str(exc).encode()


def get_json(url: str):
    status, body = get(url)
    assert status == 200, (url, status, body[:500])
    return json.loads(body)


def poll(condition, what: str, timeout_s: float = 60.0, interval_s: float = 0.25):
    """Call ``condition()`` until it returns something true, and return that; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval_s)


def poll_equal(read, expected, what: str, timeout_s: float = 60.0):
    """Call ``read()`` until it returns ``expected``; fail with the last value read at the deadline."""
    seen = []

    def same():
        seen[:] = [read()]
        return seen[0] == expected

    try:
        poll(same, what, timeout_s)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: expected {expected!r}, last read {seen[0]!r}") from None


class Process:
    """A long-running binary with its output in ``log_path``; ``stop()`` ends it."""

    def __init__(self, command: list, log_path: Path, env: dict | None = None):
        self.command = command
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, env=dict(os.environ, **(env or {}))
        )

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_until(self, condition, what: str, timeout_s: float = 60.0):
        def ready():
            if not self.running():
                raise AssertionError(f"{self.command[0]} exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
            return condition()

        try:
            return poll(ready, what, timeout_s)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log()[-3000:]}") from None

    def stop(self) -> None:
        if self.running():
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def stop_popen(proc) -> None:
    """End a process started with ``subprocess.Popen`` (an analyzer from ``launch_analyzer``)."""
    if proc.poll() is None:
        proc.terminate()
        proc.wait(15)


def up(url: str):
    return lambda: get(url, timeout=1)[0] == 200


def start_collector(tmp: Path, *, analyzers: list, jaeger: str, loki: str, ports: dict | None = None, name="collector"):
    """The collector with collector/otelcol.yaml (and collector/scaleout.yaml when there are several ``analyzers``,
    as ``host:port``), on free ports unless ``ports`` names some; returns ``(process, endpoints)``."""
    ports = {key: free_port() for key in ("grpc", "http", "health", "prometheus", "telemetry")} | (ports or {})
    env = {
        "OTELCOL_GRPC_ENDPOINT": f"127.0.0.1:{ports['grpc']}",
        "OTELCOL_HTTP_ENDPOINT": f"127.0.0.1:{ports['http']}",
        "OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{ports['health']}",
        "OTELCOL_PROMETHEUS_ENDPOINT": f"127.0.0.1:{ports['prometheus']}",
        "OTELCOL_TELEMETRY_HOST": "127.0.0.1",
        "OTELCOL_TELEMETRY_PORT": str(ports["telemetry"]),
        "JAEGER_ENDPOINT": jaeger,
        "LOKI_ENDPOINT": loki,
        "ALERTS_FILE": str(tmp / f"{name}-alerts.jsonl"),
    }
    command = [binary("collector"), "--config", str(COLLECTOR_CONFIG)]
    if len(analyzers) == 1:
        env["OTELML_ANALYZER_ENDPOINT"] = analyzers[0]
    else:
        env["OTELML_ANALYZERS"] = "[" + ", ".join(analyzers) + "]"
        command += ["--config", str(SCALEOUT_CONFIG)]
    process = Process(command, tmp / f"{name}.log", env)
    process.wait_until(up(f"http://127.0.0.1:{ports['health']}/"), "the collector's health check")
    endpoints = {
        "grpc": f"http://127.0.0.1:{ports['grpc']}",
        "http": f"http://127.0.0.1:{ports['http']}",
        "health": f"http://127.0.0.1:{ports['health']}/",
        "prometheus": f"127.0.0.1:{ports['prometheus']}",
        "telemetry": f"127.0.0.1:{ports['telemetry']}",
        "alerts_file": Path(env["ALERTS_FILE"]),
    }
    return process, endpoints


def start_jaeger(tmp: Path):
    """Jaeger v2 with collector/jaeger/config.yaml; returns ``(process, OTLP/gRPC host:port, query base URL)``."""
    otlp, query, query_grpc = free_port(), free_port(), free_port()
    env = {
        "JAEGER_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{otlp}",
        "JAEGER_QUERY_HTTP_ENDPOINT": f"127.0.0.1:{query}",
        "JAEGER_QUERY_GRPC_ENDPOINT": f"127.0.0.1:{query_grpc}",
    }
    process = Process([binary("jaeger"), "--config", str(JAEGER_CONFIG)], tmp / "jaeger.log", env)
    base = f"http://127.0.0.1:{query}"
    process.wait_until(up(f"{base}/api/services"), "Jaeger's query API")
    return process, f"127.0.0.1:{otlp}", base


def start_prometheus(tmp: Path, targets: dict):
    """Prometheus with collector/prometheus.yml, its scrape targets replaced by ``targets`` (compose address ->
    loopback address) and a one-second scrape interval; returns ``(process, base URL)``."""
    text = PROMETHEUS_CONFIG.read_text().replace("scrape_interval: 15s", "scrape_interval: 1s")
    for compose_address, address in targets.items():
        assert f'"{compose_address}"' in text, compose_address
        text = text.replace(f'"{compose_address}"', f'"{address}"')
    config = tmp / "prometheus.yml"
    config.write_text(text)
    port = free_port()
    command = [
        binary("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--enable-feature=native-histograms",
    ]
    process = Process(command, tmp / "prometheus.log")
    base = f"http://127.0.0.1:{port}"
    process.wait_until(up(f"{base}/-/ready"), "Prometheus to be ready")
    return process, base


def promql(base: str, query: str) -> list:
    """The result vector of an instant PromQL query."""
    answer = get_json(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query}))
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def send_models(endpoint: str, provider, models: dict) -> None:
    """Calls of calm classifiers through otelml to ``endpoint`` (OTLP/HTTP), spans to ``provider``: ``models`` maps
    each model's name to ``(calls, rows per call)``."""
    otelml.configure(endpoint=endpoint, tracer_provider=provider, create_tracer_provider=False, export_interval_s=3600)
    rng = np.random.default_rng(1)
    try:
        for name, (calls, rows) in models.items():
            predict = otelml.monitor(model=name, version="1", classes=["ok", "bad"])(
                lambda x: np.tile([0.9, 0.1], (len(x), 1))
            )
            for _ in range(calls):
                predict(rng.normal(size=(rows, 3)))
    finally:
        assert otelml.shutdown()


def file_log_records(path: Path) -> list:
    """Every log record the collector's file exporter wrote (OTLP/JSON, one request per line), as protobuf."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        if line.strip():
            request = parse_otlp_json(line.encode(), ExportLogsServiceRequest)
            records += [r for rl in request.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    return records


def alerts(records: list) -> list:
    """``(record, attributes)`` of the otelml alert records among ``records``."""
    return [(r, attributes(r.attributes)) for r in records if r.event_name == semconv.EVENT_ALERT]

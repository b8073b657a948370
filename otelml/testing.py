"""A loopback OTLP receiver that keeps what it receives: for testing instrumented models, and for the examples.

It accepts OTLP/gRPC and OTLP/HTTP (protobuf, optionally gzip) for metrics, traces and logs, decodes each request
with opentelemetry-proto and keeps it. It is a test double for a collector, not a production receiver (the
analyzer is that).

Example:
    >>> with OTLPSink() as sink:
    ...     sink.http_endpoint.startswith("http://127.0.0.1:")
    True
"""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as logs_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as metrics_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_grpc

_MAX_BODY = 64 * 1024 * 1024
_SIGNALS = {
    "/v1/metrics": ("metrics", metrics_pb.ExportMetricsServiceRequest, metrics_pb.ExportMetricsServiceResponse),
    "/v1/traces": ("traces", trace_pb.ExportTraceServiceRequest, trace_pb.ExportTraceServiceResponse),
    "/v1/logs": ("logs", logs_pb.ExportLogsServiceRequest, logs_pb.ExportLogsServiceResponse),
}


def attributes(key_values) -> dict:
    """OTLP ``KeyValue`` list as a dict of plain Python values (arrays as lists)."""
    return {kv.key: _plain(kv.value) for kv in key_values}


def _plain(any_value):
    field = any_value.WhichOneof("value")
    if field == "array_value":
        return [_plain(v) for v in any_value.array_value.values]
    return getattr(any_value, field) if field else None


class OTLPSink:
    """Receives OTLP on loopback (ports chosen by the OS unless given) and keeps the decoded requests."""

    def __init__(self, host: str = "127.0.0.1", grpc_port: int = 0, http_port: int = 0):
        self.host = host
        self.requests = {"metrics": [], "traces": [], "logs": []}
        self.transports = {"grpc": 0, "http": 0}
        self._lock = threading.Lock()
        self._grpc_port, self._http_port = grpc_port, http_port
        self._grpc = self._http = None

    # --- life cycle -----------------------------------------------------------------------------------------------
    def start(self) -> "OTLPSink":
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.max_receive_message_length", _MAX_BODY)]
        )
        sink = self

        class Metrics(metrics_grpc.MetricsServiceServicer):
            def Export(self, request, context):
                sink._keep("metrics", request, "grpc")
                return metrics_pb.ExportMetricsServiceResponse()

        class Traces(trace_grpc.TraceServiceServicer):
            def Export(self, request, context):
                sink._keep("traces", request, "grpc")
                return trace_pb.ExportTraceServiceResponse()

        class Logs(logs_grpc.LogsServiceServicer):
            def Export(self, request, context):
                sink._keep("logs", request, "grpc")
                return logs_pb.ExportLogsServiceResponse()

        metrics_grpc.add_MetricsServiceServicer_to_server(Metrics(), self._grpc)
        trace_grpc.add_TraceServiceServicer_to_server(Traces(), self._grpc)
        logs_grpc.add_LogsServiceServicer_to_server(Logs(), self._grpc)
        self._grpc_port = self._grpc.add_insecure_port(f"{self.host}:{self._grpc_port}")
        self._grpc.start()

        self._http = ThreadingHTTPServer((self.host, self._http_port), _handler(self))
        self._http_port = self._http.server_address[1]
        threading.Thread(target=self._http.serve_forever, name="otlp-sink-http", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=None)
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()

    def __enter__(self) -> "OTLPSink":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def grpc_endpoint(self) -> str:
        return f"http://{self.host}:{self._grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://{self.host}:{self._http_port}"

    def _keep(self, signal: str, request, transport: str) -> None:
        with self._lock:
            self.requests[signal].append(request)
            self.transports[transport] += 1

    # --- reading what arrived -------------------------------------------------------------------------------------
    def spans(self) -> list:
        """Every span received, as opentelemetry-proto ``Span`` messages."""
        with self._lock:
            requests = list(self.requests["traces"])
        return [span for r in requests for rs in r.resource_spans for ss in rs.scope_spans for span in ss.spans]

    def metric_points(self, name: str) -> list:
        """``(resource attributes, point attributes, point)`` for every data point of metric ``name``."""
        with self._lock:
            requests = list(self.requests["metrics"])
        found = []
        for r in requests:
            for rm in r.resource_metrics:
                resource = attributes(rm.resource.attributes)
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        if metric.name != name:
                            continue
                        kind = metric.WhichOneof("data")
                        for point in getattr(metric, kind).data_points:
                            found.append((resource, attributes(point.attributes), point))
        return found

    def metric_names(self) -> set:
        with self._lock:
            requests = list(self.requests["metrics"])
        return {m.name for r in requests for rm in r.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}

    def wait_for(self, condition, timeout_s: float = 10.0) -> bool:
        """Poll ``condition()`` until it is true or the timeout passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.02)
        return bool(condition())


def _handler(sink: OTLPSink):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            signal = _SIGNALS.get(self.path)
            if signal is None:
                return self._reply(404, b"unknown path")
            name, request_type, response_type = signal
            length = int(self.headers.get("Content-Length") or 0)
            if length > _MAX_BODY:
                return self._reply(413, b"body too large")
            body = self.rfile.read(length)
            try:
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = request_type.FromString(body)
            except Exception as exc:
                return self._reply(400, f"cannot decode OTLP protobuf: {exc}".encode())
            sink._keep(name, request, "http")
            self._reply(200, response_type().SerializeToString(), "application/x-protobuf")

        def _reply(self, status, body, content_type="text/plain"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_analyzer(ports, state_dir, *flags, env=None, output=None, ready_within=60.0) -> subprocess.Popen:
    """``otelml analyzer`` as a real process on ``ports`` (gRPC, HTTP, status), once it answers ``/readyz`` (within
    ``ready_within`` seconds: a restart replays the journal, slowly on a loaded machine). Its log goes to ``output``
    (an open file), else to a pipe that is read if it fails to start."""
    command = [sys.executable, "-m", "otelml.cli", "analyzer", "--otlp-grpc", f"127.0.0.1:{ports[0]}"]
    command += ["--otlp-http", f"127.0.0.1:{ports[1]}", "--http", f"127.0.0.1:{ports[2]}", "--state-dir", state_dir]
    proc = subprocess.Popen(
        [*command, *flags],
        stdout=output or subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=output is None,
        env=dict(os.environ, **(env or {})),
    )
    deadline = time.monotonic() + ready_within
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports[2]}/readyz", timeout=1) as response:
                if response.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    proc.wait(10)
    log = proc.stdout.read() if output is None else f"see {getattr(output, 'name', 'its log')}"
    raise RuntimeError(f"the analyzer did not become ready: {log[-3000:]}")

"""The analyzer's transports with the real OpenTelemetry exporters: TLS plus a bearer token on every listener
(OTLP/HTTP, OTLP/gRPC, status API), and the plain SDK's cumulative counter and explicit-bucket histogram over
OTLP/gRPC, reset in between, counted once in the closed windows."""

import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as metrics_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from otelml import semconv

TOKEN = "tls-s3cret"
HOUR_MS = 3_600_000  # the periodic readers never fire on their own; the tests collect explicitly
# The SDK's default explicit bucket boundaries (the OpenTelemetry metrics SDK specification's defaults).
DEFAULT_BOUNDS = (0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0, 10000.0)


@pytest.fixture(autouse=True)
def no_otel_environment(monkeypatch):
    """Exporters and the analyzer's own telemetry read OTEL_* variables; none may leak in from the environment."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


def certificate(directory, name):
    """A self-signed certificate for 127.0.0.1 and localhost: ``(cert path, key path)``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed; it makes the self-signed test certificate")
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


def trusting(ca_file):
    """A client SSL context that trusts only ``ca_file`` and checks the host name."""
    context = ssl.create_default_context(cafile=ca_file)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    return context


def https(port, path, context, token=None, body=None):
    """GET (or POST a protobuf ``body``) over HTTPS: ``(status, body)``."""
    request = urllib.request.Request(f"https://127.0.0.1:{port}{path}", data=body, method="POST" if body else "GET")
    if body is not None:
        request.add_header("Content-Type", "application/x-protobuf")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def tls_rows(s, context):
    """Rows of model "tls" in ``/api/models`` over HTTPS with the token; ``None`` while the model is unknown."""
    status, body = https(s.api.port, "/api/models", context, token=TOKEN)
    assert status == 200
    return next((m["rows"] for m in json.loads(body)["models"] if (m["model"], m["version"]) == ("tls", "1")), None)


def refused(url, context=None):
    """The connection error a client gets from ``url``; fails if the server answered at all."""
    with pytest.raises(OSError) as caught:
        urllib.request.urlopen(url, timeout=10, context=context)
    error = caught.value
    assert not isinstance(error, urllib.error.HTTPError), f"got an HTTP answer: {error}"
    assert not isinstance(getattr(error, "reason", error), TimeoutError), "timed out instead of being refused"
    return error


def rows_request(count):
    """A hand-built OTLP request: one delta point of the rows counter for model "tls" version "1"."""
    now = time.time_ns()
    attributes = [
        KeyValue(key=semconv.MODEL_NAME, value=AnyValue(string_value="tls")),
        KeyValue(key=semconv.MODEL_VERSION, value=AnyValue(string_value="1")),
    ]
    point = metrics_pb2.NumberDataPoint(
        attributes=attributes, start_time_unix_nano=now - 10**9, time_unix_nano=now, as_int=count
    )
    metric = metrics_pb2.Metric(
        name=semconv.METRIC_ROWS,
        sum=metrics_pb2.Sum(
            aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_DELTA, is_monotonic=True, data_points=[point]
        ),
    )
    return metrics_pb.ExportMetricsServiceRequest(
        resource_metrics=[metrics_pb2.ResourceMetrics(scope_metrics=[metrics_pb2.ScopeMetrics(metrics=[metric])])]
    )


def send_rows(exporter, rows, instance):
    """Record ``rows`` on the SDK's rows counter and export them once through ``exporter``."""
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=HOUR_MS)
    resource = Resource({"service.name": "tls-client", "service.instance.id": instance})
    provider = MeterProvider(metric_readers=[reader], resource=resource)
    counter = provider.get_meter("transport-test").create_counter(semconv.METRIC_ROWS)
    counter.add(rows, {semconv.MODEL_NAME: "tls", semconv.MODEL_VERSION: "1"})
    reader.collect()  # exports synchronously
    provider.shutdown()  # exports the same cumulative total once more: a delta of zero


def grpc_status(stub, request, **kwargs):
    with pytest.raises(grpc.RpcError) as caught:
        stub.Export(request, timeout=10, **kwargs)
    return caught.value.code()


def test_tls_and_bearer_token_on_every_listener_with_the_real_exporters(server, tmp_path, monkeypatch):
    # requests lets these variables override a session's CA file (psf/requests#3829), i.e. certificate_file
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    cert, key = certificate(tmp_path, "analyzer")
    other_ca, _ = certificate(tmp_path, "stranger")
    s = server(tls_cert=cert, tls_key=key, auth_token=TOKEN)
    context = trusting(cert)
    with open(cert, "rb") as f:
        ca_bytes = f.read()
    with open(other_ca, "rb") as f:
        other_ca_bytes = f.read()
    header = {"Authorization": f"Bearer {TOKEN}"}

    # (a) the OTLP/HTTP exporter over HTTPS, trusting the self-signed certificate
    http_exporter = HttpMetricExporter(
        endpoint=f"https://127.0.0.1:{s.http.port}/v1/metrics", certificate_file=cert, headers=header
    )
    send_rows(http_exporter, 7, "http")
    assert tls_rows(s, context) == 7

    # (b) the OTLP/gRPC exporter over TLS, trusting the same certificate
    # gRPC metadata keys must be lower case: the exporter passes {"Authorization": ...} on and grpc refuses it
    grpc_exporter = GrpcMetricExporter(
        endpoint=f"127.0.0.1:{s.grpc.port}",
        insecure=False,
        headers={"authorization": f"Bearer {TOKEN}"},
        credentials=grpc.ssl_channel_credentials(root_certificates=ca_bytes),
    )
    send_rows(grpc_exporter, 5, "grpc")
    assert tls_rows(s, context) == 12

    # TLS but no token: 401 on HTTP (OTLP and the status API), UNAUTHENTICATED on gRPC; nothing is counted
    status, reply = https(s.http.port, "/v1/metrics", context, body=rows_request(100).SerializeToString())
    assert status == 401 and b"bearer token" in reply
    assert https(s.api.port, "/api/models", context)[0] == 401
    assert (
        https(s.http.port, "/v1/metrics", context, token="wrong", body=rows_request(100).SerializeToString())[0] == 401
    )
    tls_channel = grpc.secure_channel(f"127.0.0.1:{s.grpc.port}", grpc.ssl_channel_credentials(ca_bytes))
    stub = metrics_grpc.MetricsServiceStub(tls_channel)
    assert grpc_status(stub, rows_request(100)) == grpc.StatusCode.UNAUTHENTICATED
    assert tls_rows(s, context) == 12
    stub.Export(rows_request(1), metadata=[("authorization", f"Bearer {TOKEN}")], timeout=10)  # the channel works
    assert tls_rows(s, context) == 13
    tls_channel.close()
    assert https(s.api.port, "/healthz", context) == (200, b'{"status": "ok"}')  # probes stay open, over TLS

    # plain HTTP and plain gRPC are refused on the TLS ports
    for port in (s.api.port, s.http.port):
        refused(f"http://127.0.0.1:{port}/healthz")
    plain = grpc.insecure_channel(f"127.0.0.1:{s.grpc.port}")
    assert (
        grpc_status(
            metrics_grpc.MetricsServiceStub(plain), rows_request(100), metadata=[("authorization", f"Bearer {TOKEN}")]
        )
        == grpc.StatusCode.UNAVAILABLE
    )
    plain.close()

    # a client trusting another CA refuses the analyzer's certificate
    for port in (s.api.port, s.http.port):
        error = refused(f"https://127.0.0.1:{port}/healthz", context=trusting(other_ca))
        assert isinstance(error.reason, ssl.SSLCertVerificationError)
    stranger = grpc.secure_channel(f"127.0.0.1:{s.grpc.port}", grpc.ssl_channel_credentials(other_ca_bytes))
    assert (
        grpc_status(
            metrics_grpc.MetricsServiceStub(stranger),
            rows_request(100),
            metadata=[("authorization", f"Bearer {TOKEN}")],
        )
        == grpc.StatusCode.UNAVAILABLE
    )
    stranger.close()
    assert tls_rows(s, context) == 13
    health = json.loads(https(s.api.port, "/api/health", context, token=TOKEN)[1])
    assert health["points"]["rejected"] == 0


LATENCY = "raw.latency"
ON_THE_BOUNDS = [0.0, 5.0, 10.0, 250.0, 10000.0, 20000.0]  # bucket i holds (bounds[i-1], bounds[i]]


def test_raw_sdk_cumulative_counter_and_explicit_histogram_over_grpc_count_once_across_a_reset(server):
    s = server(window=1, lateness=0)
    rng = np.random.default_rng(7)
    attributes = {semconv.MODEL_NAME: "raw", semconv.MODEL_VERSION: "1"}
    rows_sent, recorded = 0, []
    for run in range(2):  # a second meter provider: new start times, a reset of every cumulative stream
        exporter = GrpcMetricExporter(
            endpoint=f"http://127.0.0.1:{s.grpc.port}",
            insecure=True,
            preferred_temporality={
                Counter: AggregationTemporality.CUMULATIVE,
                Histogram: AggregationTemporality.CUMULATIVE,
            },
        )
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=HOUR_MS)
        provider = MeterProvider(metric_readers=[reader], resource=Resource({"service.name": "raw"}))
        meter = provider.get_meter("app")
        rows = meter.create_counter(semconv.METRIC_ROWS)
        latency = meter.create_histogram(LATENCY)  # default aggregation: explicit buckets
        for export in range(2):  # each export carries the running totals since the provider started
            values = [float(v) for v in rng.lognormal(3.0, 1.8, size=25 + 10 * run + export)] + ON_THE_BOUNDS
            for value in values:
                latency.record(value, attributes)
            rows.add(len(values), attributes)
            recorded += values
            rows_sent += len(values)
            reader.collect()
        provider.shutdown()  # one more export of unchanged totals

    analyzer = s.analyzer
    points = analyzer.health()["points"]
    assert points["rejected"] == 0 and points.get("stale", 0) == 0 and points["accepted"] == 2 * 2 * 3
    mv = analyzer.state.models[("raw", "1")]
    assert mv.rows == rows_sent
    # close every window: a wall-clock time past the idle timeout, well inside the history limit
    assert analyzer.tick(time.time_ns() + int((s.config.idle_timeout + 2) * 1e9)) > 0
    assert not mv.open
    analyzer.checkpoint()  # closed windows go to the store (memory keeps the last 60; many closed empty here)
    history = analyzer.store.windows("raw", "1", s.config.limits.history)
    assert sum(w.counter(semconv.METRIC_ROWS) for w in history) == rows_sent  # counted once across the reset

    windows = [w.explicit[(LATENCY, ())] for w in history if (LATENCY, ()) in w.explicit]
    assert windows and all(h.bounds == DEFAULT_BOUNDS for h in windows)
    expected = np.bincount(np.searchsorted(DEFAULT_BOUNDS, recorded, side="left"), minlength=len(DEFAULT_BOUNDS) + 1)
    assert (expected > 0).sum() >= 8  # the recorded values spread over many buckets
    assert np.sum([h.counts for h in windows], axis=0).tolist() == expected.tolist()
    assert sum(h.count for h in windows) == len(recorded) == rows_sent


def test_an_unauthenticated_sender_is_refused_before_its_body_is_read(server):
    """The token is checked from the headers: a sender announcing 60 MiB without a token gets its 401 before it has
    sent any of it (eight such posts once took the analyzer from 128 to 611 MB)."""
    import socket

    s = server(auth_token=TOKEN)
    with socket.create_connection(("127.0.0.1", s.http.port), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Content-Length: 62914560\r\n\r\n" + b"\0" * 1024
        )
        reply = sock.recv(4096)  # without the check in prepare() this waits for the other 60 MiB and times out
    assert reply.startswith(b"HTTP/1.1 401") and b"bearer token" in reply

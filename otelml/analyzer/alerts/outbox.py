"""Alert delivery: a durable outbox in the store, drained in event-time order by a thread that exports OTLP log
records (encoded and queued by ``records``).

An alert event is written to the outbox (SQLite, in its own transaction) before anything tries to send it, and
removed only after the exporter reports success. A backend that is down keeps events waiting (retried with back-off
up to 30 s); an analyzer killed with ``kill -9`` finds them at restart. Records carry stable event ids, and replays
of the journal after a restart re-create identical events that the outbox ignores, so nothing is lost and nothing is
sent twice by the analyzer (a backend that received a batch but failed to answer may see it again, with the same
ids).

The standard OpenTelemetry log exporters do the transport (endpoint, headers, TLS, compression from
``OTEL_EXPORTER_OTLP_*`` or the analyzer's settings); otelml hands them a ready ``ExportLogsServiceRequest`` so the
records keep their event name, which the SDK's log record type does not carry in every version.
"""

from __future__ import annotations

import logging
import os
import threading

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as _GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as _HttpLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from ... import semconv
from ..._version import __version__
from ...sdk.encode import key_values
from ...sdk.export import otlp_exporter

logger = logging.getLogger("otelml.analyzer")


class _GrpcLogRequestExporter(_GrpcLogExporter):
    """The SDK's gRPC log exporter, fed an encoded ``ExportLogsServiceRequest``."""

    def _translate_data(self, data):
        return data

    def _count_data(self, data):
        return sum(len(sl.log_records) for rl in data.resource_logs for sl in rl.scope_logs)

    def send(self, request) -> bool:
        return self._export(request).name == "SUCCESS"


class _HttpLogRequestExporter(_HttpLogExporter):
    """The SDK's HTTP/protobuf log exporter, fed an encoded ``ExportLogsServiceRequest``."""

    def send(self, request) -> bool:
        if self._shutdown:
            return False
        return bool(self._client.export(request.SerializeToString()).success)


def log_exporter(protocol: str, endpoint: str | None, headers: dict | None, timeout_s: float | None):
    """An OTLP log exporter with ``send(ExportLogsServiceRequest) -> bool``; ``None`` values come from the env."""
    return otlp_exporter(
        _GrpcLogRequestExporter, _HttpLogRequestExporter, "/v1/logs", protocol, endpoint, headers, timeout_s
    )


def request(records: list[bytes], resource_attributes: dict) -> ExportLogsServiceRequest:
    scope = logs_pb2.ScopeLogs(
        scope=InstrumentationScope(name=semconv.ANALYZER_SCOPE_NAME, version=__version__),
        log_records=[logs_pb2.LogRecord.FromString(r) for r in records],
    )
    return ExportLogsServiceRequest(
        resource_logs=[
            logs_pb2.ResourceLogs(resource=Resource(attributes=key_values(resource_attributes)), scope_logs=[scope])
        ]
    )


class Sender:
    """Drains the store's outbox in order on a daemon thread."""

    def __init__(self, store, exporter_factory, resource_attributes: dict, batch: int = 100):
        self.store = store
        self._factory = exporter_factory
        self._exporter = None
        self.resource_attributes = resource_attributes
        self.batch = batch
        self.delivered = 0
        self.failures = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="otelml-alerts", daemon=True)

    def start(self) -> "Sender":
        self._thread.start()
        return self

    def notify(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            try:
                sent = self.drain_once()
            except Exception:
                logger.exception("alert delivery failed")
                sent = None
            if sent is None:  # the backend did not take it: back off
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 1.0
            if sent == 0:
                self._wake.wait(1.0)
                self._wake.clear()

    def drain_once(self) -> int | None:
        """Send the oldest waiting records; returns how many were delivered, or None if the export failed."""
        rows = self.store.outbox_head(self.batch)
        if not rows:
            return 0
        if self._exporter is None:
            self._exporter = self._factory()
        if not self._exporter.send(request([payload for _, payload in rows], self.resource_attributes)):
            self.failures += 1
            return None
        self.store.outbox_remove([seq for seq, _ in rows])
        self.delivered += len(rows)
        return len(rows)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(10)
        if self._exporter is not None:
            self._exporter.shutdown()


def configured_endpoint(endpoint: str | None) -> str | None:
    """The alert endpoint: the setting, else the OTLP logs or general endpoint of the environment."""
    return (
        endpoint or os.environ.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )

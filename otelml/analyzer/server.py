"""``otelml analyzer``: the analyzer with its receivers and status API, until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import threading

from .alerts import outbox
from .api.routes import api_server
from .api.telemetry import start as start_telemetry
from .config import AnalyzerConfig
from .ingest.receivers import GrpcReceiver, http_receiver
from .service import Analyzer

logger = logging.getLogger("otelml.analyzer")


class Server:
    """The analyzer plus its listeners; ``start()``, then ``stop()``."""

    def __init__(self, config: AnalyzerConfig):
        self.config = config
        self.analyzer = Analyzer(config)
        self.grpc = GrpcReceiver(self.analyzer, config.otlp_grpc)
        self.http = http_receiver(self.analyzer, config.otlp_http)
        self._up = False
        self.api = api_server(self.analyzer, config.http, lambda: self._up)
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="otelml-analyzer-tick", daemon=True)

    def start(self) -> "Server":
        self.api.start()
        self.grpc.start()
        self.http.start()
        self._up = True
        self._ticker.start()
        self.telemetry = start_telemetry(self.analyzer)
        self.sender = None
        if self.analyzer.alert_queue.endpoint:
            self.sender = outbox.Sender(
                self.analyzer.store, self._alert_exporter, {"service.name": "otelml-analyzer"}
            ).start()
        else:
            logger.warning(
                "no alert endpoint (--alerts-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT): alerts are logged only"
            )
        logger.info(
            "otelml analyzer: OTLP/gRPC on port %d, OTLP/HTTP on port %d, status on port %d, state in %s",
            self.grpc.port,
            self.http.port,
            self.api.port,
            self.config.state_dir,
        )
        return self

    def _alert_exporter(self):
        import os

        protocol = (
            self.config.alerts_protocol
            or os.environ.get("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL")
            or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        )
        return outbox.log_exporter(protocol, self.config.alerts_endpoint, None, None)

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.analyzer.tick()
                if self.sender is not None and self.analyzer.alert_queue.queued:
                    self.analyzer.alert_queue.queued = False
                    self.sender.notify()
            except Exception:
                logger.exception("analyzer tick failed")

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._up = False
        self._stop.set()
        self.grpc.stop()
        self.http.stop()
        self.api.stop()
        if self.sender is not None:
            self.sender.stop()
        if self.telemetry is not None:
            self.telemetry.shutdown()
        self.analyzer.close()

    def serve_forever(self) -> None:
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        signal.signal(signal.SIGINT, lambda *_: done.set())
        done.wait()
        self.stop()

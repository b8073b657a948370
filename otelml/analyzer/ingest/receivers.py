"""OTLP receivers (gRPC and HTTP), as the OTLP specification defines them.

- OTLP/gRPC: ``MetricsService/Export`` and ``TraceService/Export`` with raw-bytes handlers (the request is parsed
  once, by the decoder, and journaled as received); receive limit raised to 64 MiB. Undecodable requests get
  ``INVALID_ARGUMENT``, an overloaded analyzer ``UNAVAILABLE`` (which exporters retry), a missing or wrong bearer
  token ``UNAUTHENTICATED``.
- OTLP/HTTP: ``POST /v1/metrics`` and ``/v1/traces`` with ``application/x-protobuf`` or ``application/json``,
  optionally gzip. Answers: 200 with the export response (partial success when points were rejected), 400 with a
  ``google.rpc.Status`` for undecodable bodies, 413 past 64 MiB after decompression, 415 for other content types,
  503 with ``Retry-After`` when overloaded, 401 without the bearer token. Responses use the request's encoding.

Tornado serves HTTP, each server on its own IOLoop thread (``web``); the status page and API are ``api.routes``.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from concurrent import futures
from typing import TYPE_CHECKING

import grpc
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb

from ..web import HttpThread, require_tornado, ssl_context, token_ok, tornado
from .decode import DecodeError, decode_metrics, decode_traces
from .errors import Overloaded

if TYPE_CHECKING:
    from ..service import Analyzer

logger = logging.getLogger("otelml.analyzer")

MAX_BODY = 64 * 1024 * 1024
PROTOBUF = "application/x-protobuf"
JSON = "application/json"

_SIGNALS = {
    "metrics": (
        decode_metrics,
        metrics_pb.ExportMetricsServiceResponse,
        metrics_pb.ExportMetricsPartialSuccess,
        "rejected_data_points",
    ),
    "traces": (
        decode_traces,
        trace_pb.ExportTraceServiceResponse,
        trace_pb.ExportTracePartialSuccess,
        "rejected_spans",
    ),
}


def _response(signal: str, applied):
    _, response_type, partial_type, field_name = _SIGNALS[signal]
    response = response_type()
    if applied.rejected:
        response.partial_success.CopyFrom(
            partial_type(**{field_name: applied.rejected, "error_message": "; ".join(applied.errors)[:4096]})
        )
    return response


# --- gRPC ---------------------------------------------------------------------------------------------------------
class GrpcReceiver:
    def __init__(self, analyzer: Analyzer, address: str):
        config = analyzer.config
        self.analyzer = analyzer
        self.server = grpc.server(
            # as many workers as requests may be in flight, so that each waits at most max_wait for its turn and
            # is then answered UNAVAILABLE, rather than queueing unseen behind a few workers
            futures.ThreadPoolExecutor(max_workers=config.max_inflight, thread_name_prefix="otlp-grpc"),
            options=[("grpc.max_receive_message_length", MAX_BODY), ("grpc.max_send_message_length", MAX_BODY)],
        )
        handlers = {
            "opentelemetry.proto.collector.metrics.v1.MetricsService": (
                "metrics",
                metrics_pb.ExportMetricsServiceResponse,
            ),
            "opentelemetry.proto.collector.trace.v1.TraceService": ("traces", trace_pb.ExportTraceServiceResponse),
        }
        for service, (signal, response_type) in handlers.items():
            handler = grpc.unary_unary_rpc_method_handler(
                self._handler(signal),
                request_deserializer=None,  # raw bytes: decoded once, journaled as received
                response_serializer=response_type.SerializeToString,
            )
            self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, {"Export": handler}),))
        if config.tls_cert:
            with open(config.tls_cert, "rb") as cert, open(config.tls_key, "rb") as key:
                credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
            self.port = self.server.add_secure_port(address, credentials)
        else:
            self.port = self.server.add_insecure_port(address)
        if self.port == 0:
            raise OSError(f"cannot listen for OTLP/gRPC on {address}")

    def _handler(self, signal: str):
        decode = _SIGNALS[signal][0]
        token = self.analyzer.config.auth_token

        def export(body: bytes, context):
            metadata = dict(context.invocation_metadata())
            if not token_ok(token, metadata.get("authorization")):
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
            try:
                decoded = decode(body, PROTOBUF)
            except DecodeError as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            try:
                applied = self.analyzer.ingest(signal, PROTOBUF, body, decoded)
            except Overloaded:
                context.abort(grpc.StatusCode.UNAVAILABLE, "analyzer overloaded; retry later")
            return _response(signal, applied)

        return export

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop(grace=2).wait()


# --- HTTP ---------------------------------------------------------------------------------------------------------
def _inflate(body: bytes) -> bytes:
    """gzip-decoded body, refusing to grow past MAX_BODY (decompression bombs)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = inflater.decompress(body, MAX_BODY + 1)
    if len(out) > MAX_BODY:
        raise OverflowError
    if not inflater.eof:
        raise zlib.error("truncated gzip body")
    return out


def http_receiver(analyzer: Analyzer, address: str) -> HttpThread:
    require_tornado()
    token = analyzer.config.auth_token
    # Decoding and ingest run on these threads, not on the IOLoop, so that the loop goes on reading other requests
    # and an overloaded analyzer answers 503 within max_wait instead of holding senders in its socket queue
    workers = futures.ThreadPoolExecutor(max_workers=analyzer.config.max_inflight, thread_name_prefix="otlp-http")

    @tornado.web.stream_request_body
    class Export(tornado.web.RequestHandler):
        """Streams the body in, keeping at most MAX_BODY bytes, so an oversized request costs no memory.
        Past 16 x MAX_BODY tornado itself closes the connection."""

        def initialize(self, signal):
            self.signal = signal
            self.chunks, self.size = [], 0

        def prepare(self):
            """Credentials from the headers, before any of the body is read: an unauthenticated sender costs no
            memory, whatever the size it announces."""
            if not token_ok(token, self.request.headers.get("Authorization")):
                content_type = (self.request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                self._status(401, code_pb2.UNAUTHENTICATED, "missing or wrong bearer token", content_type == JSON)

        def data_received(self, chunk):
            self.size += len(chunk)
            if self.size <= MAX_BODY:
                self.chunks.append(chunk)
            else:  # read on so the sender gets the 413, keep nothing
                self.chunks = []

        async def post(self):
            content_type = (self.request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            json_wanted = content_type == JSON
            if self.size > MAX_BODY:
                return self._status(413, code_pb2.RESOURCE_EXHAUSTED, "body over 64 MiB", json_wanted)
            body = b"".join(self.chunks)
            encoding = (self.request.headers.get("Content-Encoding") or "").lower()
            if encoding == "gzip":
                try:
                    body = _inflate(body)
                except OverflowError:
                    return self._status(413, code_pb2.RESOURCE_EXHAUSTED, "body over 64 MiB after gzip", json_wanted)
                except zlib.error as exc:
                    return self._status(400, code_pb2.INVALID_ARGUMENT, f"bad gzip body: {exc}", json_wanted)
            elif encoding not in ("", "identity"):
                return self._status(
                    415, code_pb2.INVALID_ARGUMENT, f"unsupported Content-Encoding {encoding!r}", json_wanted
                )
            try:
                applied = await asyncio.get_running_loop().run_in_executor(workers, self._ingest, body, content_type)
            except DecodeError as exc:
                return self._status(exc.status, code_pb2.INVALID_ARGUMENT, str(exc), json_wanted)
            except Overloaded:
                self.set_header("Retry-After", "1")
                return self._status(503, code_pb2.UNAVAILABLE, "analyzer overloaded; retry later", json_wanted)
            self._message(200, _response(self.signal, applied), json_wanted)

        def _ingest(self, body: bytes, content_type: str):
            return analyzer.ingest(self.signal, content_type, body, _SIGNALS[self.signal][0](body, content_type))

        def _status(self, http_status, code, message, json_wanted):
            self._message(http_status, status_pb2.Status(code=code, message=message), json_wanted)

        def _message(self, http_status, message, json_wanted):
            self.set_status(http_status)
            if json_wanted:
                self.set_header("Content-Type", JSON)
                self.finish(json_format.MessageToJson(message, indent=None))
            else:
                self.set_header("Content-Type", PROTOBUF)
                self.finish(message.SerializeToString())

        def log_exception(self, typ, value, tb):
            logger.error("OTLP/HTTP handler failed", exc_info=(typ, value, tb))

    app = tornado.web.Application(
        [(r"/v1/metrics", Export, {"signal": "metrics"}), (r"/v1/traces", Export, {"signal": "traces"})]
    )
    return HttpThread(app, address, ssl_context(analyzer.config), 16 * MAX_BODY)  # the handler enforces MAX_BODY

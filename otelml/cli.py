"""The ``otelml`` command.

otelml version                          print the version
otelml sink [--grpc HOST:PORT] [--http HOST:PORT] [--seconds N]
                                        receive OTLP and print what arrives (a quick check of an app's telemetry)
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from ._version import __version__


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {address!r}")
    return host, int(port)


def _sink(args) -> int:
    from .testing import OTLPSink, attributes

    (grpc_host, grpc_port), (http_host, http_port) = args.grpc, args.http
    if grpc_host != http_host:
        print("otelml sink: --grpc and --http must use the same host", file=sys.stderr)
        return 2
    sink = OTLPSink(grpc_host, grpc_port, http_port)
    try:
        sink.start()
    except (OSError, RuntimeError) as exc:
        print(f"otelml sink: cannot listen: {exc}", file=sys.stderr)
        return 1
    print(f"otelml sink: OTLP/gRPC on {sink.grpc_endpoint}, OTLP/HTTP on {sink.http_endpoint}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    seen = {"metrics": 0, "traces": 0, "logs": 0}
    while not stop.wait(1.0 if args.seconds is None else min(1.0, args.seconds)):
        for kind, requests in sink.requests.items():
            for request in requests[seen[kind] :]:
                for line in _summary(kind, request, attributes):
                    print(line, flush=True)
            seen[kind] = len(requests)
        if args.seconds is not None:
            args.seconds -= 1.0
            if args.seconds <= 0:
                break
    sink.stop()
    return 0


def _summary(kind, request, attributes):
    if kind == "traces":
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    yield f"span   {span.name} trace={span.trace_id.hex()} {attributes(span.attributes)}"
    elif kind == "metrics":
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    data = getattr(metric, metric.WhichOneof("data"))
                    for point in data.data_points:
                        value = point.count if hasattr(point, "count") else point.as_int or point.as_double
                        yield f"metric {metric.name} {attributes(point.attributes)} {value}"
    else:
        yield f"logs   {sum(len(s.log_records) for r in request.resource_logs for s in r.scope_logs)} records"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="otelml", description="OpenTelemetry-native monitoring of ML models")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("version", help="print the version")
    sink = sub.add_parser("sink", help="receive OTLP and print what arrives")
    sink.add_argument("--grpc", type=_split, default=("127.0.0.1", 4317), metavar="HOST:PORT")
    sink.add_argument("--http", type=_split, default=("127.0.0.1", 4318), metavar="HOST:PORT")
    sink.add_argument("--seconds", type=float, default=None, help="stop after this long (default: until Ctrl-C)")
    args = parser.parse_args(argv)
    if args.command == "version":
        print(__version__)
        return 0
    return _sink(args)


if __name__ == "__main__":
    sys.exit(main())

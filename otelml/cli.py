"""The ``otelml`` command.

otelml version                          print the version
otelml sink [--grpc HOST:PORT] [--http HOST:PORT] [--seconds N]
                                        receive OTLP and print what arrives (a quick check of an app's telemetry)
"""

from __future__ import annotations

import argparse
import json
import logging
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
        for rl in request.resource_logs:
            for sl in rl.scope_logs:
                for record in sl.log_records:
                    body = record.body.string_value or str(record.body).strip()
                    yield f"log    {record.severity_text or record.severity_number} {record.event_name} {body}"


class _JsonFormatter(logging.Formatter):
    """One JSON object per log line: time, level, logger, message (and the exception, if any)."""

    def format(self, record):
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _analyzer(args) -> int:
    from .analyzer import config as analyzer_config
    from .analyzer.server import Server

    handler = logging.StreamHandler()
    handler.setFormatter(
        _JsonFormatter()
        if args.log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    try:
        config = analyzer_config.load(
            args.config,
            otlp_grpc=args.otlp_grpc,
            otlp_http=args.otlp_http,
            http=args.http,
            state_dir=args.state_dir,
            window=args.window,
            lateness=args.lateness,
            idle_timeout=args.idle_timeout,
            warmup=args.warmup,
            false_alarm_days=args.false_alarm_days,
            alerts_endpoint=args.alerts_endpoint,
            alerts_protocol=args.alerts_protocol,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            auth_token=args.auth_token,
        )
        server = Server(config).start()
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"otelml analyzer: {exc}", file=sys.stderr)
        return 1
    print(
        f"otelml analyzer: OTLP/gRPC :{server.grpc.port}, OTLP/HTTP :{server.http.port}, "
        f"status http://{config.http.rpartition(':')[0]}:{server.api.port}/api/models, state {config.state_dir}",
        flush=True,
    )
    server.serve_forever()
    return 0


def _reference(args) -> int:
    from .analyzer import datasets, references
    from .analyzer.store import CANDIDATE, PINNED, ReferenceActionError, Store

    store = Store(args.state_dir)
    try:
        if args.action == "build":
            names, numeric, skipped = datasets.load(args.data)
            ref = references.from_data(args.model, args.version, names, numeric, "dataset: " + ", ".join(args.data))
            status = CANDIDATE if store.pinned(args.model, args.version) is not None else PINNED
            store.add_reference(ref, status)
            print(
                f"{status} reference {ref.hash} for {args.model} {args.version}: {ref.rows} rows, "
                f"{len(names)} features" + (f" (non-numeric columns left out: {', '.join(skipped)})" if skipped else "")
            )
            if status == CANDIDATE:
                print(
                    f"a pinned reference exists; to replace it: otelml reference promote --model {args.model} "
                    f"--version {args.version} --hash {ref.hash} --state-dir {args.state_dir}"
                )
        elif args.action == "show":
            shown = [dict(ref.summary(), status=status) for status, ref in store.references(args.model, args.version)]
            print(json.dumps(shown, indent=2))
        elif args.action == "pin":
            store.pin(args.model, args.version, args.hash)
            print(f"pinned {args.hash} for {args.model} {args.version}")
        else:
            replaced = store.promote(args.model, args.version, args.hash)
            print(f"promoted {args.hash} for {args.model} {args.version}; it replaces {replaced}")
    except (ReferenceActionError, ValueError, OSError) as exc:
        print(f"otelml reference {args.action}: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


def _state(args) -> int:
    """``otelml state migrate``: bring back the references an earlier otelml pickled, if the operator trusts them."""
    from .analyzer.references import Reference, content_hash
    from .analyzer.store import Store

    store = Store(args.state_dir)  # sets an earlier otelml's pickles aside, unread
    try:
        legacy = store.legacy_references()
        if not args.trust_pickles:
            print(
                f"{len(legacy)} references pickled by an earlier otelml wait in {store.path}; loading a pickle runs "
                "whatever code it holds, so they are migrated only with --trust-pickles, for a file only you could "
                "have written"
            )
            return 1 if legacy else 0
        import pickle  # the one place that reads a pickle: the operator vouched for this file

        for model, version, ref_hash, status, data in legacy:
            try:
                ref = pickle.loads(data)
            except Exception as exc:  # a class that is gone, a damaged row: the others still come back
                ref = exc
            if not isinstance(ref, Reference) or content_hash(ref.histograms) != ref_hash:
                print(f"{model} {version} {ref_hash}: does not load as a reference of that hash; left in legacy_refs")
                continue
            stored = store.restore_legacy_reference(ref, status, ref_hash)
            print(f"{model} {version} {ref_hash}: migrated as {stored}" + (" (was pinned)" if stored != status else ""))
    finally:
        store.close()
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="otelml", description="OpenTelemetry-native monitoring of ML models")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("version", help="print the version")
    sink = sub.add_parser("sink", help="receive OTLP and print what arrives")
    sink.add_argument("--grpc", type=_split, default=("127.0.0.1", 4317), metavar="HOST:PORT")
    sink.add_argument("--http", type=_split, default=("127.0.0.1", 4318), metavar="HOST:PORT")
    sink.add_argument("--seconds", type=float, default=None, help="stop after this long (default: until Ctrl-C)")

    analyzer = sub.add_parser("analyzer", help="run the analysis service")
    analyzer.add_argument("--otlp-grpc", metavar="HOST:PORT", help="OTLP/gRPC receiver (default 127.0.0.1:4317)")
    analyzer.add_argument("--otlp-http", metavar="HOST:PORT", help="OTLP/HTTP receiver (default 127.0.0.1:4318)")
    analyzer.add_argument("--http", metavar="HOST:PORT", help="health, status and query API (default 127.0.0.1:8080)")
    analyzer.add_argument("--state-dir", metavar="DIR", help="where state is kept (default ./otelml-state)")
    analyzer.add_argument("--config", metavar="FILE", help="TOML (or YAML) file with the same settings")
    analyzer.add_argument("--window", type=float, metavar="SECONDS", help="window length (default 60)")
    analyzer.add_argument("--lateness", type=float, metavar="SECONDS", help="allowed lateness (default 30)")
    analyzer.add_argument("--idle-timeout", type=float, metavar="SECONDS", help="close windows after silence (120)")
    analyzer.add_argument("--warmup", type=int, metavar="N", help="observations per feature for a live reference")
    analyzer.add_argument(
        "--false-alarm-days",
        type=float,
        metavar="DAYS",
        help="each detector: at most one false alarm per model per DAYS on average (default 30)",
    )
    analyzer.add_argument("--alerts-endpoint", metavar="URL", help="OTLP endpoint for alerts (log records)")
    analyzer.add_argument("--alerts-protocol", choices=["grpc", "http/protobuf"])
    analyzer.add_argument("--tls-cert", metavar="FILE")
    analyzer.add_argument("--tls-key", metavar="FILE")
    analyzer.add_argument("--auth-token", metavar="TOKEN", help="bearer token required by every listener")
    analyzer.add_argument("--log-format", choices=["text", "json"], default="text", help="json: one object a line")

    reference = sub.add_parser("reference", help="manage reference distributions")
    actions = reference.add_subparsers(dest="action", required=True)
    for action, help_text in [
        ("build", "build a reference from data files (CSV, .npy, Parquet)"),
        ("show", "list references"),
        ("pin", "pin a candidate for a version that has no pinned reference"),
        ("promote", "replace the pinned reference by a candidate (logged)"),
    ]:
        p = actions.add_parser(action, help=help_text)
        p.add_argument("--state-dir", required=True, metavar="DIR")
        p.add_argument("--model", required=action != "show")
        p.add_argument("--version", required=action != "show")
        if action in ("pin", "promote"):
            p.add_argument("--hash", required=True)
        if action == "build":
            p.add_argument("data", nargs="+", metavar="DATA")
    state = sub.add_parser("state", help="manage the state directory")
    state_actions = state.add_subparsers(dest="action", required=True)
    migrate = state_actions.add_parser("migrate", help="bring back references an earlier otelml pickled")
    migrate.add_argument("--state-dir", required=True, metavar="DIR")
    migrate.add_argument(
        "--trust-pickles", action="store_true", help="load the pickles: only for a file no one else could write"
    )
    demo = sub.add_parser("demo", help="the whole loop on one machine in about a minute")
    demo.add_argument("--http", default="127.0.0.1:8080", help="status page address")
    demo.add_argument("--state-dir")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from . import demo as demo_module

        return demo_module.main(["--http", args.http] + (["--state-dir", args.state_dir] if args.state_dir else []))
    if args.command == "version":
        print(__version__)
        return 0
    if args.command == "analyzer":
        return _analyzer(args)
    if args.command == "reference":
        return _reference(args)
    if args.command == "state":
        return _state(args)
    return _sink(args)


if __name__ == "__main__":
    sys.exit(main())

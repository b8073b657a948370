"""The ``otelml`` command (``otelml --help``, ``otelml COMMAND --help``: each option with its default).

otelml version                    print the version
otelml sink                       receive OTLP and print what arrives (a quick check of an app's telemetry)
otelml analyzer                   run the analysis service
otelml reference build|show|pin|promote
                                  manage reference distributions
otelml state migrate              bring back references an earlier otelml pickled
otelml demo                       the whole loop on one machine in about a minute

Commands that read or change existing state (``reference show``, ``pin``, ``promote``, ``state migrate``) never
create a state directory; every command checks its inputs before it creates anything.

(long: one small function per subcommand, beside the one parser that lists them all with their help.)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
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


def _check_readable(config, *settings: str) -> None:
    """ValueError naming the setting whose file cannot be read."""
    for name in settings:
        path = getattr(config, name)
        if path is not None:
            try:
                with open(path, "rb"):
                    pass
            except OSError as exc:
                raise ValueError(f"{name}: cannot read {path}: {exc.strerror or exc}") from None


def _analyzer(args) -> int:
    from .analyzer import Server, allocator, load_config

    allocator.limit_retention()  # before the receivers' threads allocate

    handler = logging.StreamHandler()
    handler.setFormatter(
        _JsonFormatter()
        if args.log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    try:
        config = load_config(
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
        _check_readable(config, "tls_cert", "tls_key")  # before the state directory is made
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


STORE_FILE = "otelml.sqlite3"  # the database a state directory holds (analyzer.store.Store)


class _NoState(Exception):
    """A command that needs existing state was pointed at a directory that holds none."""


def _existing_store(state_dir: str):
    """The store at ``state_dir``, which must exist: a command that only reads or changes state never creates a
    directory or database (a mistyped ``--state-dir`` must not leave an empty store behind)."""
    from .analyzer import Store

    if not os.path.isdir(state_dir):
        raise _NoState(f"no state at {state_dir}: the directory does not exist (check --state-dir)")
    if not os.path.isfile(os.path.join(state_dir, STORE_FILE)):
        raise _NoState(f"no state at {state_dir}: it holds no {STORE_FILE} (check --state-dir)")
    return Store(state_dir)


def _reference(args) -> int:
    from .analyzer import CANDIDATE, PINNED, ReferenceActionError, Store, from_data, load_dataset

    store = None
    try:
        if args.action == "build":
            # The inputs first: a missing or unreadable file fails before any state directory is made.
            names, numeric, skipped = load_dataset(args.data)
            ref = from_data(args.model, args.version, names, numeric, "dataset: " + ", ".join(args.data))
            store = Store(args.state_dir)
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
            return 0
        store = _existing_store(args.state_dir)
        if args.action == "show":
            shown = [dict(ref.summary(), status=status) for status, ref in store.references(args.model, args.version)]
            print(json.dumps(shown, indent=2))
        elif args.action == "pin":
            store.pin(args.model, args.version, args.hash)
            print(f"pinned {args.hash} for {args.model} {args.version}")
        else:
            replaced = store.promote(args.model, args.version, args.hash)
            print(f"promoted {args.hash} for {args.model} {args.version}; it replaces {replaced}")
    except (ReferenceActionError, _NoState, ValueError, OSError) as exc:
        print(f"otelml reference {args.action}: {exc}", file=sys.stderr)
        return 1
    finally:
        if store is not None:
            store.close()
    return 0


def _state(args) -> int:
    """``otelml state migrate``: bring back the references an earlier otelml pickled, if the operator trusts them."""
    from .analyzer import Reference, content_hash

    try:
        store = _existing_store(args.state_dir)  # sets an earlier otelml's pickles aside, unread
    except (_NoState, OSError) as exc:
        print(f"otelml state {args.action}: {exc}", file=sys.stderr)
        return 1
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


class _HelpFormatter(argparse.HelpFormatter):
    """Adds "(default: X)" to an option's help unless the text already names its default (options whose default
    comes from the analyzer's settings say it in their text, since their argparse default is None)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def _command(sub, name: str, text: str):
    """A subcommand with ``text`` as its line in the parent's help and as its own description."""
    return sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".", formatter_class=_HelpFormatter)


ANALYZER_OPTIONS = (  # (flag, type, metavar, help): each default is the analyzer's (analyzer.config.AnalyzerConfig)
    ("--otlp-grpc", str, "HOST:PORT", "OTLP/gRPC receiver address (default: 127.0.0.1:4317)"),
    ("--otlp-http", str, "HOST:PORT", "OTLP/HTTP receiver address (default: 127.0.0.1:4318)"),
    ("--http", str, "HOST:PORT", "health, status page and query API address (default: 127.0.0.1:8080)"),
    ("--state-dir", str, "DIR", "where journal, references and checkpoints are kept (default: ./otelml-state)"),
    ("--window", float, "SECONDS", "length of the tumbling windows detectors test (default: 60)"),
    ("--lateness", float, "SECONDS", "how long a window waits for late points before it closes (default: 30)"),
    ("--idle-timeout", float, "SECONDS", "close open windows after this much silence (default: 120)"),
    (
        "--warmup",
        int,
        "N",
        "observations per feature before a reference learned from live traffic is pinned and drift detection "
        "starts, for model versions without a built reference (default: 5000)",
    ),
    (
        "--false-alarm-days",
        float,
        "DAYS",
        "each detector raises at most one false alarm per model per DAYS on average (default: 30)",
    ),
    (
        "--alerts-endpoint",
        str,
        "URL",
        "OTLP endpoint alerts are sent to as log records (default: OTEL_EXPORTER_OTLP_LOGS_ENDPOINT or "
        "OTEL_EXPORTER_OTLP_ENDPOINT; with neither, alerts are only logged)",
    ),
    (
        "--alerts-protocol",
        str,
        "PROTOCOL",
        "grpc or http/protobuf, for --alerts-endpoint (default: OTEL_EXPORTER_OTLP_LOGS_PROTOCOL or "
        "OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf)",
    ),
    ("--tls-cert", str, "FILE", "PEM certificate: every listener serves TLS (needs --tls-key; default: plain text)"),
    ("--tls-key", str, "FILE", "PEM private key of --tls-cert (default: none)"),
    (
        "--auth-token",
        str,
        "TOKEN",
        "bearer token every listener requires (default: OTELML_AUTH_TOKEN, else none: no authentication)",
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otelml", description="OpenTelemetry-native monitoring of ML models", formatter_class=_HelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _command(sub, "version", "print the version")
    sink = _command(sub, "sink", "receive OTLP and print what arrives (a quick check of an app's telemetry)")
    sink.add_argument(
        "--grpc",
        type=_split,
        default=("127.0.0.1", 4317),
        metavar="HOST:PORT",
        help="OTLP/gRPC address to listen on (default: 127.0.0.1:4317)",
    )
    sink.add_argument(
        "--http",
        type=_split,
        default=("127.0.0.1", 4318),
        metavar="HOST:PORT",
        help="OTLP/HTTP address to listen on, on the same host as --grpc (default: 127.0.0.1:4318)",
    )
    sink.add_argument(
        "--seconds", type=float, default=None, metavar="N", help="stop after N seconds (default: run until Ctrl-C)"
    )

    analyzer = _command(sub, "analyzer", "run the analysis service: OTLP in, windows, detectors, alerts out")
    analyzer.add_argument(
        "--config",
        metavar="FILE",
        help="TOML (or YAML) file with these settings and more, under [analyzer]; flags override it "
        "(default: none, the defaults below)",
    )
    for flag, kind, metavar, text in ANALYZER_OPTIONS:
        if flag == "--alerts-protocol":
            analyzer.add_argument(flag, choices=["grpc", "http/protobuf"], metavar=metavar, help=text)
        else:
            analyzer.add_argument(flag, type=kind, metavar=metavar, help=text)
    analyzer.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="text: one readable line per record; json: one JSON object per line",
    )

    reference = _command(sub, "reference", "build, list, pin and promote reference distributions")
    actions = reference.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, help_text in [
        ("build", "build a reference from data files (CSV, .npy, Parquet); pinned if the version has none"),
        ("show", "list the references in a state directory (reads only)"),
        ("pin", "pin a candidate for a version that has no pinned reference"),
        ("promote", "replace the pinned reference by a candidate (logged)"),
    ]:
        p = _command(actions, action, help_text)
        p.add_argument(
            "--state-dir",
            required=True,
            metavar="DIR",
            help="the analyzer's state directory"
            + (" (required; created if missing)" if action == "build" else " (required; must exist)"),
        )
        if action == "show":
            p.add_argument("--model", help="list only this model's references (default: all models)")
            p.add_argument("--version", help="list only this version's references (default: all versions)")
        else:
            p.add_argument("--model", required=True, help="the model's name, as its telemetry carries it (required)")
            p.add_argument("--version", required=True, help="the model version (required)")
        if action in ("pin", "promote"):
            p.add_argument("--hash", required=True, help="the candidate's hash, as build or show prints it (required)")
        if action == "build":
            p.add_argument(
                "data",
                nargs="+",
                metavar="DATA",
                help="data files of one model's inputs, a column per feature; read before anything is created",
            )

    state = _command(sub, "state", "maintain a state directory")
    state_actions = state.add_subparsers(dest="action", required=True, metavar="ACTION")
    migrate = _command(state_actions, "migrate", "bring back references an earlier otelml pickled")
    migrate.add_argument(
        "--state-dir", required=True, metavar="DIR", help="the analyzer's state directory (required; must exist)"
    )
    migrate.add_argument(
        "--trust-pickles",
        action="store_true",
        help="load the pickles, which can run any code: only for a file no one else could write "
        "(default: off, only count them)",
    )
    demo = _command(sub, "demo", "the whole loop on one machine in about a minute (needs river and scikit-learn)")
    demo.add_argument(
        "--http", default="127.0.0.1:8080", metavar="HOST:PORT", help="status page address; port 0 picks a free one"
    )
    demo.add_argument("--state-dir", metavar="DIR", help="analyzer state (default: a new temporary directory)")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
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

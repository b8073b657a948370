"""The state directory holds data, never code: checkpoints, windows and references are ``codec`` blobs, which decode
into values only. A checkpoint of a running analyzer resumes with the same detections; planted pickles and forged
blobs are refused with a clear error and never run; a store of the previous version (pickles) opens without one of
them being read, and its references come back only through ``otelml state migrate --trust-pickles``."""

import json
import logging
import math
import pickle
import re
import sqlite3
import time
from collections import Counter, OrderedDict, deque
from pathlib import Path

import numpy as np
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2

from otelml import cli, histogram, semconv
from otelml.analyzer import PINNED, Analyzer, AnalyzerConfig, Store, decode_metrics, decode_traces, references
from otelml.analyzer.ingest.points import StreamKey
from otelml.analyzer.store import codec
from otelml.sdk import encode
from otelml.sdk.outputs import read_outputs
from otelml.sdk.recorder import Registry

ROOT = Path(__file__).resolve().parent.parent
PROTOBUF = "application/x-protobuf"
S, W = 10**9, 60 * 10**9
T0 = (1_700_000_000 * S // W) * W  # the first window's start: in the past, as replayed telemetry is
MODELS, FEATURES = ("fraud", "churn", "spam"), tuple(f"x{i}" for i in range(5))


class Marker:
    """Unpickling this creates ``path``: proof that a pickle was loaded (the code could have been anything)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def analyzer(state_dir) -> Analyzer:
    return Analyzer(AnalyzerConfig(state_dir=str(state_dir), window=60, lateness=0, warmup=600, baseline_windows=3))


def metrics(window: int, rng, shift: float) -> bytes:
    """What the SDK exports for one window: every model's features (x1 shifted by ``shift``) and outputs."""
    registry = Registry()
    for name in MODELS:
        x = rng.normal(size=(400, len(FEATURES)))
        x[:, 1] += shift
        outputs = read_outputs(rng.dirichlet([4, 1], size=400), "proba", semconv.TASK_CLASSIFICATION, None)
        registry.recorder(name, "1", semconv.TASK_CLASSIFICATION).record(FEATURES, x, {}, outputs, 0.01, None, None)
    snapshots = registry.collect()
    for snap in snapshots:
        snap.start_unix_nano, snap.end_unix_nano = T0 + window * W + S, T0 + window * W + 50 * S
    return encode.encode({"service.name": "scoring"}, "test", snapshots).SerializeToString()


def traces(window: int, rng) -> bytes:
    """Calls with caller ids and input fingerprints: ten ordinary callers and one probing near a single input."""
    spans = []
    for i in range(40):
        caller = "prober" if i % 4 == 0 else f"caller-{i % 10}"
        word = 0x0123456789ABCDEF ^ (1 << int(rng.integers(64))) if caller == "prober" else int(rng.integers(2**63))
        attributes = {
            semconv.MODEL_NAME: MODELS[0],
            semconv.MODEL_VERSION: "1",
            semconv.CALLER_ID: caller,
            semconv.INPUT_FINGERPRINT: [f"{word:016x}.{int(rng.integers(2**31)):08x}"],
        }
        end = T0 + window * W + (i + 1) * S
        spans.append(
            trace_pb2.Span(
                trace_id=rng.bytes(16),
                span_id=rng.bytes(8),
                name="predict",
                start_time_unix_nano=end - S // 100,
                end_time_unix_nano=end,
                attributes=[KeyValue(key=k, value=_any(v)) for k, v in attributes.items()],
            )
        )
    request = ExportTraceServiceRequest(
        resource_spans=[trace_pb2.ResourceSpans(scope_spans=[trace_pb2.ScopeSpans(spans=spans)])]
    )
    return request.SerializeToString()


def _any(value) -> AnyValue:
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=v) for v in value]))
    return AnyValue(string_value=value)


def feed(service: Analyzer, windows, seed: int = 0) -> None:
    for window in windows:
        rng = np.random.default_rng([seed, window])
        body = metrics(window, rng, 1.0 if window >= 8 else 0.0)  # x1 drifts by one sd from window 8
        assert service.ingest("metrics", PROTOBUF, body, decode_metrics(body, PROTOBUF)).rejected == 0
        body = traces(window, rng)
        assert service.ingest("traces", PROTOBUF, body, decode_traces(body, PROTOBUF)).rejected == 0


def seen(service: Analyzer) -> dict:
    """What a restart must not change: alarms, every detector's last statistic, and the attack state."""
    callers = {key: (c.queries, c.distinct, sorted(c.alarmed)) for key, c in service.attacks.callers.items()}
    return {
        "alarms": service.alarms(),
        "detectors": [(m["model"], m["detectors"], m["reference"]) for m in service.models()],
        "alerts": sorted(map(repr, service.alerts.open)),
        "callers": callers,
    }


def test_a_checkpoint_after_real_ingest_resumes_with_the_same_detections(tmp_path):
    """Two analyzers take the same traffic (SDK metrics and spans with caller fingerprints, through ``ingest``):
    one runs throughout, the other is stopped after a checkpoint and more acknowledged requests, and restarts from
    the checkpoint and its journal. Both end with the same alarms, detector statistics, alerts and caller state."""
    control = analyzer(tmp_path / "control")
    feed(control, range(14))
    restarted = analyzer(tmp_path / "restarted")
    feed(restarted, range(6))
    restarted.checkpoint()
    with restarted.store._lock:
        [(blob,)] = restarted.store._db.execute("SELECT state FROM checkpoint").fetchall()
    assert blob.startswith(codec.MAGIC)
    feed(restarted, [6])  # journaled after the checkpoint, then the process ends without another one
    restarted.store.close()

    restarted = analyzer(tmp_path / "restarted")
    feed(restarted, range(7, 14))
    assert seen(restarted) == seen(control)
    assert any(a["feature"] == "x1" and a["kind"] == "drift" for a in control.alarms())  # something to compare
    assert ("fraud", "prober") in control.attacks.callers and control.attacks.models
    restarted.close()
    control.close()


def plant(state_dir, table: str, blob: bytes) -> None:
    """Write ``blob`` where ``table`` keeps its blobs, as someone with write access to the state directory could."""
    db = sqlite3.connect(Path(state_dir) / "otelml.sqlite3")
    with db:
        if table == "checkpoint":
            db.execute("INSERT OR REPLACE INTO checkpoint VALUES (1, 0, 0, ?)", (blob,))
        elif table == "windows":
            db.execute("INSERT OR REPLACE INTO windows VALUES ('fraud', '1', 3, ?)", (blob,))
        else:
            db.execute("UPDATE refs SET data = ?", (blob,))
    db.close()


FORGED = [  # each with what the refusal says
    (lambda marker: pickle.dumps(Marker(marker)), "not an otelml state blob"),
    (lambda marker: forged({"obj": ["builtins:open", [marker, "w"]]}), "'builtins:open', not a class"),
    (lambda marker: forged({"obj": ["io:FileIO", {"name": marker}]}), "not a class of the analyzer's state"),
    (lambda marker: forged({"nd": ["|O", [1], 0]}, b"\0" * 8), "array of dtype '|O'"),
    (lambda marker: forged({"reduce": ["posix:system", [f"touch {marker}"]]}), "unknown kind 'reduce'"),
]


def forged(document, data: bytes = b"") -> bytes:
    """A blob of this format holding ``document`` (JSON, or raw text as bytes) and ``data``."""
    text = document if isinstance(document, bytes) else json.dumps(document).encode()
    return codec.MAGIC + codec._HEADER.pack(codec.VERSION, len(text)) + text + data


@pytest.mark.parametrize("table", ["checkpoint", "windows", "refs"])
@pytest.mark.parametrize("blob, refusal", FORGED)
def test_a_planted_blob_is_refused_with_a_clear_error_and_never_run(tmp_path, caplog, capsys, table, blob, refusal):
    """A pickle (which ran its code at the analyzer's start, or under ``otelml reference show``) or a blob that
    names a function, a foreign class, an object array or an unknown kind, in the checkpoint, a window or a pinned
    reference: the analyzer comes up without it and says why; nothing in it runs."""
    marker = tmp_path / "marker"
    state_dir = tmp_path / "state"
    first = analyzer(state_dir)
    data = np.random.default_rng(1).normal(size=(500, len(FEATURES)))
    first.store.add_reference(references.from_data("fraud", "1", list(FEATURES), data, "test"), PINNED)
    feed(first, range(4))
    first.close()
    plant(state_dir, table, blob(str(marker)))
    with caplog.at_level(logging.ERROR, logger="otelml.analyzer"):
        service = analyzer(state_dir)
        assert service.ready
        feed(service, [4])  # window 3 closes: detectors read the pinned reference
        service.models()  # lists the references
        assert cli.main(["reference", "show", "--state-dir", str(state_dir)]) == 0
    service.close()
    messages = [r.getMessage() for r in caplog.records]
    expected = {
        "checkpoint": "the checkpoint (the journal after it is replayed on a fresh state) cannot be read",
        "windows": "window 3 of fraud 1 cannot be read",
        "refs": "reference ",
    }[table]
    assert any(expected in m and refusal in m for m in messages), messages
    if table == "refs":  # the pinned one is treated as tampered with, as any reference whose data changed
        assert any("failed its integrity check" in m for m in messages)
        assert '"hash"' not in capsys.readouterr().out  # reference show lists no reference
    assert not marker.exists()


@pytest.mark.parametrize("saved", [{"state": 1}, (1, 2, 3, 4, 5), ()], ids=["a dict", "five numbers", "empty"])
def test_a_checkpoint_that_decodes_to_something_else_is_refused_and_the_analyzer_starts_afresh(tmp_path, caplog, saved):
    """A data-only checkpoint that is not this analyzer's state (forged, or of another program) stopped the start
    with an exception; now it is refused, said, and the analyzer starts on a fresh state and keeps working."""
    state_dir = tmp_path / "state"
    first = analyzer(state_dir)
    feed(first, range(2))
    first.close()
    plant(state_dir, "checkpoint", codec.encode(saved))
    with caplog.at_level(logging.ERROR, logger="otelml.analyzer"):
        service = analyzer(state_dir)
    assert service.ready
    feed(service, [2, 3])  # and it goes on working
    assert service.models()
    service.close()
    assert any("is not this analyzer's state" in r.getMessage() for r in caplog.records)


PREVIOUS_SCHEMA = """
CREATE TABLE journal (id INTEGER PRIMARY KEY AUTOINCREMENT, received_ns INTEGER, signal TEXT, payload BLOB);
CREATE TABLE checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), journal_upto INTEGER, created_ns INTEGER, state BLOB);
CREATE TABLE windows (model TEXT, version TEXT, idx INTEGER, data BLOB, PRIMARY KEY (model, version, idx));
CREATE TABLE refs (model TEXT, version TEXT, hash TEXT, status TEXT, created_ns INTEGER, data BLOB,
                   PRIMARY KEY (model, version, hash));
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, time_ns INTEGER, model TEXT, version TEXT, action TEXT,
                     detail TEXT);
CREATE TABLE set_aside (id INTEGER PRIMARY KEY, received_ns INTEGER, signal TEXT, payload BLOB, reason TEXT,
                        set_aside_ns INTEGER);
CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE, created_ns INTEGER, payload BLOB,
                     event_ns INTEGER);
"""


def previous_store(state_dir: Path, marker: Path):
    """A store as the previous otelml wrote it (pickles everywhere): a checkpoint and two windows that would create
    ``marker`` if unpickled, a pinned reference (a real one) and a candidate (the marker again), and one request
    journaled after the checkpoint."""
    state_dir.mkdir()
    db = sqlite3.connect(state_dir / "otelml.sqlite3")
    db.executescript(PREVIOUS_SCHEMA)
    planted = pickle.dumps(Marker(marker))
    pinned = references.from_data("fraud", "1", list(FEATURES), np.random.default_rng(1).normal(size=(500, 5)), "old")
    with db:
        db.execute("INSERT INTO checkpoint VALUES (1, 5, 1, ?)", (planted,))
        db.executemany("INSERT INTO windows VALUES ('fraud', '1', ?, ?)", [(1, planted), (2, planted)])
        db.execute("INSERT INTO refs VALUES ('fraud', '1', ?, 'pinned', 1, ?)", (pinned.hash, pickle.dumps(pinned)))
        db.execute("INSERT INTO refs VALUES ('fraud', '1', 'c0ffee', 'candidate', 2, ?)", (planted,))
        db.execute("INSERT INTO events VALUES (1, 1, 'fraud', '1', 'stored pinned', ?)", (f"{pinned.hash} from old",))
        db.execute(
            "INSERT INTO journal VALUES (6, ?, 'metrics:application/x-protobuf', ?)",
            (time.time_ns(), metrics(0, np.random.default_rng(0), 0.0)),
        )
    db.close()
    return pinned


def test_a_store_of_the_previous_version_opens_without_reading_a_pickle(tmp_path, caplog, capsys):
    """Opening a store the previous otelml wrote: the analyzer starts, no pickle is loaded (the planted ones would
    create a marker file), one warning counts what was dropped and set aside, the journal after the checkpoint is
    replayed, and the new state round-trips across a restart. The references come back only with
    ``otelml state migrate --trust-pickles``, which says what it does with each."""
    marker, state_dir = tmp_path / "marker", tmp_path / "state"
    pinned = previous_store(state_dir, marker)
    with caplog.at_level(logging.WARNING, logger="otelml.analyzer"):
        service = analyzer(state_dir)
    [warning] = [r.getMessage() for r in caplog.records if "earlier otelml" in r.getMessage()]
    assert "1 checkpoint and 2 windows dropped" in warning and "2 references set aside" in warning
    assert f"otelml state migrate --trust-pickles --state-dir {state_dir}" in warning
    assert service.ready and not marker.exists()
    [fraud] = [m for m in service.models() if m["model"] == "fraud"]
    assert fraud["rows"] == 400 and fraud["reference"]["status"] == "warming up"  # the journal, replayed
    feed(service, [1])  # window 0 closes: too little for the warm-up to pin a reference of its own
    before = seen(service)
    service.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="otelml.analyzer"):
        service = analyzer(state_dir)
    assert seen(service) == before and not caplog.records  # the new state round-trips; warned once only
    service.close()

    assert cli.main(["state", "migrate", "--state-dir", str(state_dir)]) == 1  # without trust, nothing is loaded
    assert "2 references pickled by an earlier otelml" in capsys.readouterr().out and not marker.exists()
    assert cli.main(["state", "migrate", "--state-dir", str(state_dir), "--trust-pickles"]) == 0
    out = capsys.readouterr().out
    assert f"fraud 1 {pinned.hash}: migrated as pinned" in out and "c0ffee: does not load as a reference" in out
    assert marker.exists()  # trusted: the planted candidate ran, as the option says it may
    store = Store(str(state_dir))
    assert store.pinned("fraud", "1").hash == pinned.hash and len(store.legacy_references()) == 1
    store.close()


def test_every_kind_of_value_the_state_holds_round_trips():
    """Containers, numpy arrays and scalars, generators, the analyzer's classes (dataclasses frozen or with slots,
    named tuples, ``__getstate__``/``__setstate__``), shared and cyclic references, as pickle kept them."""
    shared = [1, 2]
    h = histogram.from_values(np.array([1.0, 2.0, -3.0]))
    objects = np.empty(3, dtype=object)
    objects[:] = ["a", ("b", 1), None]
    value = {
        (1, "k"): shared,
        "again": shared,
        "numbers": [0, -(2**70), 1.5, math.inf, -0.0, True, None, "é\udc80"],
        "containers": (frozenset({1}), {2, 3}, deque([1, 2], maxlen=3), Counter(a=2), OrderedDict(b=1)),
        "bytes": (b"\x00\xff", bytearray(b"ab")),
        "arrays": [np.arange(6, dtype=np.uint64).reshape(2, 3)[:, ::2], np.zeros(0, np.int8), objects],
        "scalars": [np.float64(0.5), np.int64(-3), np.bool_(True), np.uint8(7)],
        "rng": np.random.default_rng(5),
        "objects": [h, StreamKey((), "s", "m", (("a", 1),)), references.Warmup(3)],
    }
    value["shared"] = [value["rng"], h, value["containers"][1]]
    value["cycle"] = value
    back = codec.decode(codec.encode(value))
    assert back["cycle"] is back and back[(1, "k")] is back["again"] == [1, 2]
    assert [a is b for a, b in zip(back["shared"], (back["rng"], back["objects"][0], back["containers"][1]))] == [
        True
    ] * 3
    assert back["numbers"][:4] == value["numbers"][:4] and math.copysign(1, back["numbers"][4]) == -1
    assert back["numbers"][5:] == value["numbers"][5:]
    assert back["containers"] == value["containers"] and back["containers"][2].maxlen == 3
    assert type(back["containers"][3]) is Counter and type(back["containers"][4]) is OrderedDict
    assert back["bytes"] == value["bytes"] and type(back["bytes"][1]) is bytearray
    for a, b in zip(value["arrays"], back["arrays"]):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tolist() == b.tolist() and b.flags.writeable
    assert [(type(s), s) for s in back["scalars"]] == [(type(s), s) for s in value["scalars"]]
    assert back["rng"].integers(1 << 60, size=4).tolist() == value["rng"].integers(1 << 60, size=4).tolist()
    h2, key, warmup = back["objects"]
    assert (h2.count, h2.positive.tolist(), h2.scale) == (h.count, h.positive.tolist(), h.scale)
    assert key == value["objects"][1] and type(key) is StreamKey and warmup.observations == 3


@pytest.mark.parametrize(
    "blob, refusal",
    [
        (b"", "not an otelml state blob"),
        (codec.MAGIC + codec._HEADER.pack(codec.VERSION + 1, 2) + b"{}", f"of format {codec.VERSION + 1}"),
        (codec.MAGIC + codec._HEADER.pack(codec.VERSION, 99) + b"[]", "truncated"),
        (forged({"nd": ["<f8", [2**40, 2**40], 0]}), "data past its end"),
        (forged({"nd": ["<M8[s]", [1], 0]}, b"\0" * 8), "array of dtype '<M8[s]'"),
        (forged({"nd": ["<f8", [-1], 0]}), "bad array shape"),
        (forged({"rng": ["RandomState", {}]}), "unknown bit generator"),
        (forged({"ntuple": ["state:State", []]}), "not a class of the analyzer's state"),
        (forged({"deque": [[], -1]}), "bad deque length"),
        (forged({"ref": 0}), "not yet seen"),
        (forged({"dict": [[1], 2]}), "malformed state blob (TypeError"),
        (forged({"tuple": [], "set": []}), "an object of 2 keys"),
        (forged(b"[" * 100_000 + b"]" * 100_000), "malformed state blob (RecursionError"),
    ],
)
def test_a_malformed_blob_is_refused_with_a_value_error_saying_why(blob, refusal):
    with pytest.raises(ValueError, match=re.escape(refusal)):
        codec.decode(blob)


def test_a_value_the_format_does_not_carry_is_not_written():
    for value in (print, object(), np.array(["text"]), logging.getLogger(), Path(".")):
        with pytest.raises(TypeError, match="the state format does not carry"):
            codec.encode(value)


def test_no_module_of_otelml_reads_pickles_but_the_trusted_migration():
    """Only ``otelml state migrate --trust-pickles`` may load a pickle: no other module imports ``pickle``."""
    readers = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "otelml").rglob("*.py")
        if re.search(r"^\s*(import pickle|from pickle import)|\bpickle\.loads?\(", path.read_text(), re.MULTILINE)
    }
    assert readers == {"otelml/cli.py"}
    source = (ROOT / "otelml" / "cli.py").read_text()
    assert source.count("pickle.loads(") == 1 and source.index("if not args.trust_pickles") < source.index(
        "pickle.loads("
    )

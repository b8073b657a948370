"""``otelml demo``: the whole loop on one machine, in about a minute, with no collector.

It starts the analyzer in its own process (one-second windows, so a minute holds a day's worth of alarms), trains a gradient-boosting
classifier on river's bundled Phishing data (1,250 web pages; nothing is downloaded), and serves it through
``@otelml.monitor`` to simulated callers. Then, in turn, it

1. shifts two input features (a covariate drift: more pages over https and with long URLs),
2. lets an evasion campaign send probes built to sit on the decision boundary (confidence collapses), while one
   caller, "mallory", walks in small steps from one page towards a page of the other class, as black-box attacks
   such as HopSkipJump and Boundary do (per-caller probing; a caller re-sending one page with noise is not one),
3. swaps the model for a tampered one under the same version (outputs change, inputs do not).

Alerts arrive as OTLP log records at a small receiver standing in for a SIEM, and are printed as they come. The
status page stays up at the printed address while the demo runs. Exit status 0 when each injected problem raised
its alert.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

import otelml

from . import semconv

PHASES = (  # (name, seconds)
    ("normal traffic", 14),
    ("covariate drift: https and long_url shift", 7),
    ("model extraction: trudy asks about made-up pages", 6),
    ("evasion campaign: probes on the decision boundary, mallory probing", 7),
    ("normal traffic", 6),
    ("swapped model: same version, tampered weights", 8),
)
EXPECTED = {"drift", "performance", "integrity", "adversarial"}
CALLER_KEY = "demo caller key"
CALLERS = ("mallory", "trudy", "nightly-job", *(f"user-{i}" for i in range(200)))  # every caller the demo simulates
_SETTINGS = """[analyzer]
window = 1
lateness = 0
warmup = 1500
baseline_windows = 8
alert_resolve_windows = 3
alerts_endpoint = "{alerts}"
alerts_protocol = "http/protobuf"
"""


def _load():
    try:
        from river import datasets
        from sklearn.ensemble import GradientBoostingClassifier
    except ImportError as exc:
        raise SystemExit(
            f"otelml demo needs river and scikit-learn: pip install 'otelml[analyzer,examples]' ({exc})"
        ) from None
    rows = list(datasets.Phishing())
    names = list(rows[0][0])
    x = np.array([[features[n] for n in names] for features, _ in rows], dtype=float)
    y = np.array([label for _, label in rows])
    model = GradientBoostingClassifier(random_state=0).fit(x, y)
    rng = np.random.default_rng(1)
    tampered = GradientBoostingClassifier(random_state=0, max_depth=1, n_estimators=5).fit(x, rng.permutation(y))
    return names, x, model, tampered


def _walk(x, model, rng):
    """Mallory's queries: from one page towards a page the model labels otherwise, each a small step from the last
    with a little noise, as a black-box attack walks to the decision boundary."""
    labels = model.predict(x)
    point, target = x[0].copy(), x[np.flatnonzero(labels != labels[0])[0]]
    while True:
        point = point + 0.03 * (target - point) + rng.normal(0, 0.003, point.size)
        yield point


def _evasion_probes(model, x, rng, count=400):
    """Inputs an attacker moves towards the boundary: blends of two pages, kept where the model is unsure."""
    found = []
    while len(found) < count:
        a, b = x[rng.integers(len(x), size=2000)], x[rng.integers(len(x), size=2000)]
        blend = a + rng.uniform(0.3, 0.7, size=(2000, 1)) * (b - a)
        proba = model.predict_proba(blend)[:, 1]
        found.extend(blend[np.abs(proba - 0.5) < 0.12])
    return np.array(found[:count])


def caller_names(key: str = CALLER_KEY, callers=CALLERS) -> dict:
    """The demo's own name for each caller id its alerts can carry. Only the demo can say this: it holds the key and
    the identities; what goes on the wire, and what the analyzer and the SIEM see, is the keyed hash alone."""
    from .sdk.hashing import CallerHasher

    hasher = CallerHasher(key.encode())
    return {hasher.id(name): name for name in callers}


def name_callers(text: str, names: dict) -> str:
    """``text`` with the demo's name after every caller id it knows: ``caller 3fa2... (mallory)``."""
    return re.sub(r"\b[0-9a-f]{32}\b", lambda m: f"{m[0]} ({names[m[0]]})" if m[0] in names else m[0], text)


class _Printer(threading.Thread):
    """Prints alert records as they reach the receiver, with the demo's name next to each hashed caller id."""

    def __init__(self, sink):
        super().__init__(daemon=True)
        self.sink, self.seen, self.kinds, self.stop = sink, 0, set(), threading.Event()
        self.names = caller_names()

    def run(self):
        from .testing import attributes

        while not self.stop.wait(0.2):
            records = [
                r
                for req in self.sink.requests["logs"]
                for rl in req.resource_logs
                for sl in rl.scope_logs
                for r in sl.log_records
                if r.event_name == semconv.EVENT_ALERT
            ]
            for record in records[self.seen :]:
                attrs = attributes(record.attributes)
                self.kinds.add(attrs[semconv.ALERT_KIND])
                trace = record.trace_id.hex()[:12] if record.trace_id else "-"
                print(
                    f"    ALERT [{record.severity_text:5s}] {attrs[semconv.ALERT_STATE]:8s} "
                    f"{name_callers(record.body.string_value, self.names)}"
                    f"  (trace {trace}...)",
                    flush=True,
                )
            self.seen = len(records)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="otelml demo", description=__doc__.splitlines()[0])
    parser.add_argument("--http", default="127.0.0.1:8080", help="status page address (default 127.0.0.1:8080)")
    parser.add_argument("--state-dir", help="analyzer state (default: a temporary directory)")
    args = parser.parse_args(argv)

    import logging

    from otelml.testing import OTLPSink, free_port, launch_analyzer

    logging.getLogger("otelml").setLevel(logging.ERROR)  # the demo prints alerts as the SIEM receives them

    names, x, model, tampered = _load()
    rng = np.random.default_rng(7)
    probes = _evasion_probes(model, x, rng)
    state_dir = args.state_dir or tempfile.mkdtemp(prefix="otelml-demo-")
    os.makedirs(state_dir, exist_ok=True)
    host, _, port = args.http.rpartition(":")
    ports = (free_port(), free_port(), int(port) or free_port())
    with OTLPSink() as siem, open(os.path.join(state_dir, "analyzer.log"), "w") as log:
        settings = os.path.join(state_dir, "demo-analyzer.toml")
        with open(settings, "w") as f:
            f.write(_SETTINGS.format(alerts=siem.http_endpoint))
        try:  # its own process, as in production: its work does not hold up the model's calls (their latency)
            analyzer = launch_analyzer(
                ports, state_dir, "--http", f"{host}:{ports[2]}", "--config", settings, output=log
            )
        except RuntimeError as exc:
            print(f"otelml demo: {exc} (try --http 127.0.0.1:0)", file=sys.stderr)
            return 1
        printer = _Printer(siem)
        try:
            print(f"analyzer up; status page: http://{host}:{ports[2]}/ (its log: {log.name})", flush=True)
            printer.start()
            _run(f"http://127.0.0.1:{ports[1]}", names, x, model, tampered, probes, rng, printer)
        finally:
            otelml.shutdown()
            printer.stop.set()
            if printer.is_alive():
                printer.join(2)
            analyzer.terminate()
            try:
                analyzer.wait(15)
            except subprocess.TimeoutExpired:
                analyzer.kill()
                analyzer.wait(5)
    missing = EXPECTED - printer.kinds
    print(f"alert kinds seen: {sorted(printer.kinds)}" + (f"; missing: {sorted(missing)}" if missing else ""))
    return 0 if not missing else 1


def _run(endpoint, names, x, model, tampered, probes, rng, printer) -> None:
    """Serve the phases through ``@otelml.monitor``, then wait (at most 10 s) for every expected kind of alert."""
    otelml.configure(
        endpoint=endpoint,
        service_name="phishing-service",
        caller_key=CALLER_KEY,
        set_global_tracer_provider=False,
        export_interval_s=1.0,  # in the background, on the SDK's grid: one export a window, the calls never wait for it
    )
    current = {"model": model}

    @otelml.monitor(
        model="phishing-detector",
        version="1",
        feature_names=names,
        classes=model.classes_,
        caller="caller",
        fingerprint_bits=128,
    )
    def check(pages, caller):
        return current["model"].predict_proba(np.atleast_2d(pages))

    walk = _walk(x, model, rng)
    for name, seconds in PHASES:
        print(f"--- {name} ({seconds} s)", flush=True)
        current["model"] = tampered if name.startswith("swapped") else model
        for _ in range(seconds):
            _serve_one_second(check, x, probes, walk, name, rng)
    current["model"] = model
    for _ in range(2):  # normal traffic goes on, so the last phase's windows close (with no silence after them)
        _serve_one_second(check, x, probes, walk, "normal traffic", rng)
    otelml.force_flush()
    deadline = time.monotonic() + 10
    while not EXPECTED <= printer.kinds and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)


def _serve_one_second(check, x, probes, walk, phase, rng):
    start = time.monotonic()
    rows = x[rng.integers(len(x), size=240)]
    if phase.startswith("covariate"):
        rows[:, 2] = np.where(rng.random(len(rows)) < 0.85, 1.0, rows[:, 2])  # https
        rows[:, 6] = np.where(rng.random(len(rows)) < 0.85, 1.0, rows[:, 6])  # long_url
    if phase.startswith("evasion"):
        attack = rng.random(len(rows)) < 0.5
        rows[attack] = probes[rng.integers(len(probes), size=int(attack.sum()))]
    for row in rows[:40]:  # single requests from 200 callers
        check(row, caller=f"user-{rng.integers(200)}")
    if phase.startswith("evasion"):  # mallory's small steps towards the boundary
        for _ in range(10):
            check(next(walk), caller="mallory")
    if phase.startswith("model extraction"):  # trudy labels a grid of pages nobody else sends, to copy the model
        for _ in range(12):
            check(rng.integers(0, 3, x.shape[1]) / 2.0, caller="trudy")
    for batch in np.array_split(rows[40:], 2):  # and two batches from the nightly job
        check(batch, caller="nightly-job")
    time.sleep(max(0.0, 1.0 - (time.monotonic() - start)))


if __name__ == "__main__":
    sys.exit(main())

"""Table 7: table 2's streams through ``otelml.monitor``, OTLP/HTTP and a real analyzer process, against the
in-process detector on the same rows."""

from __future__ import annotations

import json
import math
import pathlib
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

import otelml
from otelml import semconv
from otelml.analyzer.references import from_data

from .detectors import Otelml, first_alarm_window
from .plan import Plan
from .report import fmt, print_table
from .streams import CHANGES, FEATURES, PRE, ROWS, A, make_reference, model_stream, names

E2E_WINDOW_S = 0.5  # the analyzer's windows; its false_alarm_days is scaled so that A is still 43,200 windows
E2E_CHANGES = (("+0.5 sd", 1), ("+0.1 sd", 3))  # (change, shifted features), on table 2's streams
E2E_HORIZON = 40  # windows after the change


def end_to_end_runs(plan: Plan) -> list:
    """(reference rows, windows of rows) of each end-to-end run: table 2's reference and streams, PRE windows, then
    E2E_HORIZON windows of the change."""
    runs = []
    for seed in range(plan.e2e_seeds):
        raw = make_reference(2, seed)[1]
        for label, k in E2E_CHANGES:
            pre, post = model_stream(seed, [change[0] for change in CHANGES].index(label), k, E2E_HORIZON)
            runs.append((raw, np.concatenate([pre, np.stack(list(post))])))
    return runs


def through_the_analyzer(runs: list, folder: pathlib.Path) -> tuple:
    """Every run's windows through ``otelml.monitor`` (one predict call of ROWS rows per window, one model per run,
    each with a reference built by ``otelml reference build``) to a real analyzer process over OTLP/HTTP, in step
    with its windows. Returns the analyzer's input drift alarms as {run: [window after the change, ...]} and the
    number of windows whose export missed its window (too slow a machine)."""
    from otelml.testing import free_port, launch_analyzer

    state = folder / "state"
    for i, (raw, _) in enumerate(runs):
        np.save(folder / f"reference{i}.npy", raw)
        build = ["reference", "build", "--state-dir", str(state), "--model", f"run{i}", "--version", "1"]
        command = [sys.executable, "-m", "otelml.cli", *build, str(folder / f"reference{i}.npy")]
        subprocess.run(command, check=True, capture_output=True)
    config = folder / "analyzer.toml"
    config.write_text(f"window = {E2E_WINDOW_S}\nlateness = 0\nfalse_alarm_days = {A * E2E_WINDOW_S / 86400!r}\n")
    ports = [free_port() for _ in range(3)]
    window_ns = round(E2E_WINDOW_S * 1e9)
    missed = 0
    with open(folder / "analyzer.log", "w") as log:
        analyzer = launch_analyzer(ports, str(state), "--config", str(config), output=log)
        try:
            otelml.configure(
                endpoint=f"http://127.0.0.1:{ports[1]}", create_tracer_provider=False, export_interval_s=3600
            )
            predicts = [otelml.monitor(model=f"run{i}", version="1")(_answer) for i in range(len(runs))]
            change = None
            for w in range(PRE + E2E_HORIZON + 1):  # the last window's one-row calls close the one before
                now = time.time_ns()
                index = now // window_ns + 1
                time.sleep((index * window_ns - now) / 1e9 + 0.01)
                change = index + PRE if change is None else change
                for predict, (_, windows) in zip(predicts, runs):
                    predict(windows[w] if w < len(windows) else windows[-1][:1])
                missed += (time.time_ns() - 1) // window_ns != index
                otelml.force_flush()
            time.sleep(1.0)
            with urllib.request.urlopen(f"http://127.0.0.1:{ports[2]}/api/alarms", timeout=10) as response:
                alarms = json.loads(response.read())["alarms"]
        finally:
            otelml.shutdown()
            analyzer.terminate()
            analyzer.wait(30)
    found: dict = {}
    for a in alarms:
        if (
            a["detector"] == "drift"
            and a["feature"] is None
            and a["details"].get("metric") == semconv.METRIC_FEATURE_VALUE
        ):
            found.setdefault(int(a["model"][3:]), []).append(a["window_start_unix_nano"] // window_ns - change)
    return found, missed


def _answer(x):
    return np.tile([0.3, 0.7], (len(x), 1))


def table_end_to_end(plan: Plan) -> None:
    runs = end_to_end_runs(plan)
    for _ in range(3):  # a stalled machine can push an export past its window; that run is repeated
        with tempfile.TemporaryDirectory() as folder:
            found, missed = through_the_analyzer(runs, pathlib.Path(folder))
        if not missed:
            break
    rows = []
    for i, (raw, windows) in enumerate(runs):
        model = Otelml(from_data("m", "1", names(FEATURES), raw, "evaluation"))
        before = sum(model.update(rows) for rows in windows[:PRE])
        at = first_alarm_window(model.update, windows[PRE:])
        alarms = found.get(i, [])
        early, after = sum(w < 0 for w in alarms), [w for w in alarms if w >= 0]
        process = (min(after) + 1) * ROWS if after else math.inf
        mine = math.inf if at is None else (at + 1) * ROWS
        label, k = E2E_CHANGES[i % len(E2E_CHANGES)]
        same = (process, early) == (mine, before)
        row = [f"seed {i // len(E2E_CHANGES)}: {label} on {k} of {FEATURES}", fmt(process), early, fmt(mine), before]
        rows.append([*row, "yes" if same else "NO"])
    print_table(
        "7. End to end: the same streams through otelml.monitor, OTLP/HTTP and the analyzer process",
        ["run", "analyzer: delay", "alarms before", "in-process: delay", "alarms before", "same"],
        rows,
        [
            f"table 2's streams and references; {PRE} windows, then the change for {E2E_HORIZON} windows; one predict "
            f"call of {ROWS} rows per window and model; analyzer windows of {E2E_WINDOW_S} s, its false_alarm_days "
            f"set so that A = {A:,} windows; references built by `otelml reference build`",
            f"in-process: the DriftDetector on histograms from synthetic.window, as in tables 1-3; exports that missed "
            f"their window: {missed} (in the last of at most 3 attempts)",
        ],
    )

"""Alibi Detect's CVMDriftOnline on streams written by ``evaluate.py --alibi``; run in Alibi Detect's own venv.

    python alibi_cvm.py IN.npz OUT.json THRESHOLDS.npy

alibi-detect 0.13 pins numpy<2, so it cannot share the project's environment: ``evaluate/alibi.py`` installs it into a
venv of its own, writes the streams to ``IN.npz`` and reads the results back from ``OUT.json``. This script imports
nothing from otelml.

``IN.npz`` holds ``ert`` (expected values between false alarms), ``window_sizes``, ``n_bootstraps``, ``window_rows``
(values per window when counting false alarms), and for the false alarms ``null_reference`` (streams x reference
values) and ``null`` (streams x values); for the delays ``reference`` (runs x reference values), ``pre`` (runs x
values before the change) and ``post`` (runs x values after it). Every stream is a single feature.

The detector's thresholds come from a simulation at construction that depends only on the reference size, ``ert``
and the window sizes, not on the reference's values; they are simulated once and kept in ``THRESHOLDS.npy``.
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

import numpy as np
from alibi_detect.cd import CVMDriftOnline


def detector(reference: np.ndarray, config: dict, thresholds: pathlib.Path) -> CVMDriftOnline:
    if thresholds.exists():
        known = np.load(thresholds)

        class Cached(CVMDriftOnline):
            def _configure_thresholds(self):
                self.thresholds = known.copy()

        return Cached(reference, ert=config["ert"], window_sizes=config["window_sizes"], verbose=False)
    np.random.seed(0)  # the simulation draws from numpy's global generator
    made = CVMDriftOnline(
        reference,
        ert=config["ert"],
        window_sizes=config["window_sizes"],
        n_bootstraps=config["n_bootstraps"],
        verbose=False,
    )
    np.save(thresholds, made.thresholds)
    return made


def alarms(det: CVMDriftOnline, values: np.ndarray) -> list:
    """Indexes of the values at which the detector alarmed; it is reset after each alarm."""
    fired = []
    for i, x in enumerate(values.tolist()):
        if det.predict(x, return_test_stat=False)["data"]["is_drift"]:
            fired.append(i)
            det.reset_state()
        elif det.t % 1000 == 0:  # predict keeps every value it saw; only the last max_ws are used
            det.xs = det.xs[-det.max_ws :]
            det.test_stats, det.drift_preds = det.test_stats[-1:], det.drift_preds[-1:]
    return fired


def first_alarm(det: CVMDriftOnline, values: np.ndarray) -> int | None:
    for i, x in enumerate(values.tolist()):
        if det.predict(x, return_test_stat=False)["data"]["is_drift"]:
            return i + 1
    return None


def main(source: str, target: str, thresholds: str) -> None:
    data = np.load(source)
    config = {
        "ert": float(data["ert"]),
        "window_sizes": [int(w) for w in data["window_sizes"]],
        "n_bootstraps": int(data["n_bootstraps"]),
    }
    path = pathlib.Path(thresholds)
    simulated, started = not path.exists(), time.perf_counter()
    detector(data["null_reference"][0], config, path)
    setup = time.perf_counter() - started if simulated else None
    rows = int(data["window_rows"])
    alarmed_windows = windows = 0
    started = time.perf_counter()
    for reference, stream in zip(data["null_reference"], data["null"]):
        fired = alarms(detector(reference, config, path), stream)
        alarmed_windows += len({i // rows for i in fired})
        windows += stream.size // rows
    per_value = (time.perf_counter() - started) / data["null"].size
    delays = []
    for reference, pre, post in zip(data["reference"], data["pre"], data["post"]):
        det = detector(reference, config, path)
        alarms(det, pre)  # alarms before the change are not counted, as for the other detectors
        delays.append(first_alarm(det, post))
    result = {"alarms": alarmed_windows, "windows": windows, "delays": delays, "setup_s": setup, "ms": per_value * 1e3}
    pathlib.Path(target).write_text(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:4])

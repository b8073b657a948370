"""Table 3's Alibi Detect CVMDriftOnline (``--alibi``), run by ``bench/alibi_cvm.py`` in a venv of its own."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

from .plan import Plan
from .streams import CHANGES, ROWS, make_reference, null_chunks, single_stream

ALIBI_VERSION = "0.13.0"  # pins numpy<2 and pandas<3: installed into a venv of its own by --alibi
ALIBI_REF, ALIBI_ERT, ALIBI_WINDOWS, ALIBI_BOOTSTRAPS = 1_000, 10_000, (20, 100, 200), 11_000
ALIBI_HORIZON = 25  # windows after the change (value by value it costs about 0.4 ms per value)
ALIBI_SKIPPED = (
    f"Alibi Detect CVMDriftOnline: run with --alibi (installs alibi-detect {ALIBI_VERSION}, which pins numpy<2, "
    "into a venv of its own under ~/.cache/otelml; about 1.1 GB, no TensorFlow or PyTorch)"
)


def alibi_cvm(plan: Plan) -> dict:
    """Alibi Detect's CVMDriftOnline on table 3's streams, through ``alibi_cvm.py`` in a venv of its own (made on
    first use): its false alarms on the first feature of the first no-drift streams, and its delays per change."""
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "otelml"
    venv = cache / f"alibi-detect-{ALIBI_VERSION}"
    python = venv / "bin" / "python"
    if not (venv / "installed").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"alibi-detect=={ALIBI_VERSION}"], check=True)
        (venv / "installed").touch()
    null_reference, null = [], []
    for seed in range(plan.alibi_streams):
        null_reference.append(make_reference(1, seed)[1][:ALIBI_REF, 0])
        null.append(np.concatenate(list(null_chunks(seed, plan.alibi_windows)))[:, :, 0].ravel())
    reference, pre, post = [], [], []
    for seed in range(plan.alibi_seeds):
        raw = make_reference(3, seed, features=1)[1][:ALIBI_REF, 0]
        for c in range(len(CHANGES)):
            before, after = single_stream(seed, c, ALIBI_HORIZON)
            reference.append(raw)
            pre.append(before[-2:].ravel())  # two windows fill its largest window (200 values)
            post.append(after.ravel())
    windows = "-".join(map(str, ALIBI_WINDOWS))
    thresholds = cache / f"alibi-cvm-thresholds-{ALIBI_REF}-{ALIBI_ERT}-{windows}-{ALIBI_BOOTSTRAPS}.npy"
    with tempfile.TemporaryDirectory() as folder:
        source, target = pathlib.Path(folder) / "in.npz", pathlib.Path(folder) / "out.json"
        np.savez(
            source,
            ert=ALIBI_ERT,
            window_sizes=ALIBI_WINDOWS,
            n_bootstraps=ALIBI_BOOTSTRAPS,
            window_rows=ROWS,
            null_reference=np.stack(null_reference),
            null=np.stack(null),
            reference=np.stack(reference),
            pre=np.stack(pre),
            post=np.stack(post),
        )
        script = pathlib.Path(__file__).resolve().parent.parent / "alibi_cvm.py"
        env = {**os.environ, "NUMBA_NUM_THREADS": "2"}
        run = subprocess.run(
            [str(python), str(script), str(source), str(target), str(thresholds)],
            capture_output=True,
            text=True,
            env=env,
        )
        if run.returncode:  # its stderr otherwise holds only transformers' notice that no PyTorch is installed
            raise RuntimeError(f"alibi_cvm.py failed:\n{run.stderr}")
        result = json.loads(target.read_text())
    result["delays"] = [result["delays"][i :: len(CHANGES)] for i in range(len(CHANGES))]  # per change
    return result

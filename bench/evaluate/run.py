"""Evaluation of otelml's drift and accuracy detectors: false alarms, detection delays, peers, real drift, speed.

The run behind bench/evaluate.py: every table in order, then the goals."""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

import otelml

from .accuracy import table_accuracy
from .alibi import alibi_cvm
from .delays import table_delays
from .end_to_end import table_end_to_end
from .false_alarms import table_false_alarms
from .goals import table_goals
from .peers import table_peers
from .plan import FULL, QUICK
from .real_drift import table_real_drift
from .speed import table_speed
from .streams import SEED, A
from .versus import table_versus


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few seeds and short streams, to check that it runs")
    parser.add_argument("--alibi", action="store_true", help="also run Alibi Detect in a venv of its own (table 3)")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    started = time.perf_counter()
    print(
        f"otelml {otelml.__version__}, numpy {np.__version__}, river {_version('river')}, "
        f"python {sys.version.split()[0]}; {'quick' if args.quick else 'full'} run, seed {SEED}, A = {A:,}"
    )
    with ProcessPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        false_alarms = table_false_alarms(pool, plan)
        delays = table_delays(pool, plan, false_alarms)
        versus = table_versus(pool, plan, false_alarms)
        peers = table_peers(pool, plan, false_alarms, alibi_cvm(plan) if args.alibi else None)
        table_real_drift(plan)
        accuracy = table_accuracy(pool, plan)
    speed = table_speed(plan)
    table_end_to_end(plan)
    table_goals(false_alarms, delays, versus, peers, accuracy, speed)
    print(f"\ntotal time {time.perf_counter() - started:.0f} s")
    return 0


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"

"""Table 5: an accuracy drop 0.9 -> 0.8, otelml's AccuracyDetector against ADWIN on the 0/1 errors."""

from __future__ import annotations

import math
import statistics

import numpy as np

from otelml.analyzer.detectors import AccuracyDetector

from .detectors import River, adwin, river_delay
from .plan import Plan
from .report import delay_summary, goal_mark, print_table
from .streams import CHUNK, STREAM, outcome_window, rng_for

BASELINE, STABLE, ACC_HORIZON = 30, 10, 50  # windows


def baseline_windows(labelled_per_window: int) -> int:
    """Windows the AccuracyDetector's baseline takes: BASELINE windows and its minimum of labelled predictions."""
    return max(BASELINE, math.ceil(AccuracyDetector.baseline_trials / labelled_per_window))


def accuracy_task(args) -> list:
    """One seed: accuracy 0.9 for the baseline and a few windows, then 0.8; labelled predictions to the alarm."""
    seed, plan = args
    out = []
    for n in (50, 200):
        rng = rng_for(5, STREAM, seed, n)
        before = baseline_windows(n) + STABLE
        wrong = rng.random((before + ACC_HORIZON, n)) < np.repeat([0.1, 0.2], [before, ACC_HORIZON])[:, None]
        detector = AccuracyDetector()
        delay = None
        for i, w in enumerate(wrong):
            alarm = any(f.alarm for f in detector.update(outcome_window(i, w), None))
            if alarm and i >= before:
                delay = (i - before + 1) * n
                break
        errors = wrong.astype(float)[:, :, None]
        adwin_delay = river_delay(River(adwin(), 1, warm=errors[:before].reshape(-1, 1)), errors[before:])
        out.append((n, delay, adwin_delay))
    return out


def accuracy_null_task(args) -> dict:
    seed, plan = args
    out = {}
    for n in (50, 200):
        rng = rng_for(5, STREAM, seed, n, 1)  # b = 1: the no-drift streams
        detector = AccuracyDetector()
        adwins = River(adwin(), 1)
        alarms = adwin_alarms = 0
        for start in range(0, plan.accuracy_null_windows, CHUNK):
            wrong = rng.random((min(CHUNK, plan.accuracy_null_windows - start), n)) < 0.1
            for i, w in enumerate(wrong):
                alarm = any(f.alarm for f in detector.update(outcome_window(start + i, w), None))
                adwin_alarm = bool((adwins.update(w.astype(float)[:, None]) >= 0).any())
                if start + i >= baseline_windows(n):  # the AccuracyDetector learns its baseline first
                    alarms += alarm
                    adwin_alarms += adwin_alarm
        out[n] = (alarms, adwin_alarms, plan.accuracy_null_windows - baseline_windows(n))
    return out


def table_accuracy(pool, plan: Plan) -> dict:
    delays = [r for rs in pool.map(accuracy_task, [(s, plan) for s in range(plan.accuracy_seeds)]) for r in rs]
    nulls = list(pool.map(accuracy_null_task, [(s, plan) for s in range(plan.accuracy_null_streams)]))
    rows, summary = [], {}
    for n in (50, 200):
        horizon = ACC_HORIZON * n
        for name, index in (("otelml AccuracyDetector", 1), ("ADWIN on 0/1 errors", 2)):
            median, share, text = delay_summary([d[index] for d in delays if d[0] == n], horizon)
            within = statistics.mean(d[index] is not None and d[index] <= 500 for d in delays if d[0] == n)
            alarms = sum(r[n][index - 1] for r in nulls)
            windows = sum(r[n][2] for r in nulls)
            summary[(name, n)] = (median, within, alarms, windows)
            rows.append(
                [
                    name,
                    n,
                    text,
                    f"{share:.0%}",
                    f"{within:.0%}",
                    f"{alarms / windows * 1e4:.2f}",
                    goal_mark(median <= 500),
                ]
            )
    print_table(
        "5. Accuracy drop 0.9 -> 0.8: labelled predictions from the drop to the alarm",
        ["detector", "labelled/window", "median", "detected", "within 500", "FA/10k windows", "goal <= 500"],
        rows,
        [
            f"{plan.accuracy_seeds} seeds; a baseline of at least {BASELINE} windows and "
            f"{AccuracyDetector.baseline_trials:,} labelled predictions + {STABLE} windows at 0.9, then 0.8 for {ACC_HORIZON} "
            f"windows; false alarms: {plan.accuracy_null_streams} streams x {plan.accuracy_null_windows:,} windows at 0.9",
            "otelml alarms only at the end of a window: its delays are multiples of the labelled predictions per window",
        ],
    )
    return summary

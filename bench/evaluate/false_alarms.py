"""Table 1: false drift alarms on no-drift streams, otelml (one histogram per window, merged replicas, batch
traffic, A = 100) against ADWIN, KSWIN and a per-window KS test."""

from __future__ import annotations

import math
import statistics

import numpy as np
from scipy import stats

from otelml.analyzer.detectors.synthetic import window

from .detectors import MODEL_SWEEP, STRICT_DELTA, Otelml, River, adwin, ks_pvalues, kswin, threshold_config
from .plan import Plan
from .report import goal_mark, print_table
from .streams import (
    FEATURES,
    LAYOUT,
    REF_ROWS,
    ROWS,
    A,
    make_reference,
    merged_window,
    null_chunks,
    rng_for,
    split_calls,
)


def null_task(args) -> dict:
    """One no-drift stream: otelml's DriftDetector on 20 features, ADWIN and KS on the same values."""
    seed, plan = args
    reference, raw = make_reference(1, seed)
    ref_sorted = np.sort(raw, axis=0)
    model = Otelml(reference)
    low_a = Otelml(reference, threshold_config(100)) if seed < plan.low_a_streams else None
    sweep = [Otelml(reference, threshold_config(math.exp(h))) for h in MODEL_SWEEP]
    adwins = River(adwin(), FEATURES, warm=raw)
    stricts = River(adwin(STRICT_DELTA), FEATURES, warm=raw)
    counts = dict.fromkeys(["otelml", "otelml A=100", "adwin", "adwin strict", "ks"], 0)
    counts["otelml sweep"] = np.zeros(MODEL_SWEEP.size, dtype=np.int64)
    for chunk in null_chunks(seed, plan.null_windows):
        p = ks_pvalues(ref_sorted, chunk)
        counts["ks"] += int((p.min(axis=1) < 1 / (A * FEATURES)).sum())
        for rows in chunk:
            closed = window(model.index, features=rows)
            counts["otelml"] += model.update_window(closed)
            if low_a is not None:
                counts["otelml A=100"] += low_a.update_window(closed)
            counts["otelml sweep"] += [detector.update_window(closed) for detector in sweep]
            counts["adwin"] += bool((adwins.update(rows) >= 0).any())
            counts["adwin strict"] += bool((stricts.update(rows) >= 0).any())
    counts["windows"] = plan.null_windows
    counts["windows A=100"] = plan.null_windows if low_a is not None else 0
    return counts


def kswin_null_task(args) -> dict:
    """KSWIN on the first windows of a table-1 stream (it costs about 0.2 ms per value)."""
    seed, plan = args
    _, raw = make_reference(1, seed)
    detectors = River(kswin(seed), FEATURES, warm=raw[-100:])
    any_feature = first_feature = 0
    for chunk in null_chunks(seed, plan.kswin_windows):
        for rows in chunk:
            fired = detectors.update(rows) >= 0
            any_feature += bool(fired.any())
            first_feature += bool(fired[0])
    return {"kswin": any_feature, "kswin 1": first_feature, "windows": plan.kswin_windows}


def sdk_task(args) -> dict:
    """DriftDetector on windows merged from replicas: ``replicas`` = table 1's rows in calls of 1-8 rows;
    ``batches`` = 12 calls per window of log-uniform 1-1,000 rows (about 1,700 rows per window)."""
    seed, plan, mode = args
    reference, _ = make_reference(1, seed)
    model = Otelml(reference)
    rng = rng_for(1, LAYOUT, seed, 1 if mode == "replicas" else 2)
    alarms = folded = histograms = rows_seen = 0
    for chunk in null_chunks(seed, plan.sdk_windows):
        for rows in chunk:
            if mode == "replicas":
                calls = split_calls(rows, rng.integers(1, 9, ROWS))
            else:
                sizes = np.exp(rng.uniform(0, math.log(1000), 12)).astype(int)
                calls = split_calls(rng.standard_normal((sizes.sum(), FEATURES)), sizes)
            closed = merged_window(model.index, calls, rng)
            alarms += model.update_window(closed)
            folded += sum(h.zero_threshold > 0 for h in closed.histograms.values())
            histograms += len(closed.histograms)
            rows_seen += sum(len(c) for c in calls)
    return {
        "alarms": alarms,
        "windows": plan.sdk_windows,
        "folded": folded / histograms,
        "rows": rows_seen / plan.sdk_windows,
    }


def rate_row(label: str, alarms: int, windows: int, bound: float | None, judge: bool = True) -> list:
    """Alarms, rate per 10k windows, its one-sided 95% Poisson upper bound, the target, and the goal's verdict."""
    upper = 0.5 * stats.chi2.ppf(0.95, 2 * (alarms + 1)) / windows * 1e4
    per_10k = alarms / windows * 1e4
    return [
        label,
        f"{windows:,}",
        alarms,
        f"{per_10k:.2f}",
        f"{upper:.2f}",
        "-" if bound is None else f"{bound:.2f}",
        goal_mark(per_10k <= 1) if judge else "-",
    ]


def table_false_alarms(pool, plan: Plan) -> dict:
    streams = range(plan.null_streams)
    nulls = list(pool.map(null_task, [(s, plan) for s in streams]))
    kswins = list(pool.map(kswin_null_task, [(s, plan) for s in streams]))
    sdk = {mode: list(pool.map(sdk_task, [(s, plan, mode) for s in streams])) for mode in ("replicas", "batches")}
    total = {k: sum(r[k] for r in nulls) for k in nulls[0]}
    ks_total = {k: sum(r[k] for r in kswins) for k in kswins[0]}
    sdk_total = {
        m: (
            sum(r["alarms"] for r in rs),
            sum(r["windows"] for r in rs),
            statistics.mean(r["folded"] for r in rs),
            statistics.mean(r["rows"] for r in rs),
        )
        for m, rs in sdk.items()
    }
    bound, windows = 1e4 / A, total["windows"]
    labels = {
        "replicas": "otelml, 3 replicas x 6 exports merged (calls of 1-8 rows)",
        "batches": "otelml, batch traffic: 12 calls of 1-1,000 rows per window",
    }
    rows = [rate_row("otelml DriftDetector, A=43,200, one histogram per window", total["otelml"], windows, bound)]
    for mode, (alarms, sdk_windows, folded, mean_rows) in sdk_total.items():
        label = f"{labels[mode]} [{mean_rows:,.0f} rows/window, {folded:.2%} folded]"
        rows.append(rate_row(label, alarms, sdk_windows, bound))
    rows += [
        rate_row(
            "otelml DriftDetector at A=100 (does the harness see alarms?)",
            total["otelml A=100"],
            total["windows A=100"],
            1e4 / 100,
            judge=False,
        ),
        rate_row("ADWIN (delta=0.002), one per feature, any of 20", total["adwin"], windows, None),
        rate_row(f"ADWIN (delta={STRICT_DELTA:g}), one per feature, any of 20", total["adwin strict"], windows, None),
        rate_row("KSWIN (alpha=0.005), one per feature, any of 20", ks_total["kswin"], ks_total["windows"], None),
        rate_row("KS per window and feature, p < 1/(20 A)", total["ks"], windows, bound),
    ]
    print_table(
        "1. False drift alarms on no-drift streams (model level, 20 features)",
        ["detector", "windows", "alarms", "per 10k", "95% up", "target", "goal <= 1 per 10k"],
        rows,
        [
            f"{plan.null_streams} streams x {plan.null_windows:,} windows of {ROWS} rows (replicas/batch traffic: "
            f"{plan.sdk_windows:,} windows; KSWIN: {plan.kswin_windows} windows) of {FEATURES} N(0,1) features, "
            f"each stream with its own {REF_ROWS:,}-row reference",
            "folded = share of merged histograms whose zero bucket was widened (data-dependent layout)",
        ],
    )
    return {"total": total, "kswin": ks_total, "sdk": sdk_total}

"""Table 3: peers on single-feature streams, their false alarms and delays, and comparisons at equal false alarms."""

from __future__ import annotations

import math

import numpy as np

from otelml.analyzer.detectors.synthetic import window
from otelml.analyzer.references import from_data

from .alibi import ALIBI_BOOTSTRAPS, ALIBI_ERT, ALIBI_HORIZON, ALIBI_REF, ALIBI_SKIPPED, ALIBI_VERSION, ALIBI_WINDOWS
from .detectors import (
    ORACLE_SHIFT,
    ORACLE_THRESHOLDS,
    SINGLE_SWEEP,
    STRICT_DELTA,
    OracleCusum,
    Otelml,
    River,
    adwin,
    ks_pvalues,
    kswin,
    oracle_delays,
    otelml_delay,
    river_delay,
    threshold_config,
)
from .plan import Plan
from .report import delay_stats, delay_summary, print_table, sweep_summary, within
from .streams import CHANGES, PRE, ROWS, A, make_reference, names, null_chunks, single_stream


def single_null_task(args) -> dict:
    """The first feature of table 1's no-drift stream ``seed``: otelml (at its ln A and at SINGLE_SWEEP's), ADWIN, KS
    and the oracle on the same values."""
    seed, plan = args
    _, raw = make_reference(1, seed)
    reference = from_data("m", "1", names(1), raw[:, :1], "evaluation")
    ref_sorted = np.sort(raw[:, :1], axis=0)
    single = Otelml(reference)
    sweep = [Otelml(reference, threshold_config(math.exp(h))) for h in SINGLE_SWEEP]
    adwins = River(adwin(), 1, warm=raw[:, :1])
    strict = River(adwin(STRICT_DELTA), 1, warm=raw[:, :1])
    oracle = OracleCusum()
    counts = dict.fromkeys(["otelml 1", "adwin 1", "adwin strict 1", "ks 1"], 0)
    counts["oracle"] = np.zeros(ORACLE_THRESHOLDS.size, dtype=np.int64)
    counts["otelml sweep"] = np.zeros(SINGLE_SWEEP.size, dtype=np.int64)
    for chunk in null_chunks(seed, plan.null_windows):
        chunk = chunk[:, :, :1]
        counts["ks 1"] += int((ks_pvalues(ref_sorted, chunk)[:, 0] < 1 / A).sum())
        for rows in chunk:
            closed = window(single.index, features=rows)
            counts["otelml 1"] += single.update_window(closed)
            counts["otelml sweep"] += [detector.update_window(closed) for detector in sweep]
            counts["adwin 1"] += bool(adwins.update(rows)[0] >= 0)
            counts["adwin strict 1"] += bool(strict.update(rows)[0] >= 0)
            counts["oracle"] += oracle.update(rows[:, 0])
    counts["windows"] = plan.null_windows
    return counts


def single_task(args) -> dict:
    """One seed, one feature: every change, every method; {(method, change index): delay in rows or None}."""
    seed, plan = args
    reference, raw = make_reference(3, seed, features=1)
    ref_sorted = np.sort(raw, axis=0)
    out = {}
    for c, (_, shift, ratio) in enumerate(CHANGES):
        pre, post = single_stream(seed, c, plan.horizon)
        out[("otelml", c)] = otelml_delay(reference, pre, post)
        warm = np.concatenate([raw, pre.reshape(-1, 1)])
        out[("ADWIN", c)] = river_delay(River(adwin(), 1, warm=warm), post)
        out[("ADWIN strict", c)] = river_delay(River(adwin(STRICT_DELTA), 1, warm=warm), post)
        if seed < plan.kswin_seeds:
            out[("KSWIN", c)] = river_delay(River(kswin(seed), 1, warm=warm[-100:]), post)
        hits = np.flatnonzero(ks_pvalues(ref_sorted, post)[:, 0] < 1 / A)
        out[("KS", c)] = (int(hits[0]) + 1) * ROWS if hits.size else None
        if shift == ORACLE_SHIFT and ratio == 1.0:
            out["oracle"] = oracle_delays(pre, post)
            out["otelml sweep"] = [otelml_delay(reference, pre, post, math.exp(h)) for h in SINGLE_SWEEP]
    return out


def alibi_row(alibi: dict | None) -> tuple:
    """Table 3's row for Alibi Detect (or None) and its note."""
    if alibi is None:
        return None, ALIBI_SKIPPED
    cells = []
    for delays in alibi["delays"]:
        _, share, text = delay_summary(delays, ALIBI_HORIZON * ROWS)
        cells.append(f"{text} ({share:.0%})")
    label = f"Alibi Detect CVMDriftOnline (ert {ALIBI_ERT:,} values)"
    setup = f"{alibi['setup_s']:.0f} s" if alibi["setup_s"] is not None else "simulated before, cached"
    note = (
        f"Alibi Detect {ALIBI_VERSION} CVMDriftOnline: ert {ALIBI_ERT:,} values (one false alarm per "
        f"{ALIBI_ERT // ROWS} windows), windows {', '.join(map(str, ALIBI_WINDOWS))}, the first {ALIBI_REF:,} "
        f"reference rows, thresholds from {ALIBI_BOOTSTRAPS:,} simulated streams ({setup}), {alibi['ms']:.2f} ms per "
        f"value; false alarms on {alibi['windows']:,} windows, delays on {len(alibi['delays'][0])} seeds, horizon "
        f"{ALIBI_HORIZON * ROWS:,} rows. One false alarm per 10,000 windows would be ert {ROWS * 10_000:,}: its "
        "simulation needs more streams than that (about 4 h and 25 GB here), and a larger reference costs more per "
        "stream (0.34 s at 10,000 rows)"
    )
    return [label, f"{alibi['alarms'] / alibi['windows'] * 1e4:.2f}", *cells], note


def table_peers(pool, plan: Plan, false_alarms: dict, alibi: dict | None = None) -> dict:
    nulls = list(pool.map(single_null_task, [(s, plan) for s in range(plan.peer_streams)]))
    total, ks_total = {k: sum(r[k] for r in nulls) for k in nulls[0]}, false_alarms["kswin"]
    results = list(pool.map(single_task, [(s, plan) for s in range(plan.peer_seeds)]))
    methods = [
        ("otelml", "otelml DriftDetector (histograms)", total["otelml 1"], total["windows"]),
        ("ADWIN", "River ADWIN (delta=0.002)", total["adwin 1"], total["windows"]),
        ("ADWIN strict", f"River ADWIN (delta={STRICT_DELTA:g})", total["adwin strict 1"], total["windows"]),
        ("KSWIN", "River KSWIN (alpha=0.005)", ks_total["kswin 1"], ks_total["windows"]),
        ("KS", "KS per window, p < 1/A", total["ks 1"], total["windows"]),
    ]
    horizon_rows = plan.horizon * ROWS
    rows, summary = [], {}
    for key, label, alarms, windows in methods:
        row = [label, f"{alarms / windows * 1e4:.2f}"]
        for c, (change, _, _) in enumerate(CHANGES):
            delays = [r[(key, c)] for r in results if (key, c) in r]
            median, share, text = delay_summary(delays, horizon_rows)
            summary[(key, change)] = (median, share, within(delays, ROWS), delay_stats(delays, horizon_rows)[0])
            row.append(f"{text} ({share:.0%})")
        summary[(key, "false alarms")] = (alarms, windows)
        rows.append(row)
    alibi_cells, alibi_note = alibi_row(alibi)
    if alibi_cells is not None:
        rows.append(alibi_cells)
    rows += [
        matched_row(results, total, "otelml sweep", SINGLE_SWEEP, key, horizon_rows)
        for key in ("adwin 1", "adwin strict 1")
    ]
    rows += [
        matched_row(results, total, "oracle", ORACLE_THRESHOLDS, key, horizon_rows) for key in ("adwin 1", "otelml 1")
    ]
    sweep_rates = total["otelml sweep"] / total["windows"] * 1e4
    summary["sweep"] = sweep_summary(SINGLE_SWEEP, sweep_rates, [r["otelml sweep"] for r in results], horizon_rows)
    print_table(
        "3. Peers on single-feature streams: false alarms per 10k windows, median delay in rows (share detected)",
        ["detector", "FA/10k", *[c[0] for c in CHANGES]],
        rows,
        [
            f"false alarms: feature 1 of {plan.peer_streams} streams like table 1's ({total['windows']:,} windows; "
            f"KSWIN {ks_total['windows']:,})",
            f"delays: {plan.peer_seeds} seeds (KSWIN {min(plan.kswin_seeds, plan.peer_seeds)}), change after {PRE} "
            f"windows, horizon {horizon_rows:,} rows; River detectors get the reference, then the stream, value by value",
            "otelml at ln threshold and oracle: the lowest threshold with no more false alarms than ADWIN "
            "(delta=0.002 or 1e-5), or otelml, on the same streams",
            alibi_note,
        ],
    )
    return summary


def matched_row(results: list, total: dict, name: str, thresholds: np.ndarray, key: str, horizon_rows: int) -> list:
    """Detector ``name`` (run at every one of ``thresholds``) at the lowest threshold that had no more false alarms
    than the detector ``key``: a comparison at equal false alarms."""
    fewer = total[name] <= total[key]
    t = int(np.argmax(fewer)) if fewer.any() else thresholds.size - 1
    _, share, text = delay_summary([r[name][t] for r in results], horizon_rows)
    what = f"oracle CUSUM knowing +{ORACLE_SHIFT} sd" if name == "oracle" else "otelml DriftDetector"
    label = f"{what} (ln threshold {thresholds[t]:.2f})"
    cells = [f"{text} ({share:.0%})" if (shift, ratio) == (ORACLE_SHIFT, 1.0) else "-" for _, shift, ratio in CHANGES]
    return [label, f"{total[name][t] / total['windows'] * 1e4:.2f}", *cells]

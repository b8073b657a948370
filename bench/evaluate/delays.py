"""Table 2: detection delays of the DriftDetector at the model level (20 features), against the two ADWINs."""

from __future__ import annotations

import copy
import statistics

from .detectors import STRICT_DELTA, Otelml, River, adwin, first_alarm_window, river_delay
from .plan import Plan
from .report import delay_summary, print_table, within
from .streams import CHANGES, FEATURES, PRE, REF_ROWS, ROWS, make_reference, model_stream


def delay_task(args) -> list:
    """One seed: every change on 1 and on 3 of 20 features; (change, k, delay in rows or None, alarms before, ADWIN's
    delay, strict ADWIN's delay) each. The ADWINs get the reference, then the windows before the change, value by
    value."""
    seed, plan = args
    reference, raw = make_reference(2, seed)
    warm = [River(adwin(delta), FEATURES, warm=raw) for delta in (0.002, STRICT_DELTA)]
    out = []
    for c in range(len(CHANGES)):
        for k in (1, 3):
            pre, post = model_stream(seed, c, k, plan.horizon)
            model = Otelml(reference)
            before = sum(model.update(rows) for rows in pre)
            at = first_alarm_window(model.update, post)
            out.append((c, k, None if at is None else (at + 1) * ROWS, before, *adwin_delays(warm, seed, c, k, plan)))
    return out


def adwin_delays(warm: list, seed: int, c: int, k: int, plan: Plan) -> list:
    """The delays of copies of the reference-fed ADWINs ``warm`` on table 2's stream of ``seed``, change ``c`` on
    ``k`` features (fed the windows before the change first)."""
    delays = []
    for river in warm:
        river = copy.deepcopy(river)
        pre, post = model_stream(seed, c, k, plan.horizon)
        river.update(pre.reshape(-1, FEATURES))
        delays.append(river_delay(river, post))
    return delays


def table_delays(pool, plan: Plan, false_alarms: dict) -> dict:
    results = [r for rs in pool.map(delay_task, [(s, plan) for s in range(plan.delay_seeds)]) for r in rs]
    horizon_rows = plan.horizon * ROWS
    rows, summary = [], {}
    for c, (label, _, _) in enumerate(CHANGES):
        for k in (1, 3):
            mine = [r for r in results if r[0] == c and r[1] == k]
            median, share, text = delay_summary([r[2] for r in mine], horizon_rows)
            found = [r[2] for r in mine if r[2] is not None]
            summary[(label, k)] = (median, share, within([r[2] for r in mine], ROWS))
            peers = []
            for i, key in ((4, "ADWIN"), (5, "ADWIN strict")):
                peer_median, peer_share, peer_text = delay_summary([r[i] for r in mine], horizon_rows)
                summary[(key, label, k)] = (peer_median, peer_share)
                peers.append(f"{peer_text} ({peer_share:.0%})")
            rows.append(
                [
                    label,
                    f"{k} of {FEATURES}",
                    text,
                    f"{share:.0%}",
                    f"{statistics.mean(found):,.0f}" if found else "-",
                    sum(r[3] for r in mine),
                    *peers,
                ]
            )
    print_table(
        f"2. Detection delay at the model level, {FEATURES} features, in rows after the change",
        [
            "change",
            "features",
            "otelml median",
            "detected",
            "mean if detected",
            "alarms before change",
            "ADWIN(0.002), any feature",
            f"ADWIN({STRICT_DELTA:g}), any feature",
        ],
        rows,
        [
            f"{plan.delay_seeds} seeds (each its own {REF_ROWS:,}-row reference); change after {PRE} windows; horizon "
            f"{plan.horizon} windows ({horizon_rows:,} rows); one window = {ROWS} rows is the least delay",
            "otelml: DriftDetector at A=43,200; ADWIN: one per feature, fed the reference, then the stream, value by "
            "value; median (share detected). Their model-level false alarms are in table 1",
        ],
    )
    return summary

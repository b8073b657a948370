"""The closing table: each goal of the issue next to its result."""

from __future__ import annotations

import math

from .detectors import ADWIN_NAMES, ADWINS
from .report import fmt, goal_mark, print_table, rate
from .streams import A


def table_goals(false_alarms: dict, delays: dict, versus: dict, peers: dict, accuracy: dict, speed: float) -> None:
    total = false_alarms["total"]
    settings = [(total["otelml"], total["windows"])] + [(a, w) for a, w, _, _ in false_alarms["sdk"].values()]
    worst = max(settings, key=rate)
    ln_a = math.log(A)
    single_text, single_ok = versus_adwin(
        [(ln_a, rate(peers[("otelml", "false alarms")]), peers[("otelml", "+0.1 sd")][3])]
        + [(h, fa, mean) for h, fa, mean, _ in peers["sweep"]],
        [(key, peers[(key, "+0.1 sd")][3], rate(peers[(key, "false alarms")])) for key in ADWINS],
    )
    model_text, model_ok = versus_adwin(versus["configs"], versus["adwins"])
    single, model = peers[("otelml", "+0.5 sd")], delays[("+0.5 sd", 1)]
    acc50, acc200 = accuracy[("otelml AccuracyDetector", 50)], accuracy[("otelml AccuracyDetector", 200)]
    rows = [
        [
            "<= 1 false drift alert per 10,000 windows per model",
            f"worst setting {rate(worst):.2f} per 10k ({worst[0]} in {worst[1]:,})",
            goal_mark(rate(worst) <= 1),
        ],
        ["+0.1 sd: faster than ADWIN at equal or fewer false alarms (one feature)", single_text, single_ok],
        ["+0.1 sd: faster than ADWIN at equal or fewer false alarms (3 of 20 features)", model_text, model_ok],
        [
            "+0.5 sd within 200 samples (one feature)",
            f"median {fmt(single[0])} rows, {single[2]:.0%} within 200",
            goal_mark(single[0] <= 200),
        ],
        [
            "+0.5 sd within 200 samples (1 of 20 features)",
            f"median {fmt(model[0])} rows, {model[2]:.0%} within 200",
            goal_mark(model[0] <= 200),
        ],
        [
            "10-point accuracy drop within 500 labelled predictions",
            f"median {fmt(acc50[0])} at 50/window ({acc50[1]:.0%} within 500), {fmt(acc200[0])} at 200/window "
            f"({acc200[1]:.0%})",
            goal_mark(max(acc50[0], acc200[0]) <= 500),
        ],
        ["1,000 features in one window under 50 ms", f"median {speed * 1e3:.1f} ms", goal_mark(speed < 0.05)],
    ]
    print_table(
        "Goals (+0.1 sd judged on the mean delay, +0.5 sd and accuracy on the median)",
        ["goal", "result", "verdict"],
        rows,
        left=(0, 1),
    )


def versus_adwin(configs: list, adwins: list) -> tuple:
    """The text and verdict of "faster than ADWIN at equal or fewer false alarms": for every ADWIN (key, mean delay,
    false alarms per 10k windows), otelml at the lowest of its thresholds ``configs`` (ln A, false alarms per 10k,
    mean delay) with no more false alarms than that ADWIN on the same streams must be faster on the mean (medians
    of otelml's delays, whole windows, are too coarse to tell a few percent)."""
    parts, ok = [], True
    for key, theirs, fa in adwins:
        fits = [config for config in sorted(configs) if config[1] <= fa]
        text = f"{ADWIN_NAMES[key]} {fmt(theirs)} (FA/10k {fa:.2f})"
        if not fits:
            ok = False
            parts.append(f"{text} vs otelml: no threshold tried had as few")
            continue
        h, mine_fa, mine = fits[0]
        ok = ok and mine < theirs
        parts.append(f"{text} vs otelml at ln {h:.2f} {fmt(mine)} (FA/10k {mine_fa:.2f})")
    return "; ".join(parts), goal_mark(ok)

"""What the tables share: rates, delay summaries, the goals' verdicts and the printing of a table."""

from __future__ import annotations

import math
import statistics
import sys

import numpy as np


def goal_mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def fmt(rows: float) -> str:
    return "none" if math.isinf(rows) else f"{rows:,.0f}"


def rate(alarms_windows: tuple) -> float:
    alarms, windows = alarms_windows
    return alarms / windows * 1e4


def within(delays: list, rows: int) -> float:
    """Share of runs that alarmed at most ``rows`` rows after the change."""
    return statistics.mean(d is not None and d <= rows for d in delays) if delays else 0.0


def delay_summary(delays: list, horizon_rows: int) -> tuple:
    """Median delay (None counts as beyond the horizon), share detected, and its text."""
    found = [d for d in delays if d is not None]
    share = len(found) / len(delays) if delays else 0.0
    median = statistics.median(d if d is not None else math.inf for d in delays) if delays else math.inf
    text = f"> {horizon_rows:,}" if math.isinf(median) else f"{median:,.0f}"
    return median, share, text


def delay_stats(delays: list, horizon_rows: int) -> tuple:
    """Mean delay (a seed without an alarm counts as the horizon, so the mean is a lower bound) and median delay."""
    return statistics.mean(horizon_rows if d is None else d for d in delays), delay_summary(delays, horizon_rows)[0]


def sweep_summary(thresholds: np.ndarray, false_alarms: np.ndarray, delays: list, horizon_rows: int) -> list:
    """(ln threshold, false alarms per 10k windows, mean delay, median delay) of otelml at each of ``thresholds``:
    ``delays`` holds one delay per threshold for every seed."""
    return [
        (float(h), float(fa), *delay_stats([d[i] for d in delays], horizon_rows))
        for i, (h, fa) in enumerate(zip(thresholds, false_alarms))
    ]


def print_table(title: str, columns: list, rows: list, notes=(), left=(0,)) -> None:
    """A title, notes, then columns padded to their widest cell (numbers right-aligned, ``left`` columns not)."""
    cells = [[str(c) for c in columns]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    print(f"\n{title}")
    for note in notes:
        print(f"  {note}")
    for row in cells:
        text = "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
        print("  " + text.rstrip())
    sys.stdout.flush()

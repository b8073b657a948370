"""The per-caller bets: a CUSUM e-detector on wins, mixed over several stakes (``edetector``'s log-sum-exp)."""

from __future__ import annotations

import math

import numpy as np

STAKES = np.array([0.25, 0.5, 0.75, 0.95])  # shares of the stake bet on "win"; a loss keeps 1 - stake of it


class Bet:
    """A CUSUM e-detector on wins (a share in [0, 1] each) whose expectation is at most ``odds`` under the null: each
    bet multiplies the stake by ``1 + stake (win - odds) / odds``; several such bets at once (one per row of
    ``odds``, on nested events) are mixed with ``STAKES``; ``first`` is where the statistic last left zero."""

    def __init__(self, bets: int = 1):
        self.w = np.zeros((bets, STAKES.size))
        self.wins = 0
        self.bets = 0
        self.first: tuple = ()  # (trace id, span id, time) of the first query of the current suspicious run

    def update(self, win, at: tuple, odds=0.5) -> float:
        win = np.asarray(win, dtype=float).reshape(-1)
        odds = np.asarray(odds, dtype=float).reshape(-1)
        bets = 1 + STAKES[None, :] * (win - odds)[:, None] / odds[:, None]
        before = self.w
        self.w = np.maximum(before, 0.0) + np.log(bets)
        self.wins += float(win[-1]) > 0
        self.bets += 1
        value = self.value()
        if not self.first or (value > 0 and _value(before) <= 0):  # the value before only when it matters
            self.first = at
        return value

    def value(self) -> float:
        return _value(self.w)


def _value(w: np.ndarray) -> float:
    """The mixture's log e-value: ``log_sum_exp`` of the bets' log wealth less the log of their number, in floats (on
    a dozen values numpy's calls cost more than the sums)."""
    values = w.ravel().tolist()
    top = max(values)
    if not math.isfinite(top):
        return top - math.log(len(values))
    return top + math.log(sum(math.exp(v - top) for v in values)) - math.log(len(values))

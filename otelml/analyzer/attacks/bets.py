"""The per-caller bets: a CUSUM e-detector on wins, mixed over several stakes (``edetector``'s log-sum-exp)."""

from __future__ import annotations

import math

import numpy as np

from ..detectors.edetector import log_sum_exp

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
        before = self.value()
        win, odds = np.atleast_1d(np.asarray(win, dtype=float)), np.atleast_1d(np.asarray(odds, dtype=float))
        bets = 1 + STAKES[None, :] * (win - odds)[:, None] / odds[:, None]
        self.w = np.maximum(self.w, 0.0) + np.log(bets)
        self.wins += float(win[-1]) > 0
        self.bets += 1
        value = self.value()
        if before <= 0 < value or not self.first:
            self.first = at
        return value

    def value(self) -> float:
        return log_sum_exp(self.w.ravel()) - math.log(self.w.size)

"""One model's traffic as the per-caller tests compare with it: its recent fingerprints (with who sent them), a
uniform reservoir sample of its past ones, which inputs were answered before, and how far its callers got."""

from __future__ import annotations

import math

import numpy as np

from .answered import Answered
from .config import AttackConfig
from .fingerprints import distances, same


class ModelTraffic:
    """One model's recent fingerprints (with who sent them), reservoir, and how far its callers got."""

    def __init__(self, config: AttackConfig, bits: int, seed: int):
        self.config = config
        self.bits = bits
        words = (bits + 63) // 64 + 1  # the SimHash, then the digest
        self.recent = np.zeros((0, words), dtype=np.uint64)
        self.recent_callers = np.zeros(0, dtype=object)
        self.recent_novel = np.zeros(0, dtype=np.int8)  # 1 new to the model, 0 answered before, -1 without digest
        self.answered = Answered(config.remembered_inputs)
        self.reservoir = np.zeros((0, words), dtype=np.uint64)
        self.seen = 0
        self.rng = np.random.default_rng(seed)
        self.callers_seen = 0
        self.reached = np.zeros(256, dtype=np.int64)  # callers that reached each quarter-octave of distinct queries
        self.bursts = np.zeros(64, dtype=np.int64)  # ... of distinct queries among the recent ones

    def add(self, caller: str, x: np.ndarray, ordinary: bool = True) -> bool | None:
        """Add a distinct query; returns whether no ordinary caller asked its exact input before (None if the
        fingerprint has no digest). The asks of callers that are not ``ordinary`` are not counted."""
        c = self.config
        novel = self.answered.add(int(x[-1])) if x[-1] and ordinary else None
        self.recent = np.vstack([self.recent[-(c.recent - 1) :], x[None]])
        self.recent_callers = np.append(self.recent_callers[-(c.recent - 1) :], np.array([caller], dtype=object))
        self.recent_novel = np.append(self.recent_novel[-(c.recent - 1) :], np.int8(-1 if novel is None else novel))
        self.seen += 1
        if self.reservoir.shape[0] < c.reservoir:
            self.reservoir = np.vstack([self.reservoir, x[None]])
        else:
            slot = int(self.rng.integers(0, self.seen))
            if slot < c.reservoir:
                self.reservoir[slot] = x
        return novel

    def novelty(self, caller: str) -> float | None:
        """An upper bound on the share of new inputs among other callers' recent queries (two standard errors
        above it, at least ``novelty_floor``); None while fewer than 64 are known."""
        known = self.recent_novel[(self.recent_callers != caller) & (self.recent_novel >= 0)]
        if known.size < 64:
            return None
        rate = float(known.mean())
        return max(self.config.novelty_floor, rate + 2 * math.sqrt(rate * (1 - rate) / known.size) + 1 / known.size)

    def sample(self, n: int) -> np.ndarray:
        if self.reservoir.shape[0] <= n:
            return self.reservoir
        return self.reservoir[self.rng.choice(self.reservoir.shape[0], size=n, replace=False)]

    def neighbours(self, caller: str, x: np.ndarray, radius: int) -> tuple:
        """Recent queries of other callers within ``radius`` bits of ``x`` (not ``x`` itself), the same count in as
        many reservoir fingerprints, and the other callers near ``x``."""
        others = self.recent_callers != caller
        recent = self.recent[others]
        if recent.shape[0] < 64 or self.reservoir.shape[0] < recent.shape[0]:
            return 0, 0, []
        close = (distances(x, recent) <= radius) & ~same(x, recent)
        past = self.sample(recent.shape[0])
        before = int(((distances(x, past) <= radius) & ~same(x, past)).sum())
        return int(close.sum()), before, list(dict.fromkeys(self.recent_callers[others][close]))

    def climb(self, reached: np.ndarray, best: int, value: int) -> tuple[int, bool]:
        """A caller's count (distinct queries, or its distinct queries among the recent ones) is ``value``, its
        highest quarter-octave so far ``best``; each level it newly reaches is counted in ``reached``. Returns the
        new best, and whether the count is rare: a new level, ``extraction_margin`` times higher than a level that
        fewer than one in ``extraction_rarity`` other callers reached (at least one caller must be first)."""
        c = self.config
        level = min(int(4 * math.log2(value)), reached.size - 1) if value > 0 else -1
        if level <= best:
            return best, False
        reached[best + 1 : level + 1] += 1
        below = max(level - round(4 * math.log2(c.extraction_margin)), 0)
        others = float(reached[below]) - 1
        rare = self.callers_seen >= c.min_population and others < max(self.callers_seen / c.extraction_rarity, 1)
        return level, rare

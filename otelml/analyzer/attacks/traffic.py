"""One model's traffic as the per-caller tests compare with it: its recent fingerprints (with who sent them), a
uniform reservoir sample of its past ones, which inputs were answered before, and how far its callers got."""

from __future__ import annotations

import math

import numpy as np

from .answered import Answered
from .config import AttackConfig
from .fingerprints import hamming, mean_smallest


class ModelTraffic:
    """One model's recent fingerprints (with who sent them), reservoir, and how far its callers got.

    The recent fingerprints are a ring (``head`` is the next slot written, the oldest once all ``recent`` are
    filled) and the reservoir follows them in the same arrays (``hashes``: SimHash words, one row per word;
    ``digests``: exact-input digests), so one XOR and popcount gives a query's distances to both (``row``).
    Callers are small integers (``ids``) while they have queries in the ring; per index, how many (``refs``), how
    many with a known novelty (``known``) and how many of those new to the model (``novel``), so that the tests
    count other callers' recent queries without masking the ring."""

    def __init__(self, config: AttackConfig, bits: int, seed: int):
        self.config = config
        self.bits = bits
        words = (bits + 63) // 64  # of the SimHash
        size = config.recent + config.reservoir
        self.hashes = np.zeros((words, size), dtype=np.uint64)  # the ring of recent ones, then the reservoir (by word)
        self.digests = np.zeros(size, dtype=np.uint64)
        self.recent_count = 0  # slots of the ring filled
        self.head = 0  # the ring's next slot
        self.recent_ids = np.full(config.recent, -1, dtype=np.int64)  # the index of the caller of each slot
        self.recent_novel = np.zeros(config.recent, dtype=np.int8)  # 1 new to the model, 0 answered before, -1 without
        # digest (or its caller set apart)
        self.ids: dict = {}  # caller id -> index, while the caller has queries in the ring
        self.names: list = []  # index -> caller id (None: free)
        self.free: list = []  # free indices
        self.refs: list = []  # per index: its queries in the ring
        self.known: list = []  # ... of them with a known novelty
        self.novel: list = []  # ... of them new to the model
        self.known_total = 0
        self.novel_total = 0
        self.answered = Answered(config.remembered_inputs)
        self.filled = 0  # reservoir slots filled
        self.seen = 0
        self.rng = np.random.default_rng(seed)
        self.uniforms = self.rng.random(64)  # drawn 64 at a time (one numpy call per query costs more than the rest)
        self.used = 0
        self.callers_seen = 0
        self.reached = np.zeros(256, dtype=np.int64)  # callers that reached each quarter-octave of distinct queries
        self.bursts = np.zeros(64, dtype=np.int64)  # ... of distinct queries among the recent ones

    def uniform(self) -> float:
        if self.used == self.uniforms.size:
            self.uniforms, self.used = self.rng.random(64), 0
        self.used += 1
        return float(self.uniforms[self.used - 1])

    def add(self, caller: str, x: np.ndarray, ordinary: bool = True) -> bool | None:
        """Add a distinct query; returns whether no ordinary caller asked its exact input before (None if the
        fingerprint has no digest). The asks of callers that are not ``ordinary`` are not counted."""
        c = self.config
        novel = self.answered.add(int(x[-1])) if x[-1] and ordinary else None
        slot = self.head
        if self.recent_count == c.recent:
            self._drop(slot)
        else:
            self.recent_count += 1
        self.head = (slot + 1) % c.recent
        self.hashes[:, slot], self.digests[slot] = x[:-1], x[-1]
        index = self.ids.get(caller)
        if index is None:
            index = self._index(caller)
        flag = -1 if novel is None else int(novel)
        self.recent_ids[slot], self.recent_novel[slot] = index, flag
        self.refs[index] += 1
        if flag >= 0:
            self.known[index] += 1
            self.novel[index] += flag
            self.known_total += 1
            self.novel_total += flag
        self.seen += 1
        if self.filled < c.reservoir:
            slot, self.filled = self.filled, self.filled + 1
        else:  # Algorithm R: the new one replaces a uniform slot with probability reservoir / seen
            slot = int(self.uniform() * self.seen)
        if slot < c.reservoir:
            self.hashes[:, c.recent + slot], self.digests[c.recent + slot] = x[:-1], x[-1]
        return novel

    def _index(self, caller: str) -> int:
        if self.free:
            index = self.free.pop()
            self.names[index] = caller
        else:
            index = len(self.names)
            self.names.append(caller)
            self.refs.append(0)
            self.known.append(0)
            self.novel.append(0)
        self.ids[caller] = index
        return index

    def _drop(self, slot: int) -> None:
        """The oldest recent query leaves the ring."""
        index, flag = int(self.recent_ids[slot]), int(self.recent_novel[slot])
        self.refs[index] -= 1
        if flag >= 0:
            self.known[index] -= 1
            self.novel[index] -= flag
            self.known_total -= 1
            self.novel_total -= flag
        if self.refs[index] == 0:
            del self.ids[self.names[index]]
            self.names[index] = None
            self.free.append(index)

    def burst(self, caller: str) -> int:
        """The caller's queries among the recent ones."""
        index = self.ids.get(caller)
        return 0 if index is None else self.refs[index]

    def set_apart(self, caller: str) -> None:
        """The caller's recent queries no longer count in the novelty of others' queries."""
        index = self.ids.get(caller)
        if index is None:
            return
        self.recent_novel[self.recent_ids == index] = -1
        self.known_total -= self.known[index]
        self.novel_total -= self.novel[index]
        self.known[index] = self.novel[index] = 0

    def novelty(self, caller: str) -> float | None:
        """An upper bound on the share of new inputs among other callers' recent queries (two standard errors
        above it, at least ``novelty_floor``); None while fewer than 64 are known."""
        index = self.ids.get(caller)
        known, novel = self.known_total, self.novel_total
        if index is not None:
            known, novel = known - self.known[index], novel - self.novel[index]
        if known < 64:
            return None
        rate = novel / known
        return max(self.config.novelty_floor, rate + 2 * math.sqrt(rate * (1 - rate) / known) + 1 / known)

    def row(self, x: np.ndarray) -> tuple:
        """Distances from ``x`` to every slot of the ring and the reservoir (filled or not), and which slots hold
        the very input ``x`` (``fingerprints.same``)."""
        d = hamming(x[:-1], self.hashes)
        if x[-1]:
            return d, self.digests == x[-1]
        return d, (d == 0) & (self.digests == 0)

    def sample_knn(self, row: tuple, n: int, k: int, draws: dict) -> float:
        """``knn`` of the query of ``row`` among ``n`` reservoir fingerprints drawn uniformly without replacement
        (all of them if there are no more). The draw: a window of ``n`` consecutive positions, from a uniform offset,
        of a uniform permutation of the filled slots drawn once per request (``draws``, then dropped). Each query's
        sample is then exactly a uniform ``n``-subset, as ``rng.choice(replace=False)`` drew it; samples of queries of
        one request overlap more often than independent ones would, which no test's false-alarm bound depends on
        (each bounds one query's error, or takes the sample only as a scale: evasion probing's *near*)."""
        d, same_input = row
        start, filled = self.config.recent, self.filled
        if filled <= n:
            picked = slice(start, start + filled)
        else:
            order = draws.get(self)
            if order is None or order.size != filled:
                order = draws[self] = self.rng.permutation(filled) + start
            offset = int(self.uniform() * filled)
            picked = (
                order[offset : offset + n]
                if offset + n <= filled
                else np.take(order, range(offset, offset + n), mode="wrap")
            )
        return mean_smallest(d[picked][~same_input[picked]], k)

    def neighbours(self, caller: str, row: tuple, radius: int) -> tuple:
        """Recent queries of other callers within ``radius`` bits of the query of ``row`` (not the very input), the
        same count among as many reservoir fingerprints, and the other callers near it (oldest query first).

        The reservoir count is drawn from its distribution: of ``m`` fingerprints drawn uniformly without
        replacement from a reservoir of ``filled`` of which ``K`` lie within ``radius``, the number within is
        Hypergeometric(K, filled - K, m), exactly what counting a ``rng.choice`` sample gave, without the sample."""
        c = self.config
        index = self.ids.get(caller)
        n = self.recent_count
        m = n - (0 if index is None else self.refs[index])
        if m < 64 or self.filled < m:
            return 0, 0, []
        d, same_input = row
        close = (d <= radius) & ~same_input
        recent = close[:n]
        if index is not None:
            recent = recent & (self.recent_ids[:n] != index)
        now = int(np.count_nonzero(recent))
        within = int(np.count_nonzero(close[c.recent : c.recent + self.filled]))
        if m == self.filled or within in (0, self.filled):
            before = within if m == self.filled else (m if within else 0)
        else:
            before = int(self.rng.hypergeometric(within, self.filled - within, m))
        if now <= before:  # no campaign: the callers are not needed
            return now, before, []
        slots = np.flatnonzero(recent)
        if n == c.recent:
            slots = slots[np.argsort((slots - self.head) % c.recent, kind="stable")]
        return now, before, list(dict.fromkeys(self.names[i] for i in self.recent_ids[slots].tolist()))

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

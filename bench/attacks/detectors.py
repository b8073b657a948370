"""Candidate per-caller attack detectors over what the SDK puts on spans: the caller id and the SimHash fingerprint
of each input row (``otelml.input.fingerprint``, hex).

Every detector has ``update(caller, fingerprint, digest=None) -> score``: higher means more suspicious, ``-inf``
means nothing to judge yet; an alarm is ``score >= threshold`` (thresholds are calibrated on benign traffic
elsewhere). ``digest`` is an optional exact identity of the row (a keyed hash of its raw bytes, which the SDK does
not send today): with it, a repeat means the same row; without it, the same fingerprint. Memory is bounded: at most
``callers`` callers (least recently seen dropped) with bounded state each, and a bounded global table.
"""

from __future__ import annotations

import collections
import math

import numpy as np
from scipy import stats

NOTHING = -math.inf


def words(fingerprint: str) -> np.ndarray:
    """A hex fingerprint as 64-bit words, for Hamming distances with ``np.bitwise_count``."""
    return np.frombuffer(bytes.fromhex(fingerprint), dtype=">u8").astype(np.uint64)


def hamming(table: np.ndarray, fingerprint: np.ndarray) -> np.ndarray:
    return np.bitwise_count(table ^ fingerprint).sum(axis=1)


class Callers:
    """State per caller, made by ``factory()``, for at most ``limit`` callers (least recently seen dropped)."""

    def __init__(self, factory, limit: int):
        self._factory, self._limit = factory, limit
        self._states: collections.OrderedDict = collections.OrderedDict()

    def __call__(self, caller: str):
        state = self._states.get(caller)
        if state is None:
            state = self._states[caller] = self._factory()
            if len(self._states) > self._limit:
                self._states.popitem(last=False)
        else:
            self._states.move_to_end(caller)
        return state


class Recent:
    """The last ``size`` distinct queries of one caller: fingerprints (as words) and keys (digest or fingerprint)."""

    def __init__(self, size: int):
        self.size, self.n = size, 0
        self.table: np.ndarray | None = None
        self.keys: collections.deque = collections.deque()
        self.known: set = set()

    def seen(self, key) -> bool:
        return key in self.known

    def distances(self, fingerprint: np.ndarray) -> np.ndarray:
        return hamming(self.table[: min(self.n, self.size)], fingerprint) if self.n else np.empty(0, dtype=int)

    def add(self, key, fingerprint: np.ndarray) -> None:
        if self.table is None:
            self.table = np.zeros((self.size, len(fingerprint)), dtype=np.uint64)
        self.table[self.n % self.size] = fingerprint
        self.n += 1
        self.keys.append(key)
        self.known.add(key)
        if len(self.keys) > self.size:
            self.known.discard(self.keys.popleft())


class CallerKnn:
    """(a) Chen, Carlini and Wagner's stateful detector on fingerprints: the mean Hamming distance from a new query
    to its ``k`` nearest among the caller's last ``buffer`` distinct queries; score = minus that mean. Repeats of a
    query still in the buffer are not scored (legitimate repeaters)."""

    def __init__(self, k: int = 5, buffer: int = 100, callers: int = 100_000):
        self.k = k
        self._callers = Callers(lambda: Recent(buffer), callers)

    def update(self, caller: str, fingerprint: str, digest=None) -> float:
        recent, key, fp = self._callers(caller), digest or fingerprint, words(fingerprint)
        if recent.seen(key):
            return NOTHING
        distances = recent.distances(fp)
        recent.add(key, fp)
        if len(distances) < self.k:
            return NOTHING
        return -float(np.partition(distances, self.k - 1)[: self.k].mean())


class GlobalLsh:
    """(b) Blacklight-style, across all callers: a global table of the distinct queries seen among the last
    ``window`` queries, indexed by LSH bands of the fingerprint bits (``bands`` slices). Score = how many distinct
    recent queries (other than this one) lie within Hamming ``radius`` of it: many close-but-different queries,
    from anyone, is probing. Holds at most ``capacity`` distinct queries."""

    def __init__(self, bits: int, bands: int = 8, radius: int = 3, window: int = 10_000, capacity: int = 50_000):
        self.bits, self.bands, self.radius, self.window, self.capacity = bits, bands, radius, window, capacity
        self._width = bits // bands
        self._seq = 0
        self._entries: collections.OrderedDict = collections.OrderedDict()  # key -> (fingerprint int, words, last seq)
        self._buckets: dict = collections.defaultdict(set)  # (band, value) -> keys

    def _band_values(self, value: int):
        mask = (1 << self._width) - 1
        return [(b, (value >> (b * self._width)) & mask) for b in range(self.bands)]

    def update(self, caller: str, fingerprint: str, digest=None) -> float:
        self._seq += 1
        key, value = digest or fingerprint, int(fingerprint, 16)
        self._expire()
        bands = self._band_values(value)
        candidates = set().union(*(self._buckets.get(band, ()) for band in bands))
        candidates.discard(key)
        score = 0
        if candidates:
            table = np.array([self._entries[c][1] for c in candidates])
            score = int((hamming(table, words(fingerprint)) <= self.radius).sum())
        if key in self._entries:
            self._entries.move_to_end(key)
        else:
            for band in bands:
                self._buckets[band].add(key)
        self._entries[key] = (value, words(fingerprint), self._seq)
        return float(score)

    def _expire(self) -> None:
        while self._entries:
            key, (value, _, seq) = next(iter(self._entries.items()))
            if seq > self._seq - self.window and len(self._entries) < self.capacity:
                return
            del self._entries[key]
            for band in self._band_values(value):
                bucket = self._buckets[band]
                bucket.discard(key)
                if not bucket:
                    del self._buckets[band]


class CallerVolume:
    """(c1) Extraction by volume: how many distinct queries the caller has sent (counted up to ``cap``)."""

    def __init__(self, cap: int = 4_096, callers: int = 100_000):
        self._cap = cap
        self._callers = Callers(set, callers)

    def update(self, caller: str, fingerprint: str, digest=None) -> float:
        seen = self._callers(caller)
        if len(seen) < self._cap:
            seen.add(digest or fingerprint)
        return float(len(seen))


class CallerPrada:
    """(c2) PRADA (Juuti et al. 2019) on fingerprints: for each new distinct query of a caller, its minimum Hamming
    distance to the caller's previous ``buffer`` distinct queries; once ``minimum`` such distances are in, the
    Shapiro-Wilk W of the last ``buffer`` of them. Score = 1 - W (benign distances look normal, synthetic ones
    do not). Tested every ``every`` new distances to keep it cheap."""

    def __init__(self, buffer: int = 200, minimum: int = 30, every: int = 5, callers: int = 100_000):
        self.minimum, self.every = minimum, every
        self._callers = Callers(lambda: (Recent(buffer), collections.deque(maxlen=buffer), [NOTHING]), callers)

    def update(self, caller: str, fingerprint: str, digest=None) -> float:
        recent, gaps, last = self._callers(caller)
        key, fp = digest or fingerprint, words(fingerprint)
        if recent.seen(key):
            return last[0]
        distances = recent.distances(fp)
        recent.add(key, fp)
        if len(distances):
            gaps.append(int(distances.min()))
        if len(gaps) >= self.minimum and len(gaps) % self.every == 0:
            values = np.array(gaps)
            last[0] = 1.0 if np.ptp(values) == 0 else 1.0 - float(stats.shapiro(values).statistic)
        return last[0]


class CallerNovelty:
    """(c3) Extraction with synthetic queries: how many of a caller's distinct queries were novel, farther than
    ``radius`` (Hamming) from every one of the last ``capacity`` distinct queries anyone sent. Silent for the first
    ``warm`` queries, while the global table fills."""

    def __init__(self, bits: int, radius: int, capacity: int = 4_096, warm: int = 2_000, callers: int = 100_000):
        self.radius, self.warm, self._seen = radius, warm, 0
        self._table = Recent(capacity)
        self._callers = Callers(lambda: [0, set()], callers)

    def update(self, caller: str, fingerprint: str, digest=None) -> float:
        self._seen += 1
        count, mine = self._callers(caller)
        key, fp = digest or fingerprint, words(fingerprint)
        if not self._table.seen(key):
            distances = self._table.distances(fp)
            self._table.add(key, fp)
            if key not in mine and (len(distances) == 0 or distances.min() > self.radius):
                mine.add(key)
                self._callers(caller)[0] = count = count + 1
        return float(count) if self._seen > self.warm else NOTHING

"""Attacks through the model's own API, seen per caller in spans: evasion probing, split campaigns, extraction.

The SDK can put a keyed caller id (``otelml.caller.id``) and a SimHash fingerprint of each input row
(``otelml.input.fingerprint``) on every call's span. Fingerprints at a small Hamming distance came from inputs at a
small angle from each other; nothing else about the input is known here. Per model, this module keeps:

- per caller (at most ``max_callers`` in all, least recently seen forgotten first): its last ``history`` distinct
  fingerprints, its query, distinct and repeat counts, the first and latest trace of what looks like a campaign;
- globally: the last ``recent`` distinct fingerprints of all callers, a uniform reservoir sample of ``reservoir``
  fingerprints over the whole past (the picture of ordinary traffic), and how many ordinary callers asked each
  exact input.

Three tests:

- evasion probing (Chen, Carlini & Wagner 2020), a CUSUM e-detector per caller on win shares (the bet
  ``1 + stake (win - q) / q``, mixed over four stakes and three ``q``; alarm at ``ln A``): a query that is *near*
  (its mean distance to its ``k`` nearest earlier distinct queries of the same caller is below ``ratio`` times the
  same distance to as many fingerprints drawn from the reservoir) wins the share of its nearest earlier queries
  (all those tied at the least distance) that are among the caller's last ``L``; ``q = L / n`` of its ``n`` kept
  queries, for three ``L``: the last query alone, the last ``latest / 4`` share and the last ``latest`` share
  (a query that is not near wins nothing). Under the null that the caller's distinct queries are exchangeable
  (drawn in any order from one distribution, whatever it is: a browser, or a caller re-sending a few rows of its
  own with noise), the nearest are placed at random among them, so the expected win is ``q`` and the caller alarms
  less than once per ``A`` distinct queries. A walk (each query a small step from the last ones: HopSkipJump's
  binary and step searches, Boundary's steps) keeps winning, and most on the bet on the last query. What no
  fingerprint test can tell apart: a cloud of queries around one point in no order, such as HopSkipJump's gradient
  estimation and a jittered re-sender; the campaign is found at its next steps. Exact repeats are counted, not
  bet on. Callers whose successive inputs are related (a drifting sensor, a time series) do walk and can alarm
  (``trusted`` exempts callers from the extraction tests only).
- split probing (after Blacklight, Li et al. 2022), one query at a time, whoever sends it: ``n`` of the recent
  queries of *other* callers lie within ``radius`` bits of it (the very same input left out), against ``m`` of as
  many reservoir fingerprints. If recent and past traffic are alike, ``n`` given ``n + m`` is Binomial(1/2), and the
  query alarms when that tail is below ``1 / split_false_alarms`` and the near queries came from at least
  ``split_callers`` other callers (an ordinary caller who happens to ask near a one-account campaign is not one of
  a campaign). A campaign spread over many accounts makes the recent traffic dense around its points; ordinary
  traffic is no denser now than before. The finding names the other callers near the query.
- extraction, two signals. Novel inputs: per caller, a CUSUM e-detector betting that its distinct queries are
  inputs no ordinary caller asked before (the exact-input digest, counted in a fixed-size counting Bloom filter of
  the last ``remembered_inputs`` x 2 asks) more often than other callers' recent queries are (their share, plus
  two standard errors, at least ``novelty_floor``; it alarms from ``min_novel_queries`` distinct queries on): a
  thief querying its own data or a synthetic grid asks what nobody else asks. A query *near* the caller's own
  earlier ones (as in evasion probing, or within ``radius`` bits of one) is not bet on: it asks almost what the
  caller asked before (a re-sent row with noise, a step of a walk) and teaches a thief little; exact repeats are
  not bet on either. Where every input
  is new anyway (continuous features) the share is near 1 and the test stays silent.
  Volume: a caller's distinct queries, in all ("volume") or among the model's last ``recent`` ("burst"),
  reaching ``extraction_margin`` (2) times a count that fewer than one in ``extraction_rarity`` other callers
  reached (counted on a quarter-octave scale; at least ``min_extraction_queries`` in all or ``min_burst`` recent;
  once ``min_population`` callers are known): the volume signature of a thief that needs hundreds of answers
  (Juuti et al., PRADA, 2019, on the query patterns of extraction). Callers listed in ``trusted`` (your own
  gateways, batch jobs) are left out of both and of the population they compare with, and so is every caller
  once alarmed (one thief must not hide the next). A caller whose inputs nobody else sends (a new client with
  its own data) looks like a thief to the novelty signal: list it in ``trusted``.

Why exchangeability gives ``q``: given the set of the caller's first ``t`` distinct queries and the newest, the
order of the others is uniformly random, so the positions of the newest one's nearest among them are a uniform
draw without replacement and the share of them among the last ``L`` has mean ``L / n`` (exactly so over a caller's whole past; the test keeps its last ``history``, which leaves a small dependence between
successive bets). The *near* condition only makes wins rarer: an ordinary browser is rarely near its own queries
at all. Callers who ask about a narrow region in no particular order (a shop querying its own products) stay
exchangeable and do not alarm.

Example:
    >>> watch = CallerWatch()
    >>> rng = np.random.default_rng(0)
    >>> for i in range(400):  # ordinary traffic: 40 callers, random inputs
    ...     _ = watch.observe("m", "1", f"c{i % 40}", [random_print(rng)], "t", "s", i)
    >>> walk = [random_print(rng)]  # mallory walks: each query a step (one bit) from the last
    >>> for _ in range(60):
    ...     walk.append(near(walk[-1], rng, flips=1))
    >>> found = [watch.observe("m", "1", "mallory", [x], "t", "s", 400 + i) for i, x in enumerate(walk)]
    >>> any(f.detector == "evasion probing" for fs in found for f in fs)
    True
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field, fields

import numpy as np
from scipy import stats

from .. import semconv
from .detectors.base import ADVERSARIAL, CRITICAL, WARNING, Finding
from .detectors.edetector import log_sum_exp

_STATISTICS = {
    "evasion probing": "log e-value (nearer than ordinary)",
    "split probing": "-ln p (neighbours now against before)",
    "extraction": "distinct queries, in all or among the recent (rarer than 1 in threshold callers)",
    "novel inputs": "log e-value (new to the model more often than others' queries)",
}
_STAKES = np.array([0.25, 0.5, 0.75, 0.95])  # shares of the stake bet on "win"; a loss keeps 1 - stake of it
_WALKS = np.array([0.0, 0.25, 1.0])  # evasion probing's bets: the nearest is the last query, among the last
# ``latest / 4`` share of the caller's history, among the last ``latest`` share
_MULTIPLIERS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9)  # Bloom filter positions of a digest
FORMAT = 4  # of the checkpointed state; a checkpoint of another format starts the attack state afresh


@dataclass(frozen=True)
class AttackConfig:
    false_alarms: float = 1e5  # A: distinct queries of an ordinary caller per false alarm, on average
    k: int = 3  # nearest neighbours averaged
    ratio: float = 0.5  # a query is near when its neighbours are this much nearer than the reservoir's ...
    latest: float = 0.25  # ... and wins when its nearest earlier queries are among this share of the caller's latest
    min_history: int = 4  # distinct queries of a caller before its own history is bet on
    history: int = 64  # distinct fingerprints kept per caller
    recent: int = 1024  # distinct fingerprints of all callers kept in arrival order
    reservoir: int = 2048  # uniform sample of all past fingerprints
    radius: int = 0  # bits within which split probing counts neighbours (0: a 32nd of the fingerprint's bits)
    split_false_alarms: float = 1e6  # ordinary queries per false split-probing alarm, at most
    split_callers: int = 3  # other callers the near recent queries must come from (one is evasion probing's job)
    max_callers: int = 20_000  # callers kept, over all models; the least recently seen are forgotten
    max_models: int = 1000  # models watched; fingerprints of further models are rejected (counted)
    max_pending: int = 1000  # alarms kept per model version until its next window closes (the latest)
    trusted: tuple = ()  # caller ids (as on the spans) exempt from the volume test: your own gateways and batch jobs
    extraction_rarity: float = 1e4  # a caller is a volume outlier when fewer than 1 in this many got as far ...
    extraction_margin: float = 2.0  # ... as a count this many times smaller
    min_population: int = 1000  # callers seen before the extraction test speaks
    min_extraction_queries: int = 50
    min_burst: int = 16  # distinct queries among the model's recent ones before the burst test speaks
    remembered_inputs: int = 16_384  # asks per generation of the "answered before" filter (two are kept)
    novelty_floor: float = 0.05  # the least share of new inputs assumed of ordinary callers
    min_novel_queries: int = 50  # distinct queries of a caller before the novelty signal speaks

    def __post_init__(self):
        if isinstance(self.trusted, str) or not all(isinstance(t, str) for t in self.trusted):
            raise ValueError(f"attacks.trusted must be a list of caller ids, got {self.trusted!r}")
        object.__setattr__(self, "trusted", tuple(self.trusted))  # a list from a config file
        numbers = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "trusted"}
        wrong = [name for name, v in numbers.items() if isinstance(v, bool) or not isinstance(v, int | float)]
        if wrong:
            raise ValueError(f"attacks.{wrong[0]} must be a number, got {numbers[wrong[0]]!r}")
        for name in ("false_alarms", "split_false_alarms", "extraction_rarity", "extraction_margin"):
            if not getattr(self, name) > 1:
                raise ValueError(f"attacks.{name} must be larger than 1, got {getattr(self, name)!r}")
        if not 0 < self.ratio <= 1:
            raise ValueError(f"attacks.ratio must lie in (0, 1], got {self.ratio!r}")
        if not 0 < self.latest <= 0.5:
            raise ValueError(f"attacks.latest must lie in (0, 0.5], got {self.latest!r}")
        if not 0 < self.novelty_floor < 1:
            raise ValueError(f"attacks.novelty_floor must lie in (0, 1), got {self.novelty_floor!r}")
        sizes = ("k", "min_history", "history", "recent", "reservoir", "max_callers", "max_models", "max_pending")
        sizes += ("remembered_inputs", "min_novel_queries")
        small = [name for name in sizes if getattr(self, name) < 1]
        if small or self.radius < 0:
            raise ValueError(f"attacks.{(small or ['radius'])[0]} must be positive")
        if self.remembered_inputs > 1 << 20:
            raise ValueError(
                f"attacks.remembered_inputs must be at most 1,048,576 (32 MB per model), got {self.remembered_inputs}"
            )

    @property
    def log_threshold(self) -> float:
        return math.log(self.false_alarms)


def parse_fingerprint(text: str) -> np.ndarray | None:
    """``"<simhash hex>.<digest hex>"`` (or the SimHash alone) as 64-bit words, the SimHash's last word padded
    with zero bits, then the digest of the exact input (0 if absent); None if malformed."""
    if not isinstance(text, str) or len(text) > 300:
        return None
    simhash, _, digest = text.partition(".")
    if not simhash or len(simhash) % 2 or len(digest) > 16:
        return None
    try:
        raw = bytes.fromhex(simhash)
        exact = int(digest, 16) if digest else 0
    except ValueError:
        return None
    words = np.frombuffer(raw + bytes(-len(raw) % 8), dtype=np.uint64)
    return np.append(words, np.uint64(exact))


def random_print(rng: np.random.Generator, words: int = 1) -> np.ndarray:
    """A random fingerprint with a random digest (for examples and tests)."""
    return rng.integers(0, 2**64, size=words + 1, dtype=np.uint64)


def near(base: np.ndarray, rng: np.random.Generator, flips: int = 3) -> np.ndarray:
    """``base`` with ``flips`` random SimHash bits flipped and a new digest (for examples and tests)."""
    out = base.copy()
    for bit in rng.choice(64 * (base.size - 1), size=flips, replace=False):
        out[bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
    out[-1] = rng.integers(0, 2**63, dtype=np.uint64)
    return out


def distances(x: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Hamming distances between the SimHash of ``x`` and of each row of ``others`` (rows x words)."""
    return np.bitwise_count(others[:, :-1] ^ x[:-1]).sum(axis=1, dtype=np.int64)


def same(x: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Which rows of ``others`` are the very input ``x``: the same exact-input digest (the SimHash of one input can
    change while the SDK still learns its standardization), or without digests the same SimHash."""
    if x[-1]:
        return others[:, -1] == x[-1]
    return (others == x).all(axis=1)


def knn(x: np.ndarray, others: np.ndarray, k: int) -> float:
    """Mean distance from ``x`` to its ``k`` nearest rows of ``others``, leaving out the very input ``x`` itself
    (inf if nothing is left)."""
    d = distances(x, others)[~same(x, others)]
    if d.size == 0:
        return math.inf
    k = min(k, d.size)
    return float(np.partition(d, k - 1)[:k].mean())


def walked(x: np.ndarray, own: np.ndarray, latest: np.ndarray) -> np.ndarray:
    """For each count in ``latest``, the share of the nearest (tied) of a caller's earlier distinct queries ``own``
    (oldest first) to ``x`` that are among its ``latest`` last ones. If the caller's queries are exchangeable (drawn
    in any order from one distribution: a browser, a caller re-sending a few rows with noise), the nearest are
    placed at random among them, so the expected share is ``latest / len(own)``; a walk (each query a step from the
    last ones) puts them among the latest far more often."""
    d = distances(x, own)
    nearest = np.flatnonzero(d == d.min())
    return (nearest[:, None] >= own.shape[0] - latest[None, :]).mean(axis=0)


class _Bet:
    """A CUSUM e-detector on wins (a share in [0, 1] each) whose expectation is at most ``odds`` under the null: each
    bet multiplies the stake by ``1 + stake (win - odds) / odds``; several such bets at once (one per row of
    ``odds``, on nested events) are mixed with ``_STAKES``; ``first`` is where the statistic last left zero."""

    def __init__(self, bets: int = 1):
        self.w = np.zeros((bets, _STAKES.size))
        self.wins = 0
        self.bets = 0
        self.first: tuple = ()  # (trace id, span id, time) of the first query of the current suspicious run

    def update(self, win, at: tuple, odds=0.5) -> float:
        before = self.value()
        win, odds = np.atleast_1d(np.asarray(win, dtype=float)), np.atleast_1d(np.asarray(odds, dtype=float))
        bets = 1 + _STAKES[None, :] * (win - odds)[:, None] / odds[:, None]
        self.w = np.maximum(self.w, 0.0) + np.log(bets)
        self.wins += float(win[-1]) > 0
        self.bets += 1
        value = self.value()
        if before <= 0 < value or not self.first:
            self.first = at
        return value

    def value(self) -> float:
        return log_sum_exp(self.w.ravel()) - math.log(self.w.size)


class _Answered:
    """How many ordinary callers asked each exact input (by its digest): two generations of a counting Bloom filter
    (Fan et al. 2000) with three counters per digest, the older dropped when the newer has counted ``size`` asks.
    Memory is fixed (``32 size`` bytes); a collision (about 0.5% at 16 counters per ask) only makes a new input
    look answered."""

    def __init__(self, size: int):
        self.size = size
        self.shift = 64 - max(10, math.ceil(math.log2(16 * size)))
        self.counts = np.zeros((2, 1 << (64 - self.shift)), dtype=np.uint8)  # newer, older
        self.added = 0

    def _positions(self, digest: int) -> np.ndarray:
        return np.array([((digest * m) & 0xFFFFFFFFFFFFFFFF) >> self.shift for m in _MULTIPLIERS])

    def add(self, digest: int) -> bool:
        """Count one more caller asking ``digest``; returns whether no ordinary caller had asked it before."""
        at = self._positions(digest)
        new = int(self.counts[:, at].sum(axis=0).min()) == 0
        self.counts[0, at] = np.minimum(self.counts[0, at].astype(np.int16) + 1, 255)
        self.added += 1
        if self.added >= self.size:
            self.counts[1], self.counts[0], self.added = self.counts[0], 0, 0
        return new

    def remove(self, digest: int) -> None:
        """Take back one ask of ``digest`` (a caller that turned out to be no ordinary caller)."""
        at = self._positions(digest)
        for generation in self.counts:
            if generation[at].min() > 0:
                generation[at] -= 1
                return


@dataclass
class _Caller:
    model: str
    caller: str
    version: str = ""
    prints: np.ndarray | None = None  # history x words, oldest first
    queries: int = 0
    repeats: int = 0
    distinct: int = 0
    own: _Bet = field(default_factory=lambda: _Bet(len(_WALKS)))  # evasion probing
    novel: _Bet = field(default_factory=_Bet)  # extraction by new inputs
    opened: tuple = ()  # (trace id, span id, time) of the caller's first query
    firsts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))  # the last 256 digests of
    # inputs this caller was the first to ask (2 KB at most, whatever the traffic)
    latest: tuple = ()
    alarmed: set = field(default_factory=set)  # tests that have alarmed (extraction alarms once per caller)
    volume_level: int = -1  # highest quarter-octave of distinct queries reached
    burst_level: int = -1  # ... of distinct queries among the model's recent ones


class _ModelTraffic:
    """One model's recent fingerprints (with who sent them), reservoir, and how far its callers got."""

    def __init__(self, config: AttackConfig, bits: int, seed: int):
        self.config = config
        self.bits = bits
        words = (bits + 63) // 64 + 1  # the SimHash, then the digest
        self.recent = np.zeros((0, words), dtype=np.uint64)
        self.recent_callers = np.zeros(0, dtype=object)
        self.recent_novel = np.zeros(0, dtype=np.int8)  # 1 new to the model, 0 answered before, -1 without digest
        self.answered = _Answered(config.remembered_inputs)
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


class CallerWatch:
    """Per-caller attack tests over span fingerprints, for all models; bounded memory; checkpointed by ``codec``."""

    def __init__(self, config: AttackConfig = AttackConfig()):
        self.config = config
        self.callers: OrderedDict = OrderedDict()  # (model, caller id) -> _Caller, least recently seen first
        self.models: dict = {}  # model -> _ModelTraffic
        self.forgotten = 0  # callers dropped to stay within max_callers
        self.rejected = 0  # caller ids or fingerprints that were malformed, or of another length than the model's
        self.pending: dict = {}  # (model, version) -> [Finding] not yet handed to alerts
        self.format = FORMAT

    def observe_spans(self, spans) -> None:
        """Add the calls of decoded spans that carry a caller id and fingerprints (others are not for us)."""
        for span in spans:
            attributes = span.attributes
            caller, prints = attributes.get(semconv.CALLER_ID), attributes.get(semconv.INPUT_FINGERPRINT)
            model = attributes.get(semconv.MODEL_NAME)
            if caller is None or prints is None or not model:
                continue
            if not isinstance(caller, str) or not caller or len(caller) > 128 or not isinstance(prints, (str, tuple)):
                self.rejected += 1
                continue
            prints = [prints] if isinstance(prints, str) else list(prints)[:64]
            version = str(attributes.get(semconv.MODEL_VERSION, ""))
            self.observe(str(model), version, caller, prints, span.trace_id, span.span_id, span.end_unix_nano)

    def observe(self, model, version, caller, prints, trace_id, span_id, time_ns) -> list[Finding]:
        """Add one call's fingerprints (hex strings or word arrays); returns the alarms it raised."""
        c = self.config
        key = (model, caller)
        state = self.callers.get(key)
        if state is None:
            state = self.callers[key] = _Caller(model, caller)
            if len(self.callers) > c.max_callers:
                self.callers.popitem(last=False)
                self.forgotten += 1
        else:
            self.callers.move_to_end(key)
        state.version = version
        found = []
        for raw in prints:
            x = raw if isinstance(raw, np.ndarray) else parse_fingerprint(raw)
            bits = 64 * (x.size - 1) if isinstance(raw, np.ndarray) else 4 * len(str(raw).partition(".")[0])
            traffic = self._traffic(model, x, bits)
            if x is None or traffic is None:
                self.rejected += 1
                continue
            found += self._query(traffic, caller, state, x, (trace_id, span_id, time_ns))
        for f in found:
            pending = self.pending.setdefault((model, version), [])
            pending.append(f)
            del pending[: -self.config.max_pending]
        return found

    def _traffic(self, model: str, x, bits: int) -> _ModelTraffic | None:
        """The model's traffic, if ``x`` is a fingerprint of the model's length (the first one sets it)."""
        if x is None:
            return None
        traffic = self.models.get(model)
        if traffic is None:
            if len(self.models) >= self.config.max_models:
                return None
            traffic = self.models[model] = _ModelTraffic(self.config, bits, seed=len(self.models))
        return traffic if traffic.bits == bits else None

    def _query(self, traffic: _ModelTraffic, caller: str, state: _Caller, x: np.ndarray, at: tuple) -> list:
        c = self.config
        state.queries += 1
        state.latest = at
        state.opened = state.opened or at
        if state.prints is not None and same(x, state.prints).any():
            state.repeats += 1
            return []
        found = []
        trusted = caller in c.trusted
        if state.distinct == 0 and not trusted:
            traffic.callers_seen += 1
        state.distinct += 1
        own = state.prints if state.prints is not None else np.zeros((0, x.size), dtype=np.uint64)
        latest, near = np.maximum(1, (own.shape[0] * c.latest * _WALKS).astype(int)), False
        if own.shape[0] >= c.min_history and traffic.reservoir.shape[0] >= 4 * c.min_history:
            near = knn(x, own, c.k) < c.ratio * knn(x, traffic.sample(own.shape[0]), c.k)
            win = walked(x, own, latest) if near else np.zeros(latest.size)
            found += self._bet(state, state.own, win, "evasion probing", at, latest / own.shape[0])
        now, before, near_callers = traffic.neighbours(caller, x, c.radius or max(1, traffic.bits // 32))
        if now > before and len(near_callers) >= c.split_callers:
            value = -float(stats.binom.logsf(now - 1, now + before, 0.5))
            if value >= math.log(c.split_false_alarms):
                finding = self._finding(state, "split probing", value, math.log(c.split_false_alarms), at, at)
                finding.details.update({"near now": now, "near before": before, "campaign callers": near_callers[:20]})
                found.append(finding)
        state.prints = np.vstack([own[-(c.history - 1) :], x[None]])
        ordinary = "extraction" not in state.alarmed
        novel = traffic.add(caller, x, ordinary)
        if novel:
            state.firsts = np.append(state.firsts[-255:], x[-1])
        if not trusted and ordinary:
            # a query near the caller's own earlier ones asks almost what it asked before: not bet on as novel
            radius = c.radius or max(1, traffic.bits // 32)
            near = near or (own.shape[0] > 0 and int(distances(x, own).min()) <= radius)
            found += self._novelty(traffic, state, None if near else novel, at) or self._volume(traffic, state, at)
        return found

    def _novelty(self, traffic: _ModelTraffic, state: _Caller, novel: bool | None, at: tuple) -> list:
        """Extraction: the caller's queries are new to the model more often than other callers' queries are."""
        c = self.config
        odds = traffic.novelty(state.caller) if novel is not None else None
        if odds is None or odds >= 0.95:  # every input is new to the model anyway: nothing to tell a thief by
            return []
        may_alarm = state.distinct >= c.min_novel_queries
        found = self._bet(state, state.novel, novel, "extraction", at, odds, may_alarm, statistic="novel inputs")
        for finding in found:
            finding.details.update({"signal": "novel inputs", "others' share of new inputs": round(odds, 4)})
        return found

    def _volume(self, traffic: _ModelTraffic, state: _Caller, at: tuple) -> list:
        """Extraction: the caller's distinct queries, over all time and among the recent ones, rarer than anyone's."""
        c = self.config
        state.volume_level, rare = traffic.climb(traffic.reached, state.volume_level, state.distinct)
        signal, value = "volume", state.distinct
        if not (rare and state.distinct >= c.min_extraction_queries):
            burst = int((traffic.recent_callers == state.caller).sum())
            state.burst_level, rare = traffic.climb(traffic.bursts, state.burst_level, burst)
            signal, value = "burst", burst
            if not (rare and burst >= c.min_burst):
                return []
        finding = self._finding(state, "extraction", float(value), c.extraction_rarity, at, state.opened)
        finding.details["signal"] = signal
        self._set_apart(traffic, state)
        return [finding]

    @staticmethod
    def _set_apart(traffic: _ModelTraffic, state: _Caller) -> None:
        """An alarmed caller stops counting as ordinary: its counts leave the population the extraction tests
        compare with, and its inputs no longer count as answered (else one thief would hide the next, who asks the
        same rows); it gets no further extraction alarm."""
        if "extraction" in state.alarmed:
            return
        state.alarmed.add("extraction")
        for digest in state.firsts.tolist():
            traffic.answered.remove(digest)
        state.firsts = state.firsts[:0]
        traffic.recent_novel[traffic.recent_callers == state.caller] = -1
        traffic.reached[: state.volume_level + 1] -= 1
        traffic.bursts[: state.burst_level + 1] -= 1
        state.volume_level = state.burst_level = 10**6

    def _bet(self, state, bet: _Bet, win: bool, detector: str, at, odds=0.5, may_alarm=True, statistic=None) -> list:
        value = bet.update(win, at, odds)
        if value < self.config.log_threshold or not may_alarm:
            return []
        finding = self._finding(state, detector, value, self.config.log_threshold, at, bet.first, bet, statistic)
        self._set_apart(self.models[state.model], state)
        bet.w[:] = 0.0
        return [finding]

    def _finding(self, state: _Caller, detector: str, value, threshold, at, first, bet=None, statistic=None) -> Finding:
        details = {
            "caller": state.caller,
            "queries": state.queries,
            "distinct": state.distinct,
            "repeats": state.repeats,
            "first trace id": first[0],
            "first span id": first[1],
            "latest trace id": at[0],
            "latest span id": at[1],
        }
        if bet is not None:
            details.update({"wins": bet.wins, "bets": bet.bets})
        return Finding(
            kind=ADVERSARIAL,
            detector=detector,
            model=state.model,
            version=state.version,
            feature=None,
            statistic=_STATISTICS[statistic or detector],
            value=float(value),
            threshold=float(threshold),
            alarm=True,
            window_start_unix_nano=first[2],
            window_end_unix_nano=at[2],
            e_value=math.exp(min(value, 700)) if bet is not None else None,
            p_value=math.exp(-value) if detector == "split probing" else None,
            effect="queries",
            effect_size=float(state.queries),
            severity=WARNING if detector == "extraction" else CRITICAL,
            trace_ids=tuple(dict.fromkeys([(at[0], at[1]), (first[0], first[1])])),
            details=details,
        )

    def take(self, model: str, version: str) -> list[Finding]:
        """The alarms raised for one model version since the last call (for its next closed window)."""
        return self.pending.pop((model, version), [])

    def summary(self) -> dict:
        return {"callers": len(self.callers), "forgotten": self.forgotten, "rejected fingerprints": self.rejected}

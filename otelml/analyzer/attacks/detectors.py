"""The per-caller (span-fed) detectors and their registry: each a class with a ``name``, a ``kind``, a
``statistic`` and a ``threshold``, judging one distinct query of one caller at a time (``Query``); ``CallerWatch``
feeds them in registry order. Their working state is data in ``CallerState`` and ``ModelTraffic`` (checkpointed),
a detector holds only its frozen configuration. Adding one is a class here plus a line in ``REGISTRY``, checked by
the contract test (``tests/test_attacks.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..detectors.base import ADVERSARIAL, CRITICAL, WARNING, Finding, log_e_value
from .bets import Bet
from .config import AttackConfig
from .fingerprints import distances, walked_at
from .traffic import ModelTraffic

WALKS = np.array([0.0, 0.25, 1.0])  # evasion probing's bets: the nearest is the last query, among the last
# ``latest / 4`` share of the caller's history, among the last ``latest`` share


@dataclass(frozen=True)
class Queries:
    """What a per-caller finding judged: one caller's queries of a model version, from ``start_unix_nano`` (the
    first of a suspicious run) to ``end_unix_nano`` (the latest); the span-fed counterpart of a closed window."""

    model: str
    version: str
    start_unix_nano: int
    end_unix_nano: int


@dataclass
class Query:
    """One distinct query of a caller, as the detectors see it."""

    traffic: ModelTraffic  # the model's traffic
    state: object  # the caller's ``watch.CallerState``
    x: np.ndarray  # its fingerprint
    own: np.ndarray  # the caller's earlier distinct fingerprints, oldest first
    at: tuple  # (trace id, span id, time)
    trusted: bool  # the caller is listed in ``trusted``
    near: bool | None = None  # nearer the caller's own earlier queries than the reservoir (None: too few to say)
    novel: bool | None = None  # no ordinary caller asked its exact input before (set once it joined the traffic)
    own_d: np.ndarray | None = None  # distances of ``x`` to ``own``
    _row: tuple | None = None

    def row(self) -> tuple:
        """Distances of ``x`` to the model's recent and reservoir fingerprints, and which are the same input
        (``ModelTraffic.row``), as the traffic was when first asked: before this query joined it."""
        if self._row is None:
            self._row = self.traffic.row(self.x)
        return self._row

    def distances(self) -> np.ndarray:
        return distances(self.x, self.own) if self.own_d is None else self.own_d


class CallerDetector:
    """Base class: subclasses set ``name``, ``statistic`` (and ``severity``) and implement ``threshold`` and
    ``judge``; ``recorded`` ones judge a query after it joined its model's traffic, the others before."""

    name = "caller detector"
    kind = ADVERSARIAL
    statistic = ""
    severity = CRITICAL
    recorded = False

    def __init__(self, config: AttackConfig):
        self.config = config

    @property
    def threshold(self) -> float:
        raise NotImplementedError

    def judge(self, query: Query) -> list[Finding]:
        raise NotImplementedError

    def _bet(self, q: Query, bet: Bet, win, odds, may_alarm=True, statistic=None) -> list[Finding]:
        """Update a caller's bet; an alarm restarts it and sets the caller apart."""
        value = bet.update(win, q.at, odds)
        threshold = self.config.log_threshold
        if value < threshold or not may_alarm:
            return []
        finding = self._finding(q, value, threshold, bet.first, bet, statistic)
        set_apart(q.traffic, q.state)
        bet.w[:] = 0.0
        return [finding]

    def _finding(self, q: Query, value, threshold, first, bet=None, statistic=None, p_value=None) -> Finding:
        state, at = q.state, q.at
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
        return Finding.on(
            Queries(state.model, state.version, first[2], at[2]),
            kind=self.kind,
            detector=self.name,
            feature=None,
            statistic=statistic or self.statistic,
            value=float(value),
            threshold=float(threshold),
            alarm=True,
            e_value=log_e_value(value) if bet is not None else None,
            p_value=p_value,
            effect="queries",
            effect_size=float(state.queries),
            severity=self.severity,
            trace_ids=tuple(dict.fromkeys([(at[0], at[1]), (first[0], first[1])])),
            details=details,
        )


def set_apart(traffic: ModelTraffic, state) -> None:
    """An alarmed caller stops counting as ordinary: its counts leave the population the extraction tests compare
    with, and its inputs no longer count as answered (else one thief would hide the next, who asks the same rows);
    it gets no further extraction alarm."""
    if "extraction" in state.alarmed:
        return
    state.alarmed.add("extraction")
    for digest in state.firsts.tolist():
        traffic.answered.remove(digest)
    state.firsts = state.firsts[:0]
    traffic.set_apart(state.caller)
    traffic.reached[: state.volume_level + 1] -= 1
    traffic.bursts[: state.burst_level + 1] -= 1
    state.volume_level = state.burst_level = 10**6


class EvasionProbing(CallerDetector):
    """A CUSUM e-detector per caller on whether a *near* query's nearest earlier queries are among the caller's
    latest (``walked``), mixed over three shares of its history; alarm at ``ln false_alarms``, which bounds the
    false alarms of a caller with exchangeable queries to one per ``false_alarms`` distinct queries (Chen, Carlini
    & Wagner 2020 on the walks of black-box attacks)."""

    name = "evasion probing"
    statistic = "log e-value (nearer than ordinary)"

    @property
    def threshold(self) -> float:
        return self.config.log_threshold

    def judge(self, q: Query) -> list[Finding]:
        if q.near is None:
            return []
        own = q.own
        latest = np.maximum(1, (own.shape[0] * self.config.latest * WALKS).astype(int))
        win = walked_at(q.distances(), latest) if q.near else np.zeros(latest.size)
        return self._bet(q, q.state.own, win, latest / own.shape[0])


class SplitProbing(CallerDetector):
    """Recent queries of other callers near this one against as many reservoir fingerprints, a Binomial(1/2)
    tail; alarm at ``ln split_false_alarms`` when the near ones came from ``split_callers`` others (after
    Blacklight, Li et al. 2022)."""

    name = "split probing"
    statistic = "-ln p (neighbours now against before)"

    @property
    def threshold(self) -> float:
        return math.log(self.config.split_false_alarms)

    def judge(self, q: Query) -> list[Finding]:
        c, traffic = self.config, q.traffic
        now, before, near_callers = traffic.neighbours(q.state.caller, q.row(), c.radius or max(1, traffic.bits // 32))
        if not (now > before and len(near_callers) >= c.split_callers):
            return []
        value = -float(stats.binom.logsf(now - 1, now + before, 0.5))
        if value < self.threshold:
            return []
        finding = self._finding(q, value, self.threshold, q.at, p_value=math.exp(-value))
        finding.details.update({"near now": now, "near before": before, "campaign callers": near_callers[:20]})
        return [finding]


class Extraction(CallerDetector):
    """Two signals, once per caller: novel inputs (a CUSUM e-detector betting that the caller's queries are new to
    the model more often than other callers' are) and volume (its distinct queries, in all or among the recent,
    ``extraction_margin`` times a count fewer than one in ``extraction_rarity`` callers reached; after Juuti et
    al., PRADA, 2019). Trusted callers are left out."""

    name = "extraction"
    statistic = "distinct queries, in all or among the recent (rarer than 1 in threshold callers)"
    novelty_statistic = "log e-value (new to the model more often than others' queries)"
    severity = WARNING
    recorded = True

    @property
    def threshold(self) -> float:
        return self.config.extraction_rarity

    def judge(self, q: Query) -> list[Finding]:
        if q.trusted or "extraction" in q.state.alarmed:
            return []
        # a query near the caller's own earlier ones asks almost what it asked before: not bet on as novel
        radius = self.config.radius or max(1, q.traffic.bits // 32)
        near = q.near or (q.own.shape[0] > 0 and int(q.distances().min()) <= radius)
        return self._novelty(q, None if near else q.novel) or self._volume(q)

    def _novelty(self, q: Query, novel: bool | None) -> list[Finding]:
        """The caller's queries are new to the model more often than other callers' queries are."""
        state = q.state
        odds = q.traffic.novelty(state.caller) if novel is not None else None
        if odds is None or odds >= 0.95:  # every input is new to the model anyway: nothing to tell a thief by
            return []
        may_alarm = state.distinct >= self.config.min_novel_queries
        found = self._bet(q, state.novel, novel, odds, may_alarm, statistic=self.novelty_statistic)
        for finding in found:
            finding.details.update({"signal": "novel inputs", "others' share of new inputs": round(odds, 4)})
        return found

    def _volume(self, q: Query) -> list[Finding]:
        """The caller's distinct queries, over all time and among the recent ones, rarer than anyone's."""
        c, traffic, state = self.config, q.traffic, q.state
        state.volume_level, rare = traffic.climb(traffic.reached, state.volume_level, state.distinct)
        signal, value = "volume", state.distinct
        if not (rare and state.distinct >= c.min_extraction_queries):
            burst = traffic.burst(state.caller)
            state.burst_level, rare = traffic.climb(traffic.bursts, state.burst_level, burst)
            signal, value = "burst", burst
            if not (rare and burst >= c.min_burst):
                return []
        finding = self._finding(q, float(value), c.extraction_rarity, state.opened)
        finding.details["signal"] = signal
        set_apart(traffic, state)
        return [finding]


REGISTRY = {cls.name: cls for cls in (EvasionProbing, SplitProbing, Extraction)}  # in the order they judge

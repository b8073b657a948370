"""The per-caller attack tests over span fingerprints, for all models: evasion probing, split probing and
extraction (novel inputs, volume); what they test and why is in the package's docstring (``otelml.analyzer.attacks``).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from ... import semconv
from ..detectors.base import ADVERSARIAL, CRITICAL, WARNING, Finding, log_e_value
from .bets import Bet
from .config import AttackConfig
from .fingerprints import distances, knn, parse_fingerprint, same, walked
from .traffic import ModelTraffic

_STATISTICS = {
    "evasion probing": "log e-value (nearer than ordinary)",
    "split probing": "-ln p (neighbours now against before)",
    "extraction": "distinct queries, in all or among the recent (rarer than 1 in threshold callers)",
    "novel inputs": "log e-value (new to the model more often than others' queries)",
}
_WALKS = np.array([0.0, 0.25, 1.0])  # evasion probing's bets: the nearest is the last query, among the last
# ``latest / 4`` share of the caller's history, among the last ``latest`` share
FORMAT = 4  # of the checkpointed state; a checkpoint of another format starts the attack state afresh


@dataclass(frozen=True)
class Queries:
    """What a per-caller finding judged: one caller's queries of a model version, from ``start_unix_nano`` (the
    first of a suspicious run) to ``end_unix_nano`` (the latest); the span-fed counterpart of a closed window."""

    model: str
    version: str
    start_unix_nano: int
    end_unix_nano: int


@dataclass
class CallerState:
    model: str
    caller: str
    version: str = ""
    prints: np.ndarray | None = None  # history x words, oldest first
    queries: int = 0
    repeats: int = 0
    distinct: int = 0
    own: Bet = field(default_factory=lambda: Bet(len(_WALKS)))  # evasion probing
    novel: Bet = field(default_factory=Bet)  # extraction by new inputs
    opened: tuple = ()  # (trace id, span id, time) of the caller's first query
    firsts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))  # the last 256 digests of
    # inputs this caller was the first to ask (2 KB at most, whatever the traffic)
    latest: tuple = ()
    alarmed: set = field(default_factory=set)  # tests that have alarmed (extraction alarms once per caller)
    volume_level: int = -1  # highest quarter-octave of distinct queries reached
    burst_level: int = -1  # ... of distinct queries among the model's recent ones


class CallerWatch:
    """Per-caller attack tests over span fingerprints, for all models; bounded memory; checkpointed by ``codec``."""

    def __init__(self, config: AttackConfig | None = None):
        self.config = AttackConfig() if config is None else config
        self.callers: OrderedDict = OrderedDict()  # (model, caller id) -> CallerState, least recently seen first
        self.models: dict = {}  # model -> ModelTraffic
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
            state = self.callers[key] = CallerState(model, caller)
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

    def _traffic(self, model: str, x, bits: int) -> ModelTraffic | None:
        """The model's traffic, if ``x`` is a fingerprint of the model's length (the first one sets it)."""
        if x is None:
            return None
        traffic = self.models.get(model)
        if traffic is None:
            if len(self.models) >= self.config.max_models:
                return None
            traffic = self.models[model] = ModelTraffic(self.config, bits, seed=len(self.models))
        return traffic if traffic.bits == bits else None

    def _query(self, traffic: ModelTraffic, caller: str, state: CallerState, x: np.ndarray, at: tuple) -> list:
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

    def _novelty(self, traffic: ModelTraffic, state: CallerState, novel: bool | None, at: tuple) -> list:
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

    def _volume(self, traffic: ModelTraffic, state: CallerState, at: tuple) -> list:
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
    def _set_apart(traffic: ModelTraffic, state: CallerState) -> None:
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

    def _bet(self, state, bet: Bet, win: bool, detector: str, at, odds=0.5, may_alarm=True, statistic=None) -> list:
        value = bet.update(win, at, odds)
        if value < self.config.log_threshold or not may_alarm:
            return []
        finding = self._finding(state, detector, value, self.config.log_threshold, at, bet.first, bet, statistic)
        self._set_apart(self.models[state.model], state)
        bet.w[:] = 0.0
        return [finding]

    def _finding(
        self, state: CallerState, detector: str, value, threshold, at, first, bet=None, statistic=None
    ) -> Finding:
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
            kind=ADVERSARIAL,
            detector=detector,
            feature=None,
            statistic=_STATISTICS[statistic or detector],
            value=float(value),
            threshold=float(threshold),
            alarm=True,
            e_value=log_e_value(value) if bet is not None else None,
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

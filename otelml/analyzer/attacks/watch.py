"""``CallerWatch``: the per-caller attack detectors (``detectors``) fed with span fingerprints, for all models, in
bounded memory; what they test and why is in the package's docstring (``otelml.analyzer.attacks``).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from ... import semconv
from ..detectors.base import Finding
from .bets import Bet
from .config import AttackConfig
from .detectors import REGISTRY, WALKS, Query
from .fingerprints import distances, mean_smallest, parse_fingerprint, parse_many, same
from .traffic import ModelTraffic

FORMAT = 6  # of the checkpointed state; a checkpoint of another format starts the attack state afresh


@dataclass
class CallerState:
    model: str
    caller: str
    version: str = ""
    prints: np.ndarray | None = None  # history x words, oldest first
    queries: int = 0
    repeats: int = 0
    distinct: int = 0
    own: Bet = field(default_factory=lambda: Bet(len(WALKS)))  # evasion probing
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

    def __init__(self, config: AttackConfig | None = None, tests: tuple | None = None):
        self.config = AttackConfig() if config is None else config
        self.tests = tuple(REGISTRY) if tests is None else tuple(tests)  # names of the detectors that judge
        unknown = [name for name in self.tests if name not in REGISTRY]
        if unknown:
            raise ValueError(f"unknown caller detectors {unknown}; known: {list(REGISTRY)}")
        self.callers: OrderedDict = OrderedDict()  # (model, caller id) -> CallerState, least recently seen first
        self.models: dict = {}  # model -> ModelTraffic
        self.forgotten = 0  # callers dropped to stay within max_callers
        self.rejected = 0  # caller ids or fingerprints that were malformed, or of another length than the model's
        self.pending: dict = {}  # (model, version) -> [Finding] not yet handed to alerts
        self.format = FORMAT

    def observe_spans(self, spans) -> None:
        """Add the calls of decoded spans that carry a caller id and fingerprints (others are not for us)."""
        calls, texts = [], []
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
            calls.append((span, caller, len(texts), len(prints)))
            texts += prints
        parsed = parse_many(texts)  # the request's fingerprints at once
        draws: dict = {}
        for span, caller, first, count in calls:
            attributes = span.attributes
            version = str(attributes.get(semconv.MODEL_VERSION, ""))
            prints = [(x, _bits(raw, x)) for raw, x in zip(texts[first : first + count], parsed[first : first + count])]
            at = (span.trace_id, span.span_id, span.end_unix_nano)
            self._observe(str(attributes.get(semconv.MODEL_NAME)), version, caller, prints, at, draws)

    def observe(self, model, version, caller, prints, trace_id, span_id, time_ns) -> list[Finding]:
        """Add one call's fingerprints (hex strings or word arrays); returns the alarms it raised."""
        parsed = [raw if isinstance(raw, np.ndarray) else parse_fingerprint(raw) for raw in prints]
        prints = [(x, _bits(raw, x)) for raw, x in zip(prints, parsed)]
        return self._observe(model, version, caller, prints, (trace_id, span_id, time_ns), {})

    def _observe(self, model, version, caller, prints, at, draws) -> list[Finding]:
        """One call's parsed fingerprints, as (words or None, bits); ``draws``: the request's random draws."""
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
        for x, bits in prints:
            traffic = self._traffic(model, x, bits)
            if x is None or traffic is None:
                self.rejected += 1
                continue
            found += self._query(traffic, caller, state, x, at, draws)
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

    def _query(self, traffic: ModelTraffic, caller: str, state: CallerState, x: np.ndarray, at: tuple, draws) -> list:
        """Count one fingerprint of a caller; a distinct one goes to the detectors (in registry order: those that
        judge it against the traffic before it, then, once it joined the traffic, the others)."""
        c = self.config
        state.queries += 1
        state.latest = at
        state.opened = state.opened or at
        own = state.prints
        if own is not None:
            same_input = same(x, own)
            if same_input.any():
                state.repeats += 1
                return []
        trusted = caller in c.trusted
        if state.distinct == 0 and not trusted:
            traffic.callers_seen += 1
        state.distinct += 1
        if own is None:
            own, own_d = np.zeros((0, x.size), dtype=np.uint64), np.zeros(0, dtype=np.int64)
        else:
            own_d = distances(x, own)
        query = Query(traffic, state, x, own, at, trusted, own_d=own_d)
        if own.shape[0] >= c.min_history and traffic.filled >= 4 * c.min_history:
            mine = mean_smallest(own_d[~same_input], c.k)
            query.near = mine < c.ratio * traffic.sample_knn(query.row(), own.shape[0], c.k, draws)
        detectors = _detectors(c, self.tests)
        found = [f for d in detectors if not d.recorded for f in d.judge(query)]
        state.prints = np.concatenate([own[-(c.history - 1) :], x[None]])
        query.novel = traffic.add(caller, x, "extraction" not in state.alarmed)  # a thief's asks do not count
        if query.novel:
            state.firsts = np.append(state.firsts[-255:], x[-1])
        return found + [f for d in detectors if d.recorded for f in d.judge(query)]

    def take(self, model: str, version: str) -> list[Finding]:
        """The alarms raised for one model version since the last call (for its next closed window)."""
        return self.pending.pop((model, version), [])

    def summary(self) -> dict:
        return {"callers": len(self.callers), "forgotten": self.forgotten, "rejected fingerprints": self.rejected}


def _bits(raw, x) -> int:
    """The length of a fingerprint, as it was sent."""
    return 64 * (x.size - 1) if isinstance(raw, np.ndarray) else 4 * len(str(raw).partition(".")[0])


@functools.lru_cache(maxsize=64)
def _detectors(config: AttackConfig, names: tuple) -> tuple:
    """The detectors named, in registry order (they hold only the frozen configuration: shared, not checkpointed)."""
    return tuple(cls(config) for name, cls in REGISTRY.items() if name in names)

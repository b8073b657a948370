"""The caps on what the state keeps (:class:`Limits`), and which model version makes room at the cap on models.

Caps (:class:`Limits`) bound memory whatever senders send, without locking new models out. A model version is
*confirmed* once it has data in a second window; until then it is on probation. When a new model version would pass
``max_models`` or ``max_versions``, it is let in on its second request (the first is remembered among the last
``NEWCOMERS`` newcomers and its points are rejected, so a flood of names sent once evicts nothing), and room is made
by evicting, in this order: the version on probation that sent data longest ago, then the confirmed version that has
been idle longest; never one with a pinned reference (``State.pinned``) or a confirmed one that sent data within the
last ``protect_windows`` windows or ``protect_s`` seconds, whichever is longer (of arrival time). Eviction drops the
version's open windows and its cumulative streams; its history and references stay in the store, and if it comes
back it starts afresh. A new version with a pinned reference (built with ``otelml reference build`` before it sends,
say) is let in at once, evicting as above but with recent data protecting no one: a flood of names that keep sending
can otherwise hold every place, since one shared token cannot tell its sender from others. Evictions are counted
(``evicted``, and ``evicted_points`` for the points of its open windows) and logged at most once a minute. Inside a
window, a new attribute set past ``max_values`` per metric and feature, or ``max_series`` in all, is folded into one
``__other__`` stand-in per metric and feature (``windows``), counted as ``overflow``: detectors see mass move to an
unseen value instead of an unbounded dict. A model version tracks at most ``max_sources`` sources; points of further
sources are accepted but hold no windows open. There is no per-sender quota: the analyzer has one shared token, so
it cannot tell senders apart.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from ..logs import logger

if TYPE_CHECKING:
    from .core import ModelVersion

NEWCOMERS = 65_536  # model versions turned away at the cap that are remembered, so their second request gets in
_LOG_EVICTIONS_EVERY_NS = 60 * 10**9


@dataclass(frozen=True)
class Limits:
    """Caps that bound the analyzer's memory under any input; what is over a cap is rejected and counted."""

    max_models: int = 1000
    max_versions: int = 50  # per model
    max_features: int = 1000  # per model version
    max_streams: int = 200_000  # cumulative streams remembered for delta conversion
    history: int = 1440  # closed windows kept per model version in the store (IN_MEMORY_WINDOWS of them in memory)
    max_future_s: float = 600.0  # points timestamped further ahead of the wall clock are rejected
    max_values: int = 1000  # attribute sets per metric and feature in one window; more fold into __other__
    max_series: int = 20_000  # attribute sets in one window, all metrics together; more fold into __other__
    max_sources: int = 1000  # sources tracked per model version; more are accepted but hold no windows open
    protect_windows: int = 60  # at the cap, a confirmed model version with data this many windows back stays
    protect_s: float = 600.0  # ... or with data this many seconds back, where that is longer (short windows)

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            kinds = int if f.type == "int" else (int, float)
            if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:
                raise ValueError(f"limits: {f.name} must be a positive {f.type}, got {value!r}")


class Admission:
    """Which model versions :class:`~otelml.analyzer.state.core.State` lets in at the caps, and which it evicts to
    make room (the module docstring's policy); a mixin of ``State``, whose ``models``, ``config``, ``window_ns``,
    ``pinned``, ``evicted``, ``counts`` and ``deltas`` it uses."""

    def _index(self) -> None:
        """Build what is derived from ``models``: versions per model name, the probation order; forget newcomers."""
        self._names: Counter = Counter(model for model, _ in self.models)
        on_probation = sorted((mv for mv in self.models.values() if not mv.confirmed), key=lambda m: m.last_arrival_ns)
        self._probation: OrderedDict = OrderedDict((mv.key, None) for mv in on_probation)  # oldest arrival first
        self._newcomers: OrderedDict = OrderedDict()  # hash of (model, version) -> the request that first sent it
        self._requests = 0
        self._evictions_logged_ns = -_LOG_EVICTIONS_EVERY_NS

    def _second_request(self, key: tuple) -> bool:
        """Whether ``key`` was turned away at the cap by an earlier request (remembered among the last NEWCOMERS)."""
        fingerprint = hash(key)
        first = self._newcomers.get(fingerprint)
        if first is None:
            self._newcomers[fingerprint] = self._requests
            if len(self._newcomers) > NEWCOMERS:
                self._newcomers.popitem(last=False)
            return False
        if first == self._requests:  # turned away earlier in this same request
            return False
        del self._newcomers[fingerprint]
        return True

    def _forget_idle_stream(self, now_ns: int) -> bool:
        """At the cap on cumulative streams, make room by forgetting the one with the oldest last point, if that is
        more than ``protect_s`` old (a replica gone, most likely: exporters repeat cumulative points every interval)."""
        if not self.deltas.forget_idle(now_ns - int(self.config.limits.protect_s * 1e9)):
            return False
        self.counts["streams_forgotten"] += 1
        return True

    def _evict(self, model: str | None, now_ns: int, protect: bool = True) -> bool:
        """Make room for a new version of ``model`` (or, with ``None``, a new model name) by the module docstring's
        policy; returns whether room was made. With ``protect`` false (for a pinned newcomer), recent data protects
        no one; a pinned reference still does."""

        def alone(key):  # evicting this version frees what the newcomer needs
            return key[0] == model if model is not None else self._names[key[0]] == 1

        victims = next(([k] for k in self._probation if k not in self.pinned and alone(k)), None)
        if victims is None:  # nobody on probation: the confirmed version (or model, for a name) idle longest
            limits = self.config.limits
            recent = now_ns - max(limits.protect_windows * self.window_ns, int(limits.protect_s * 1e9))
            idle: dict = {}  # model name, or version key -> newest arrival among what would go
            for mv in self.models.values():
                unit = mv.key if model is not None else mv.model
                if model is not None and mv.model != model:
                    continue
                if mv.key in self.pinned or (protect and mv.confirmed and mv.last_arrival_ns >= recent):
                    idle[unit] = None  # protected: the unit cannot go
                elif idle.get(unit, 0) is not None:
                    idle[unit] = max(idle.get(unit, 0), mv.last_arrival_ns)
            candidates = [unit for unit, arrival in idle.items() if arrival is not None]
            if not candidates:
                return False
            unit = min(candidates, key=idle.get)
            victims = [unit] if model is not None else [k for k in self.models if k[0] == unit]
        for key in victims:
            self._drop(self.models[key], now_ns)
        return True

    def take_evicted(self) -> list:
        """The (model, version) keys evicted since the last call, for whoever keeps state per model version."""
        evicted, self.evicted = self.evicted, []
        return evicted

    def _drop(self, mv: ModelVersion, now_ns: int) -> None:
        del self.models[mv.key]
        self.evicted.append(mv.key)
        self._names[mv.model] -= 1
        if not self._names[mv.model]:
            del self._names[mv.model]
        self._probation.pop(mv.key, None)
        self.deltas.forget(mv.streams)
        points = sum(w.points for w in mv.open.values())
        self.counts["evicted"] += 1
        self.counts["evicted_points"] += points
        if now_ns - self._evictions_logged_ns >= _LOG_EVICTIONS_EVERY_NS:
            self._evictions_logged_ns = now_ns
            logger.warning(
                "at the cap on models or versions: evicted model %r version %r (%s, %d points in open windows); "
                "%d evicted since start, logged at most once a minute",
                mv.model,
                mv.version,
                "confirmed, idle" if mv.confirmed else "never confirmed",
                points,
                self.counts["evicted"],
            )

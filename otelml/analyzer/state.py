"""The analyzer's state: decoded points in, per-model windows out. Pure: no I/O, and time only as an argument.

Windows follow the data's own timestamps. A model version's data comes from one or more sources (the resources that
send it: replicas, processes); a source's watermark is the end of its newest point, of any model (one export of the
SDK carries every model of its process, so a source that moved on without a model's points had no calls of it). A
window closes when the watermark of every source of the model version is ``lateness`` past its end, so one
replica's export that arrives after another's does not find its window closed; a source whose newest point is
``idle_timeout`` behind the newest point of all has gone quiet and no longer holds windows open. Windows of a model
gone quiet close when the newest point of any model (no later than its arrival: a source whose clock runs ahead does
not move it) is ``lateness + idle_timeout`` past them, or when nothing at all has arrived for ``idle_timeout`` of
wall-clock time. Replaying recorded telemetry at any speed therefore closes the same windows with the same
contents. A quiet model gets empty windows for its silence, so detectors can see it. A window whose counts are not
its sources' counts for its span (an export that came late put them in the next window) is marked partial (see
``windows``).

Points are routed by their ``otelml.model.name`` / ``otelml.model.version`` attributes; points without a model name
are not otelml's and are counted as ignored.

Caps (:class:`Limits`) bound memory whatever senders send, without locking new models out. A model version is
*confirmed* once it has data in a second window; until then it is on probation. When a new model version would pass
``max_models`` or ``max_versions``, it is let in on its second request (the first is remembered among the last
``NEWCOMERS`` newcomers and its points are rejected, so a flood of names sent once evicts nothing), and room is made
by evicting, in this order: the version on probation that sent data longest ago, then the confirmed version that has
been idle longest; never one with a pinned reference (``State.pinned``) or a confirmed one that sent data within the
last ``protect_windows`` windows or ``protect_s`` seconds, whichever is longer (of arrival time). Eviction drops the version's open windows and its cumulative
streams; its history and references stay in the store, and if it comes back it starts afresh. Evictions are counted
(``evicted``, and ``evicted_points`` for the points of its open windows) and logged at most once a minute. Inside a
window, a new attribute set past ``max_values`` per metric and feature, or ``max_series`` in all, is folded into one
``__other__`` stand-in per metric and feature (``windows``), counted as ``overflow``: detectors see mass move to an
unseen value instead of an unbounded dict. A model version tracks at most ``max_sources`` sources; points of further
sources are accepted but hold no windows open. There is no per-sender quota: the analyzer has one shared token, so
it cannot tell senders apart.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field, fields

from .. import semconv
from .logs import logger
from .points import Decoded
from .streams import Deltas, StalePoint
from .windows import ClosedWindow, Window, window_index

_IDENTITY = (semconv.MODEL_NAME, semconv.MODEL_VERSION, semconv.MODEL_TASK)
NEWCOMERS = 65_536  # model versions turned away at the cap that are remembered, so their second request gets in
ROUTES = 65_536  # streams whose routing is cached; the cache starts afresh when full
_LOG_EVICTIONS_EVERY_NS = 60 * 10**9

# Closed windows a model version keeps in memory: the status page shows the last 60, the comparison with the previous
# version reads 30. The store keeps ``Limits.history`` (a day of one-minute windows); at the default that cut the
# memory per version 24-fold.
IN_MEMORY_WINDOWS = 60


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


@dataclass(frozen=True)
class StateConfig:
    window_s: float = 60.0
    lateness_s: float = 30.0
    idle_timeout_s: float = 120.0
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self):
        if self.window_s <= 0 or self.lateness_s < 0 or self.idle_timeout_s <= 0:
            raise ValueError("window must be positive, lateness non-negative, idle timeout positive")

    @property
    def in_memory_windows(self) -> int:
        """Closed windows a model version keeps in memory; the store keeps ``limits.history``."""
        return min(self.limits.history, IN_MEMORY_WINDOWS)


@dataclass(eq=False)
class ModelVersion:
    """One model version's windows and totals."""

    model: str
    version: str
    task: str | None = None
    open: dict = field(default_factory=dict)  # window index -> Window
    closed_through: int | None = None  # highest closed window index
    history: deque = field(default_factory=deque)
    features: set = field(default_factory=set)
    max_event_ns: int = 0
    last_arrival_ns: int = 0
    first_seen_ns: int = 0
    points: int = 0
    rows: int = 0
    calls: int = 0
    spans: int = 0
    windows_closed: int = 0
    partial_windows: int = 0  # closed windows marked partial
    sources: dict = field(default_factory=dict)  # source (resource) -> end of its newest point of this version
    first_window: int | None = None  # the window of its first accepted point
    confirmed: bool = False  # it has had data in a second window (see the module docstring)
    streams: set = field(default_factory=set)  # its cumulative streams, forgotten with it when it is evicted

    @property
    def key(self) -> tuple:
        return (self.model, self.version)

    def __getstate__(self):  # history lives in the store's windows table, not in checkpoints
        state = dict(self.__dict__)
        state["history"] = deque()
        return state


@dataclass
class Applied:
    accepted: int = 0
    rejected: int = 0
    errors: list = field(default_factory=list)
    closed: list = field(default_factory=list)

    def reject(self, message: str) -> None:
        self.rejected += 1
        if message not in self.errors and len(self.errors) < 20:
            self.errors.append(message)


class State:
    """Windows of every model version; feed it with :meth:`apply` and :meth:`tick`."""

    def __init__(self, config: StateConfig | None = None):
        self.config = config or StateConfig()
        self.window_ns = int(self.config.window_s * 1e9)
        self.models: dict = {}  # (model, version) -> ModelVersion
        self.deltas = Deltas()
        self.max_event_ns = 0
        self.last_arrival_ns = 0
        self.counts: Counter = Counter()  # received, accepted, rejected, ignored, late, stale, spans, ...
        self.sources: dict = {}  # source (resource) -> end of its newest point of any model (its watermark)
        self.pinned: set = set()  # (model, version) with a pinned reference, never evicted; the service keeps it
        self.evicted: list = []  # (model, version) evicted and not yet taken (``take_evicted``)
        self._routes: dict = {}
        self._index()

    def _index(self) -> None:
        """Build what is derived from ``models``: versions per model name, the probation order; forget newcomers."""
        self._names: Counter = Counter(model for model, _ in self.models)
        on_probation = sorted((mv for mv in self.models.values() if not mv.confirmed), key=lambda m: m.last_arrival_ns)
        self._probation: OrderedDict = OrderedDict((mv.key, None) for mv in on_probation)  # oldest arrival first
        self._newcomers: OrderedDict = OrderedDict()  # hash of (model, version) -> the request that first sent it
        self._requests = 0
        self._evictions_logged_ns = -_LOG_EVICTIONS_EVERY_NS

    def __getstate__(self):  # the route cache and the indexes are rebuilt on demand
        state = dict(self.__dict__)
        for name in ("_routes", "_names", "_probation", "_newcomers", "_requests", "_evictions_logged_ns"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._routes = {}
        self._index()

    # --- input ----------------------------------------------------------------------------------------------------
    def apply(self, decoded: Decoded, now_ns: int) -> Applied:
        """Add a decoded request's points and spans; returns what was accepted and the windows that closed."""
        result = Applied(rejected=decoded.rejected, errors=list(decoded.errors))
        self._requests += 1
        self.counts["received"] += len(decoded.points) + decoded.rejected
        touched, sources = set(), set()
        future_limit = now_ns + int(self.config.limits.max_future_s * 1e9)
        for point in decoded.points:
            reason = self._apply_point(point, now_ns, future_limit, touched, sources)
            if reason is None:
                result.accepted += 1
            elif reason != "ignored":
                self.counts["rejected"] += 1
                result.reject(reason)
        self.counts["rejected"] += decoded.rejected
        self._count_spans(decoded.spans)
        if decoded.points or decoded.spans:
            self.last_arrival_ns = now_ns
        result.closed = self._close_by_event_time(touched, sources)
        return result

    def _route(self, key) -> tuple | None:
        """``(model, version, task, feature, extra attributes)`` of a stream, or ``None`` if it is not otelml's.
        Cached per stream, boundedly."""
        route = self._routes.get(key)
        if route is None:
            if key.scope == semconv.ANALYZER_SCOPE_NAME:  # an analyzer's own metrics, routed back by a collector
                return None
            attributes = dict(key.attributes)
            model = attributes.get(semconv.MODEL_NAME)
            if not isinstance(model, str):
                return None
            route = (
                model,
                str(attributes.get(semconv.MODEL_VERSION, "")),
                attributes.get(semconv.MODEL_TASK),
                attributes.get(semconv.FEATURE_NAME),
                tuple((k, v) for k, v in key.attributes if k not in _IDENTITY),
            )
            if len(self._routes) >= ROUTES:
                self._routes.clear()
            self._routes[key] = route
        return route

    def _apply_point(self, point, now_ns, future_limit, touched, sources) -> str | None:
        route = self._route(point.key)
        if route is None:
            self.counts["ignored"] += 1
            return "ignored"
        model, version, task, feature, extra = route
        if point.time_unix_nano > future_limit:
            return f"metric {point.key.metric!r}: timestamp more than {self.config.limits.max_future_s:g} s ahead"
        mv = self._model_version(model, version, now_ns)
        if mv is None:
            return f"model {model!r} version {version!r}: over the cap on models or versions"
        index = window_index(point.time_unix_nano, self.window_ns)
        if mv.closed_through is not None and index <= mv.closed_through:
            self.counts["late"] += 1
            return f"metric {point.key.metric!r}: late point, window {index} of {model!r} already closed"
        if (
            point.cumulative
            and point.key not in self.deltas.last
            and len(self.deltas) >= self.config.limits.max_streams
            and not self._forget_idle_stream(now_ns)
        ):
            return f"metric {point.key.metric!r}: over the cap of {self.config.limits.max_streams} cumulative streams"
        if feature is not None and feature not in mv.features:
            if len(mv.features) >= self.config.limits.max_features:
                return f"model {model!r}: over the cap of {self.config.limits.max_features} features"
            mv.features.add(feature)
        try:
            delta = self.deltas.delta(point)
        except StalePoint as exc:
            self.counts["stale"] += 1
            return str(exc)
        if point.cumulative:
            mv.streams.add(point.key)
        window = mv.open.get(index)
        if window is None:
            window = mv.open[index] = Window(index, self.window_ns)
        held = window.capped(delta.kind, delta.key.metric, extra, self.config.limits)
        reason = window.add(delta, held)
        if reason:
            return reason
        if held is not extra:
            self.counts["overflow"] += 1
        if not mv.confirmed:
            self._probation.move_to_end(mv.key)
            if mv.first_window is None:
                mv.first_window = index
            elif index != mv.first_window:
                mv.confirmed = True
                del self._probation[mv.key]
        self._span(mv, point.key.resource, delta, index)
        if mv.task is None:
            mv.task = task
        if point.key.metric == semconv.METRIC_ROWS:
            mv.rows += delta.value
        elif point.key.metric == semconv.METRIC_CALLS:
            mv.calls += delta.value
        mv.points += 1
        mv.max_event_ns = max(mv.max_event_ns, point.time_unix_nano)
        mv.last_arrival_ns = now_ns
        # the data clock that closes quiet models' windows: a source whose clock runs ahead (points up to max_future_s
        # are accepted) must not move it past arrival, or every other sender's next points would arrive late
        self.max_event_ns = max(self.max_event_ns, min(point.time_unix_nano, now_ns))
        self.counts["accepted"] += 1
        touched.add(mv)
        sources.add(point.key.resource)
        return None

    def _span(self, mv: ModelVersion, source, delta, index: int) -> None:
        """Note the time ``delta`` spans: landed in window ``index``, covering every open window it overlaps."""
        end = delta.time_unix_nano
        if source not in mv.sources and len(mv.sources) >= self.config.limits.max_sources:
            return  # past the cap on sources: its points count, but it holds no windows open
        if end > mv.sources.get(source, 0):
            mv.sources[source] = end
        if end > self.sources.get(source, 0):
            self.sources.pop(source, None)  # re-inserted: the dict is in order of last advance
            self.sources[source] = end
            if len(self.sources) > self.config.limits.max_streams:  # bounded: forget the one quiet longest
                del self.sources[next(iter(self.sources))]
        start = delta.start_unix_nano
        if delta.kind == "gauge" or not 0 < start < end:
            return
        mv.open[index].land(source, start, end)
        first = max(start // self.window_ns, index - self.config.limits.history + 1)
        if mv.closed_through is not None:
            first = max(first, mv.closed_through + 1)
        else:
            first = max(first, min(mv.open))
        for covered in range(first, index + 1):
            window = mv.open.get(covered)
            if window is None:  # an empty window this point's interval runs through
                window = mv.open[covered] = Window(covered, self.window_ns)
            window.cover(source, start, end)

    def _model_version(self, model: str, version: str, now_ns: int) -> ModelVersion | None:
        mv = self.models.get((model, version))
        if mv is not None:
            return mv
        limits = self.config.limits
        versions = self._names[model]
        full = versions >= limits.max_versions if versions else len(self._names) >= limits.max_models
        if full and not (self._second_request((model, version)) and self._evict(model if versions else None, now_ns)):
            return None
        mv = self.models[(model, version)] = ModelVersion(model, version, first_seen_ns=now_ns)
        self._names[model] += 1
        self._probation[mv.key] = None
        return mv

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

    def _evict(self, model: str | None, now_ns: int) -> bool:
        """Make room for a new version of ``model`` (or, with ``None``, a new model name) by the module docstring's
        policy; returns whether room was made."""

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
                if mv.key in self.pinned or (mv.confirmed and mv.last_arrival_ns >= recent):
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

    def _count_spans(self, spans) -> None:
        for span in spans:
            model = span.attributes.get(semconv.MODEL_NAME)
            version = str(span.attributes.get(semconv.MODEL_VERSION, ""))
            mv = self.models.get((model, version))
            if mv is not None:
                mv.spans += 1
            self.counts["spans"] += 1

    # --- closing windows ------------------------------------------------------------------------------------------
    def _close_by_event_time(self, touched, sources) -> list[ClosedWindow]:
        """Close what the watermarks of the sources in this request, and of the data as a whole, moved past."""
        lateness = int(self.config.lateness_s * 1e9)
        closed = []
        moved = [mv for mv in self.models.values() if mv in touched or not sources.isdisjoint(mv.sources)]
        for mv in moved:
            closed += self._close_through(
                mv, window_index(self._watermark(mv) - lateness, self.window_ns) - 1, "watermark"
            )
        quiet_mark = self.max_event_ns - lateness - int(self.config.idle_timeout_s * 1e9)
        if quiet_mark > 0:
            through = window_index(quiet_mark, self.window_ns) - 1
            for mv in self.models.values():
                if mv not in moved and (mv.closed_through is None or mv.closed_through < through):
                    closed += self._close_through(mv, through, "idle")
        return closed

    def _watermark(self, mv: ModelVersion) -> int:
        """The oldest watermark among the model version's sources that have not gone quiet; the version's own newest
        point when all have."""
        quiet = self.max_event_ns - int(self.config.idle_timeout_s * 1e9)
        live = [self.sources[s] for s in mv.sources if self.sources.get(s, 0) >= quiet]
        return min(live, default=mv.max_event_ns)

    def tick(self, now_ns: int) -> list[ClosedWindow]:
        """Close windows by wall-clock silence: nothing has arrived at all for ``idle_timeout``."""
        idle_ns = int(self.config.idle_timeout_s * 1e9)
        if not self.last_arrival_ns or now_ns - self.last_arrival_ns < idle_ns:
            return []
        through = window_index(now_ns - int(self.config.lateness_s * 1e9), self.window_ns) - 1
        closed = []
        for mv in self.models.values():
            closed += self._close_through(mv, through, "idle")
        return closed

    def _close_through(self, mv: ModelVersion, through: int, reason: str) -> list[ClosedWindow]:
        """Close every window of ``mv`` up to index ``through``, with empty windows for silent stretches."""
        if not mv.open and mv.closed_through is None:
            return []
        first = min(mv.open) if mv.closed_through is None else mv.closed_through + 1
        first = max(first, through - self.config.limits.history + 1)
        closed = []
        for index in range(first, through + 1):
            window = mv.open.pop(index, None) or Window(index, self.window_ns)
            closed.append(window.close(mv.model, mv.version, reason))
        for index in [i for i in mv.open if i <= through]:  # older than the history: dropped, counted
            self.counts["late"] += mv.open.pop(index).points
        if through >= first:
            mv.closed_through = through
        for window in closed:
            self.remember(mv, window)
        return closed

    def remember(self, mv: ModelVersion, window: ClosedWindow) -> None:
        """Add a closed window to the history in memory (also used when restoring from the store)."""
        mv.history.append(window)
        while len(mv.history) > self.config.in_memory_windows:
            mv.history.popleft()
        mv.windows_closed += 1
        mv.partial_windows += window.partial

    # --- reading --------------------------------------------------------------------------------------------------
    def summary(self, mv: ModelVersion) -> dict:
        current = max(mv.open) if mv.open else None
        return {
            "model": mv.model,
            "version": mv.version,
            "task": mv.task,
            "features": sorted(mv.features),
            "rows": mv.rows,
            "calls": mv.calls,
            "points": mv.points,
            "spans": mv.spans,
            "first_seen_unix_nano": mv.first_seen_ns,
            "last_event_unix_nano": mv.max_event_ns,
            "windows_closed": mv.windows_closed,
            "partial_windows": mv.partial_windows,
            "sources": len(mv.sources),
            "open_windows": sorted(mv.open),
            "current_window": None
            if current is None
            else {
                "index": current,
                "start_unix_nano": current * self.window_ns,
                "end_unix_nano": (current + 1) * self.window_ns,
                "points": mv.open[current].points,
            },
            "last_closed_window": mv.history[-1].summary() if mv.history else None,
        }

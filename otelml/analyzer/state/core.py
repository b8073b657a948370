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

Caps bound memory whatever senders send (``caps``: the caps on models, versions, features, streams, values and
sources, and which model version is evicted to make room).

(long: points are routed, converted, landed and their windows closed under one lock, as one piece of state.)
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from ... import semconv
from ..ingest.points import Decoded
from .caps import Admission, Limits
from .streams import Deltas, StalePoint
from .windows import ClosedWindow, Window, window_index

_IDENTITY = (semconv.MODEL_NAME, semconv.MODEL_VERSION, semconv.MODEL_TASK)
ROUTES = 65_536  # streams whose routing is cached; the cache starts afresh when full

# Closed windows a model version keeps in memory: the status page shows the last 60, the comparison with the previous
# version reads 30. The store keeps ``Limits.history`` (a day of one-minute windows); at the default that cut the
# memory per version 24-fold.
IN_MEMORY_WINDOWS = 60


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


class State(Admission):
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
        scope = model if versions else None
        if full and not (
            ((model, version) in self.pinned and self._evict(scope, now_ns, protect=False))
            or (self._second_request((model, version)) and self._evict(scope, now_ns))
        ):
            return None
        mv = self.models[(model, version)] = ModelVersion(model, version, first_seen_ns=now_ns)
        self._names[model] += 1
        self._probation[mv.key] = None
        return mv

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

"""The analyzer service: journal, state, pipeline and alert path behind one ``ingest`` call.

Receivers decode a request and call :meth:`Analyzer.ingest`; it journals the raw request, applies its points to the
state, runs each window that closes through the pipeline and the alert path, and checkpoints now and then. Only then
do receivers acknowledge, so an acknowledged request survives ``kill -9``. When too many requests are being ingested
at once, ``ingest`` raises :class:`Overloaded` and receivers answer with OTLP's retryable codes. What the API shows
is read by ``api.views``.
"""

from __future__ import annotations

import threading
import time

from .alerts.book import AlertBook, restored
from .alerts.outbox import configured_endpoint
from .alerts.records import AlertQueue, log_alarms
from .api import views
from .attacks import CallerWatch
from .config import AnalyzerConfig
from .detection import Detection
from .ingest.decode import decode_metrics, decode_traces
from .ingest.errors import Overloaded
from .ingest.points import Decoded
from .logs import RejectionLog, logger  # the analyzer's logger escapes control characters in every record
from .pipeline import Pipeline
from .references import Warmup
from .state import Applied, State
from .store import Store

__all__ = ["Analyzer", "Overloaded"]  # Overloaded: what ingest raises

_DECODERS = {"metrics": decode_metrics, "traces": decode_traces}
_CHECKPOINT_SHARE = 0.1  # at most this share of the time goes to checkpoints, which hold the ingest lock
_CHECKPOINTED = (State, Warmup, Detection, AlertBook, CallerWatch)  # what a checkpoint holds, in order


def _is_state(saved) -> bool:
    return (
        isinstance(saved, tuple)
        and len(saved) == len(_CHECKPOINTED)
        and all(isinstance(part, kind) for part, kind in zip(saved, _CHECKPOINTED))
    )


class Analyzer:
    """Everything but the network: construct, then feed with :meth:`ingest`; :meth:`tick` closes idle windows."""

    def __init__(self, config: AnalyzerConfig):
        self.config = config
        self.store = Store(config.state_dir)
        self.lock = threading.Lock()  # ingest, tick and checkpoints take it; readers hold it while they read
        self._slots = threading.BoundedSemaphore(config.max_inflight)
        self._unsaved: list = []  # closed windows not yet in the store
        self.journal_position = 0
        self._last_checkpoint = time.monotonic()
        self._checkpoint_seconds = 0.0  # how long the last checkpoint took
        self.health_snapshot: dict = {}  # what /api/health reads without waiting for the ingest lock
        self.overloaded = 0
        self.window_failures = 0  # closed windows whose detection or alerting raised (each logged), in /api/health
        self._rejections = RejectionLog()
        self.ready = False
        self._restore()

    # --- start-up -------------------------------------------------------------------------------------------------
    def _restore(self) -> None:
        saved, upto = self.store.load_checkpoint()
        if saved is not None and not _is_state(saved):  # data only, but not what this analyzer checkpoints
            logger.error(
                "the checkpoint (the journal after it is replayed on a fresh state) is not this analyzer's state: %s",
                type(saved).__name__,
            )
            saved = None
        if saved is not None and saved[0].config != self.config.state_config():
            logger.warning("state settings changed since the last checkpoint; open windows are kept as they were")
        state, warmup, detection, alerts, attacks = saved or (None,) * len(_CHECKPOINTED)
        self.state = state if state is not None else State(self.config.state_config())
        self.pipeline = Pipeline(self.store, self.state, warmup, detection, attacks, self.config)
        c = self.config
        self.alerts = restored(alerts, c.alert_resolve_windows, c.alert_update_windows, c.alerts_min_severity)
        self.alert_queue = AlertQueue(self.store, configured_endpoint(c.alerts_endpoint), c.alerts_format)
        for mv in self.state.models.values():
            mv.history.extend(self.store.windows(mv.model, mv.version, self.state.config.in_memory_windows))
        self.journal_position = upto
        replayed = 0
        for position, signal, payload, received_ns in self.store.journal_after(upto):
            kind, _, content_type = signal.partition(":")
            try:
                self._apply(_DECODERS[kind](payload, content_type), received_ns)
            except Exception as exc:  # a damaged or poisoned row: kept aside, never a reason to stay down
                logger.exception("journal row %d cannot be replayed; set aside for inspection", position)
                self.store.set_aside(position, f"{type(exc).__name__}: {exc}")
                continue
            self.journal_position = position
            replayed += 1
        self.checkpoint()
        self.set_aside_rows = self.store.set_aside_count()  # rows are set aside only by the replay above
        self.health_snapshot = views.snapshot(self)
        self.ready = True
        logger.info(
            "analyzer state restored: %d model versions, %d requests replayed", len(self.state.models), replayed
        )

    # the checkpointed parts the pipeline keeps
    warmup = property(lambda self: self.pipeline.warmup)
    detection = property(lambda self: self.pipeline.detection)
    attacks = property(lambda self: self.pipeline.attacks)

    # --- ingest ---------------------------------------------------------------------------------------------------
    def ingest(self, signal: str, content_type: str, payload: bytes, decoded: Decoded) -> Applied:
        """Journal and apply one decoded request. Raises :class:`Overloaded` when too busy."""
        applied = self._ingest(signal, content_type, payload, decoded)
        if applied.rejected:
            self._rejections.add(applied.rejected, applied.errors)
        return applied

    def _ingest(self, signal: str, content_type: str, payload: bytes, decoded: Decoded) -> Applied:
        if not decoded.points and not decoded.spans:
            return Applied(rejected=decoded.rejected, errors=list(decoded.errors))
        if not self._slots.acquire(blocking=False):
            self.overloaded += 1
            raise Overloaded("too many requests in flight")
        try:
            if not self.lock.acquire(timeout=self.config.max_wait):  # the others ahead would take too long
                self.overloaded += 1
                raise Overloaded(f"no turn to ingest within {self.config.max_wait} s")
            try:
                now = time.time_ns()
                self.journal_position = self.store.append(f"{signal}:{content_type}", payload, now)
                applied = self._apply(decoded, now)
                self._checkpoint_if_due()
                self.health_snapshot = views.snapshot(self)
                return applied
            finally:
                self.lock.release()
        finally:
            self._slots.release()

    def _apply(self, decoded: Decoded, now_ns: int) -> Applied:
        applied = self.state.apply(decoded, now_ns)
        for key in self.state.take_evicted():  # what is kept per model version goes with it
            self.pipeline.forget(key)
        self.attacks.observe_spans(decoded.spans)
        self._closed(applied.closed)
        return applied

    def _closed(self, windows) -> None:
        self._unsaved.extend(windows)
        for window in windows:
            try:
                findings = self.pipeline.judge(window)
                self.alert_queue.send(
                    self.alerts.on_window(window.model, window.version, window.end_unix_nano, findings)
                )
                log_alarms(findings)
            except Exception:  # one model's window must not fail the request, or other models' windows
                self.window_failures += 1
                logger.exception("window %s of model %r version %r failed", window.index, window.model, window.version)

    def tick(self, now_ns: int | None = None) -> int:
        """Close windows of silence (wall clock) and checkpoint if due; returns how many windows closed."""
        with self.lock:
            self.alert_queue.send(self.pipeline.reference_actions(self.alerts))
            closed = self.state.tick(now_ns or time.time_ns())
            self._closed(closed)
            self._checkpoint_if_due()
            self.health_snapshot = views.snapshot(self)
        return len(closed)

    def checkpoint(self) -> None:
        with self.lock:
            self._checkpoint_locked()

    def _checkpoint_if_due(self) -> None:
        """Checkpoint every ``checkpoint_interval``, or less often while a checkpoint takes more than
        ``_CHECKPOINT_SHARE`` of that: as the state grows, ingest keeps most of the time. Closed windows wait for the
        next checkpoint like everything else; until then the journal covers them (a restart closes them again)."""
        since = time.monotonic() - self._last_checkpoint
        if since >= max(self.config.checkpoint_interval, self._checkpoint_seconds / _CHECKPOINT_SHARE):
            self._checkpoint_locked()

    def _checkpoint_locked(self) -> None:
        start = time.monotonic()
        self.store.checkpoint(
            (self.state, self.warmup, self.detection, self.alerts, self.attacks),
            self.journal_position,
            self._unsaved,
            self.config.limits.history,
        )
        self._unsaved = []
        self._last_checkpoint = time.monotonic()
        self._checkpoint_seconds = self._last_checkpoint - start

    def close(self) -> None:
        self.checkpoint()
        self.store.close()

    # --- reading: the read models of api.views, as methods --------------------------------------------------------
    models, page_data, alarms, health = views.models, views.page_data, views.alarms, views.health

"""The analyzer service: journal, state, references and checkpoints behind one ``ingest`` call.

Receivers decode a request and call :meth:`Analyzer.ingest`; it journals the raw request, applies its points to the
state, learns warm-up references from closed windows, and checkpoints now and then. Only then do receivers
acknowledge, so an acknowledged request survives ``kill -9``. When too many requests are being ingested at once,
``ingest`` raises :class:`Overloaded` and receivers answer with OTLP's retryable codes.
"""

from __future__ import annotations

import threading
import time

from . import outbox, references, status_page
from .alerts import REFERENCE_ACTIONS, AlertBook, detector_label
from .attacks import FORMAT, CallerWatch
from .config import AnalyzerConfig
from .decode import decode_metrics, decode_traces
from .detection import Detection, as_dict
from .logs import logger  # the analyzer's logger, escaping control characters in every record
from .points import Decoded
from .state import Applied, State
from .store import CANDIDATE, PINNED, Store

_DECODERS = {"metrics": decode_metrics, "traces": decode_traces}
_REPORT_REJECTIONS_EVERY_S = 60.0
_CHECKPOINT_SHARE = 0.1  # at most this share of the time goes to checkpoints, which hold the ingest lock
_CHECKPOINTED = (State, references.Warmup, Detection, AlertBook, CallerWatch)  # what a checkpoint holds, in order


def _is_state(saved) -> bool:
    return (
        isinstance(saved, tuple)
        and len(saved) == len(_CHECKPOINTED)
        and all(isinstance(part, kind) for part, kind in zip(saved, _CHECKPOINTED))
    )


def _resettled(book: AlertBook, settings) -> AlertBook:
    """The open alerts of ``book`` under new settings."""
    fresh = AlertBook(*settings)
    fresh.open = book.open
    return fresh


class Overloaded(RuntimeError):
    """Too many requests in flight; the sender should retry later."""


class Analyzer:
    """Everything but the network: construct, then feed with :meth:`ingest`; :meth:`tick` closes idle windows."""

    def __init__(self, config: AnalyzerConfig):
        self.config = config
        self.store = Store(config.state_dir)
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(config.max_inflight)
        self._unsaved: list = []  # closed windows not yet in the store
        self._journal_position = 0
        self._last_checkpoint = time.monotonic()
        self._checkpoint_seconds = 0.0  # how long the last checkpoint took
        self._health: dict = {}  # what /api/health reads without waiting for the ingest lock; see _snapshot
        self.overloaded = 0
        self.window_failures = 0  # closed windows whose detection or alerting raised (each logged), in /api/health
        self.alerts_queued = False
        self._rejected_unreported = 0
        self._rejections_reported = -_REPORT_REJECTIONS_EVERY_S
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
        self.state, self.warmup, self.detection, self.alerts, self.attacks = saved or (None,) * len(_CHECKPOINTED)
        if getattr(self.attacks, "format", None) != FORMAT or self.attacks.config != self.config.attacks:
            self.attacks = CallerWatch(self.config.attacks)
        if self.state is None:
            self.state = State(self.config.state_config())
        if self.warmup is None or self.warmup.observations != self.config.warmup:
            self.warmup = references.Warmup(self.config.warmup)
        settings = (
            self.config.window,
            self.config.false_alarm_days,
            self.config.min_effect,
            self.config.baseline_windows,
            self.config.drift_scan_share,
            self.config.confidence_threshold,
            self.config.confidence_minutes,
            self.config.low_confidence_threshold,
        )
        if self.detection is None or self.detection.settings != settings:
            self.detection = Detection(*settings)
        alert_settings = (
            self.config.alert_resolve_windows,
            self.config.alert_update_windows,
            self.config.alerts_min_severity,
        )
        if (
            self.alerts is None
            or (self.alerts.resolve_windows, self.alerts.update_windows, self.alerts.min_severity) != alert_settings
        ):
            self.alerts = AlertBook(*alert_settings) if self.alerts is None else _resettled(self.alerts, alert_settings)
        self.alert_endpoint = outbox.configured_endpoint(self.config.alerts_endpoint)
        self._pinned_cache: dict = {}
        self._previous: dict = {}  # (model, version) -> Reference of the previous version, or None
        self._store_version = None  # the store's version when the pinned references were last read; None: never
        for mv in self.state.models.values():
            mv.history.extend(self.store.windows(mv.model, mv.version, self.state.config.in_memory_windows))
        self._journal_position = upto
        replayed = 0
        for position, signal, payload, received_ns in self.store.journal_after(upto):
            kind, _, content_type = signal.partition(":")
            try:
                self._apply(_DECODERS[kind](payload, content_type), received_ns)
            except Exception as exc:  # a damaged or poisoned row: kept aside, never a reason to stay down
                logger.exception("journal row %d cannot be replayed; set aside for inspection", position)
                self.store.set_aside(position, f"{type(exc).__name__}: {exc}")
                continue
            self._journal_position = position
            replayed += 1
        self.checkpoint()
        self._set_aside = self.store.set_aside_count()  # rows are set aside only by the replay above
        self._snapshot()
        self.ready = True
        logger.info(
            "analyzer state restored: %d model versions, %d requests replayed", len(self.state.models), replayed
        )

    # --- ingest ---------------------------------------------------------------------------------------------------
    def ingest(self, signal: str, content_type: str, payload: bytes, decoded: Decoded) -> Applied:
        """Journal and apply one decoded request. Raises :class:`Overloaded` when too busy."""
        applied = self._ingest(signal, content_type, payload, decoded)
        if applied.rejected:
            self._report_rejections(applied)
        return applied

    def _report_rejections(self, applied: Applied) -> None:
        """Log rejections at most once a minute, with their count since the last report and the latest reasons."""
        self._rejected_unreported += applied.rejected
        now = time.monotonic()
        if now - self._rejections_reported >= _REPORT_REJECTIONS_EVERY_S:
            logger.warning(
                "rejected %d data points since the last report; latest reasons: %s",
                self._rejected_unreported,
                "; ".join(applied.errors[:3]),
            )
            self._rejected_unreported, self._rejections_reported = 0, now

    def _ingest(self, signal: str, content_type: str, payload: bytes, decoded: Decoded) -> Applied:
        if not decoded.points and not decoded.spans:
            return Applied(rejected=decoded.rejected, errors=list(decoded.errors))
        if not self._slots.acquire(blocking=False):
            self.overloaded += 1
            raise Overloaded("too many requests in flight")
        try:
            if not self._lock.acquire(timeout=self.config.max_wait):  # the others ahead would take too long
                self.overloaded += 1
                raise Overloaded(f"no turn to ingest within {self.config.max_wait} s")
            try:
                now = time.time_ns()
                self._journal_position = self.store.append(f"{signal}:{content_type}", payload, now)
                applied = self._apply(decoded, now)
                self._checkpoint_if_due()
                self._snapshot()
                return applied
            finally:
                self._lock.release()
        finally:
            self._slots.release()

    def _apply(self, decoded: Decoded, now_ns: int) -> Applied:
        applied = self.state.apply(decoded, now_ns)
        for key in self.state.take_evicted():  # what is kept per model version goes with it
            self.detection.forget(key)
            self.warmup.forget(key)
            self._pinned_cache.pop(key, None)
            self._previous.pop(key, None)
        self.attacks.observe_spans(decoded.spans)
        self._closed(applied.closed)
        return applied

    def _closed(self, windows) -> None:
        self._unsaved.extend(windows)
        for window in windows:
            try:
                self._judge(window)
            except Exception:  # one model's window must not fail the request, or other models' windows
                self.window_failures += 1
                logger.exception("window %s of model %r version %r failed", window.index, window.model, window.version)

    def _judge(self, window) -> None:
        """Warm-up, detection, attack findings and alerts for one closed window."""
        reference = self._pinned(window.model, window.version)
        if reference is None:
            learned = self.warmup.add(window)
            if learned is not None:
                self.store.add_reference(learned, PINNED)
                self._pinned_cache.pop((learned.model, learned.version), None)
                logger.info(
                    "reference for %s %s learned from live traffic: %s",
                    learned.model,
                    learned.version,
                    learned.hash,
                )
        findings = self.detection.on_window(window, reference, self._previous_version(window.model, window.version))
        attacks = self.attacks.take(window.model, window.version)
        self.detection.alarms.extend(attacks)
        findings = attacks + findings
        events = self.alerts.on_window(window.model, window.version, window.end_unix_nano, findings)
        if events and self.alert_endpoint:
            self._queue(events)
        for event in events:
            logger.warning("alert %s: %s", event.state, event.body)
        for finding in findings:
            if finding.alarm:
                logger.warning(
                    "%s alarm: model %s version %s%s, %s %.3g >= %.3g, effect %s",
                    finding.kind,
                    finding.model,
                    finding.version,
                    f" feature {finding.feature}" if finding.feature else "",
                    finding.statistic,
                    finding.value,
                    finding.threshold,
                    finding.effect_size,
                )

    def _reference_actions(self) -> None:
        """Integrity alerts for changes to pinned references made since the last look (by the CLI, say)."""
        self._refresh_pinned()
        events = [
            self.alerts.reference_action(*row)
            for row in self.store.events(self.alerts.reference_events_seen)
            if row[4] in REFERENCE_ACTIONS
        ]
        if events and self.alert_endpoint:
            self._queue(events)
        for event in events:
            logger.warning("alert %s: %s", event.state, event.body)

    def _queue(self, events) -> None:
        self.store.outbox_add(
            [(e.event_id, e.time_unix_nano, outbox.encode(e, self.config.alerts_format)) for e in events]
        )
        self.alerts_queued = True

    def _previous_version(self, model: str, version: str):
        """The behaviour of the model's previous version (the other version whose data is newest), from its last
        30 windows with data; fixed when first built, so the comparison has a stable reference."""
        key = (model, version)
        if key not in self._previous:
            others = [mv for (m, v), mv in self.state.models.items() if m == model and v != version]
            previous = max(others, key=lambda mv: mv.max_event_ns, default=None)
            windows = [w for w in previous.history if w.points][-30:] if previous is not None else []
            self._previous[key] = (
                references.from_windows(model, previous.version, windows) if len(windows) >= 10 else None
            )
        return self._previous[key]

    def _refresh_pinned(self) -> None:
        """Read every pinned reference again at start-up and whenever another process wrote to the store (the CLI
        may pin or promote while we run); the store checks each against its hash and records a ``tampered`` event
        for one whose data changed."""
        current = self.store.data_version()
        if current != self._store_version:
            self._store_version = current
            self._pinned_cache = {key: self.store.pinned(*key) for key in self.store.pinned_versions()}

    def _pinned(self, model: str, version: str):
        """The pinned reference, cached until the store changes."""
        self._refresh_pinned()
        key = (model, version)
        if key not in self._pinned_cache:
            self._pinned_cache[key] = self.store.pinned(model, version)
        if self._pinned_cache[key] is not None:
            self.state.pinned.add(key)  # never evicted at the cap on models (state.py)
        return self._pinned_cache[key]

    def tick(self, now_ns: int | None = None) -> int:
        """Close windows of silence (wall clock) and checkpoint if due; returns how many windows closed."""
        with self._lock:
            self._reference_actions()
            closed = self.state.tick(now_ns or time.time_ns())
            self._closed(closed)
            self._checkpoint_if_due()
            self._snapshot()
        return len(closed)

    def checkpoint(self) -> None:
        with self._lock:
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
            self._journal_position,
            self._unsaved,
            self.config.limits.history,
        )
        self._unsaved = []
        self._last_checkpoint = time.monotonic()
        self._checkpoint_seconds = self._last_checkpoint - start

    def close(self) -> None:
        self.checkpoint()
        self.store.close()

    # --- reading --------------------------------------------------------------------------------------------------
    def models(self) -> list[dict]:
        """What ``GET /api/models`` returns."""
        with self._lock:
            summaries = [self.state.summary(mv) for mv in self.state.models.values()]
        for summary in summaries:
            summary["reference"] = self._reference_status(summary["model"], summary["version"])
            with self._lock:
                summary["detectors"] = self.detection.summary(summary["model"], summary["version"])
        return sorted(summaries, key=lambda s: (s["model"], s["version"]))

    def page_data(self) -> dict:
        """A snapshot for the status page (``status_page.render``)."""
        models = self.models()
        with self._lock:
            for summary in models:
                mv = self.state.models[(summary["model"], summary["version"])]
                reference = self._pinned(mv.model, mv.version)
                summary.update(status_page.model_data(mv, reference, summary["detectors"]))
            alerts = [
                {
                    "model": a.key[0],
                    "version": a.key[1],
                    "kind": a.key[2],
                    "detector": detector_label(a.key[3], a.key[4]),
                    "severity": a.severity,
                    "features": sorted({f.feature for f in a.findings if f.feature}),
                    "findings": len(a.findings),
                }
                for a in self.alerts.open.values()
            ]
            health = dict(self.state.counts)
        return {"models": models, "alerts": alerts, "health": health}

    def alarms(self) -> list[dict]:
        """Recent alarms, newest last (what ``GET /api/alarms`` returns)."""
        with self._lock:
            return [as_dict(f) for f in self.detection.alarms]

    def _reference_status(self, model: str, version: str) -> dict:
        refs = self.store.references(model, version)
        pinned = next((ref for status, ref in refs if status == PINNED), None)
        if pinned is not None:
            return {"status": PINNED, "hash": pinned.hash, "source": pinned.source, "rows": pinned.rows}
        with self._lock:
            progress = self.warmup.progress(model, version)
        return {
            "status": "warming up",
            "observations": progress,
            "needed": self.config.warmup,
            "candidates": [ref.hash for status, ref in refs if status == CANDIDATE],
        }

    def _snapshot(self) -> None:
        """Take, under the ingest lock, the counts that ``/api/health`` reads without it."""
        self._health = {
            "models": len(self.state.models),
            "windows_closed": sum(mv.windows_closed for mv in self.state.models.values()),
            "cumulative_streams": len(self.state.deltas),
            "points": dict(self.state.counts),
            "detector_failures": self.detection.failed,
            "callers": self.attacks.summary(),
            "journal_position": self._journal_position,
            "journal_set_aside": self._set_aside,
        }

    def health(self) -> dict:
        """What ``GET /api/health`` returns: counts as of the last request or tick, read without the ingest lock, so
        a long checkpoint or window never delays it."""
        snapshot = self._health
        return {
            "ready": self.ready,
            "models": snapshot["models"],
            "windows_closed": snapshot["windows_closed"],
            "cumulative_streams": snapshot["cumulative_streams"],
            "points": snapshot["points"],
            "overloaded": self.overloaded,
            "detector_failures": snapshot["detector_failures"],
            "window_failures": self.window_failures,
            "journal_set_aside": snapshot["journal_set_aside"],
            "store_seconds": round(self.store.seconds_in_store, 6),
            "journal_position": snapshot["journal_position"],
            "callers": snapshot["callers"],
        }

"""What happens to each closed window between the state that closed it and the alert path.

For one window of one model version, :meth:`Pipeline.judge` takes the pinned reference (read from the store, cached
until the store changes, checked against its hash there), or, while there is none, feeds the warm-up, which pins a
reference learned from live traffic once it has seen enough; runs the version's detectors against the reference
and against the previous version's behaviour; and puts the attack findings of the version's callers first. It
returns the findings; turning them into alerts is the alert path's job. Changes to pinned references made by
another process (the CLI) become reference-guard alert events (:meth:`Pipeline.reference_actions`).

No network here, and the store is written only through its interface (``store.interface``): a learned reference
and, inside the store, a ``tampered`` event for a pinned reference whose data changed.
"""

from __future__ import annotations

from . import references
from .alerts.book import REFERENCE_ACTIONS, AlertBook, AlertEvent
from .attacks import FORMAT, CallerWatch
from .config import AnalyzerConfig
from .detection import Detection
from .logs import logger
from .references import Reference
from .state import State
from .state.windows import ClosedWindow
from .store import PINNED
from .store.interface import StateStore


def detection_settings(config: AnalyzerConfig) -> tuple:
    """What :class:`Detection` is made with; a checkpointed one made with other settings is started afresh."""
    return (
        config.window,
        config.false_alarm_days,
        config.min_effect,
        config.baseline_windows,
        config.drift_scan_share,
        config.confidence_threshold,
        config.confidence_minutes,
        config.low_confidence_threshold,
    )


class Pipeline:
    """Warm-up, references, detection and attack findings, for every model version of ``state``."""

    def __init__(self, store: StateStore, state: State, warmup, detection, attacks, config: AnalyzerConfig):
        """Take the checkpointed parts (``None`` for none), each started afresh if made with other settings."""
        if getattr(attacks, "format", None) != FORMAT or attacks.config != config.attacks:
            attacks = CallerWatch(config.attacks)
        if warmup is None or warmup.observations != config.warmup:
            warmup = references.Warmup(config.warmup)
        if detection is None or detection.settings != detection_settings(config):
            detection = Detection(*detection_settings(config))
        self.store, self.state = store, state
        self.warmup: references.Warmup = warmup
        self.detection: Detection = detection
        self.attacks: CallerWatch = attacks
        self._pinned_cache: dict = {}
        self._previous: dict = {}  # (model, version) -> Reference of the previous version, or None
        self._store_version = None  # the store's version when the pinned references were last read; None: never

    def forget(self, key: tuple) -> None:
        """Drop what is kept for an evicted model version."""
        self.detection.forget(key)
        self.warmup.forget(key)
        self._pinned_cache.pop(key, None)
        self._previous.pop(key, None)

    def judge(self, window: ClosedWindow) -> list:
        """Warm-up, detection and attack findings for one closed window: the findings, attacks first."""
        reference = self.pinned(window.model, window.version)
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
        return attacks + findings

    def reference_actions(self, book: AlertBook) -> list[AlertEvent]:
        """Integrity alert events for changes to pinned references made since the last look (by the CLI, say)."""
        self._refresh_pinned()
        return [
            book.reference_action(*row)
            for row in self.store.events(book.reference_events_seen)
            if row[4] in REFERENCE_ACTIONS
        ]

    def _previous_version(self, model: str, version: str) -> Reference | None:
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
            # known to the state before their first point: a pinned newcomer gets in at the cap on models
            self.state.pinned.update(key for key, ref in self._pinned_cache.items() if ref is not None)

    def pinned(self, model: str, version: str) -> Reference | None:
        """The pinned reference, cached until the store changes."""
        self._refresh_pinned()
        key = (model, version)
        if key not in self._pinned_cache:
            self._pinned_cache[key] = self.store.pinned(model, version)
        if self._pinned_cache[key] is not None:
            self.state.pinned.add(key)  # never evicted at the cap on models (state.caps)
        return self._pinned_cache[key]

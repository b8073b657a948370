"""otelml's own health: counts of telemetry it had to drop, warnings logged once per kind, and the one guard that
keeps otelml's failures away from the model.

Nothing here raises. A problem on the hot path is counted by reason (exported as ``otelml.telemetry.dropped``) and
logged the first time it happens, then at most once a minute per reason, so a broken input shape in a tight loop
neither floods the log nor goes unnoticed. Every stage of a monitored call (and the export thread, and
``record_outcome``) runs inside a :class:`Guard`: the failure is counted and the stage is skipped; nothing is retried
and nothing waits.

Each :class:`otelml.sdk.runtime.Runtime` owns its :class:`Health`.

Example:
    >>> health = Health()
    >>> with health.guard(INTERNAL_ERROR, "dividing failed: "):
    ...     1 / 0
    >>> health.totals()
    {'internal_error': 1}
"""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger("otelml")

BAD_INPUT = "bad_input"
BAD_OUTPUT = "bad_output"
INTERNAL_ERROR = "internal_error"
EXPORT_FAILED = "export_failed"
CARDINALITY = "cardinality_limit"
UNKNOWN_PREDICTION = "unknown_prediction"

_LOG_EVERY_S = 60.0


class Health:
    """Counters of dropped items by reason, and rate-limited warnings; thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._dropped: dict[str, int] = {}
        self._pending: dict[str, int] = {}
        self._last_logged: dict[str, float] = {}

    def drop(self, reason: str, message: str, count: int = 1, exc_info=False) -> None:
        """Count ``count`` items dropped for ``reason``; log ``message`` unless logged for it in the last minute."""
        now = time.monotonic()
        with self._lock:
            self._dropped[reason] = self._dropped.get(reason, 0) + count
            self._pending[reason] = self._pending.get(reason, 0) + count
            last = self._last_logged.get(reason)
            if last is not None and now - last < _LOG_EVERY_S:
                return
            self._last_logged[reason] = now
        logger.warning("otelml dropped telemetry (%s): %s", reason, message, exc_info=exc_info)

    def guard(self, reason: str, prefix: str, *, errors=Exception, exc_info: bool = False, show=repr) -> Guard:
        """A :class:`Guard` counting into this health (make it once and reuse it on a hot path)."""
        return Guard(self, reason, prefix, errors=errors, exc_info=exc_info, show=show)

    def totals(self) -> dict[str, int]:
        """Everything dropped since start, by reason."""
        with self._lock:
            return dict(self._dropped)

    def take_pending(self) -> dict[str, int]:
        """What was dropped since the last call, by reason (for delta export)."""
        with self._lock:
            pending, self._pending = self._pending, {}
            return pending


class Guard:
    """``with guard:`` runs a stage that must never raise into the model: an exception of ``errors`` raised inside is
    counted under ``reason`` and logged as ``prefix + show(exception)`` (rate-limited), and the block is left; any
    other exception (a ``BaseException`` such as ``KeyboardInterrupt``) passes. A block that returns a value
    returns it from inside the ``with``; the code after the ``with`` is the stage's fallback.

    A guard holds no state of a call, so one instance serves every call and thread.
    """

    __slots__ = ("health", "reason", "prefix", "errors", "exc_info", "show")

    def __init__(self, health: Health, reason: str, prefix: str, *, errors=Exception, exc_info=False, show=repr):
        self.health = health
        self.reason = reason
        self.prefix = prefix
        self.errors = errors
        self.exc_info = exc_info
        self.show = show

    def __enter__(self) -> Guard:
        return self

    def __exit__(self, kind, exc, traceback) -> bool:
        if exc is None or not isinstance(exc, self.errors):
            return False
        self.health.drop(self.reason, self.prefix + self.show(exc), exc_info=exc if self.exc_info else False)
        return True

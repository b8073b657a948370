"""otelml's own health: counts of telemetry it had to drop, and warnings logged once per kind.

Nothing here raises. A problem on the hot path is counted by reason (exported as ``otelml.telemetry.dropped``) and
logged the first time it happens, then at most once a minute per reason, so a broken input shape in a tight loop
neither floods the log nor goes unnoticed.
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
    """Counters of dropped items by reason, and rate-limited warnings."""

    def __init__(self):
        self._lock = threading.Lock()
        self._dropped: dict[str, int] = {}
        self._pending: dict[str, int] = {}
        self._last_logged: dict[str, float] = {}

    def drop(self, reason: str, message: str, count: int = 1, exc_info: bool = False) -> None:
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

    def totals(self) -> dict[str, int]:
        """Everything dropped since start, by reason."""
        with self._lock:
            return dict(self._dropped)

    def take_pending(self) -> dict[str, int]:
        """What was dropped since the last call, by reason (for delta export)."""
        with self._lock:
            pending, self._pending = self._pending, {}
            return pending


health = Health()

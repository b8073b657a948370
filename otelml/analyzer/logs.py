"""The analyzer's logger, ``otelml.analyzer``, whose records never carry raw control characters.

Model, version, feature and caller names come from senders. A feature name holding a newline would otherwise write
a line of its own into the analyzer's log, one that looks like any other (a forged alarm, a forged "resolved"). The
filter escapes every control character of the formatted message (C0 and C1 controls, DEL, and the Unicode line and
paragraph separators) as ``\\n``, ``\\x1b``, ``\\u2028``, so one record stays one line whatever the format.

Example:
    >>> escape("x2\\nINFO forged")
    'x2\\\\nINFO forged'
"""

from __future__ import annotations

import logging
import re
import time

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: str) -> str:
    """``text`` with its control characters written as escapes."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), m.group().encode("unicode_escape").decode("ascii")), text)


class _EscapeControl(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        escaped = escape(message)
        if escaped != message:
            record.msg, record.args = escaped, None
        return True


logger = logging.getLogger("otelml.analyzer")
logger.addFilter(_EscapeControl())


class RejectionLog:
    """Rejected data points, logged at most once a minute with their count since the last report and the latest
    reasons."""

    EVERY_S = 60.0

    def __init__(self):
        self.unreported = 0
        self.reported = -self.EVERY_S  # monotonic time of the last report

    def add(self, rejected: int, errors: list) -> None:
        self.unreported += rejected
        now = time.monotonic()
        if now - self.reported >= self.EVERY_S:
            logger.warning(
                "rejected %d data points since the last report; latest reasons: %s",
                self.unreported,
                "; ".join(errors[:3]),
            )
            self.unreported, self.reported = 0, now

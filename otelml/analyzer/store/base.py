"""What the store's tables share: one SQLite connection behind one lock, every change one timed transaction, and
blobs that decode or are left out with a logged error."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

from . import codec

logger = logging.getLogger("otelml.analyzer")


class Rows:
    """Base of the store's parts: ``_db`` and ``_lock`` are set by the store."""

    _db: sqlite3.Connection
    _lock: threading.Lock
    seconds_in_store: float

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _run(self, fn):
        start = time.perf_counter()
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                result = fn(self._db)
                self._db.execute("COMMIT")
                return result
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                self.seconds_in_store += time.perf_counter() - start


def decoded(blob: bytes, what: str):
    """The value of a blob, or None (logged) for one that cannot be decoded."""
    try:
        return codec.decode(blob)
    except ValueError as exc:
        logger.error("%s cannot be read and is left out: %s", what, exc)
        return None

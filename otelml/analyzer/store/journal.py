"""The journal: every accepted export request, written before it is acknowledged, until a checkpoint covers it;
and ``set_aside``, the journaled requests that could not be applied when replayed (kept for inspection)."""

from __future__ import annotations

import time

from .base import Rows


class JournalRows(Rows):
    def append(self, signal: str, payload: bytes, received_ns: int) -> int:
        """Journal one accepted request; returns its position."""
        return self._run(
            lambda db: (
                db.execute(
                    "INSERT INTO journal (received_ns, signal, payload) VALUES (?, ?, ?)",
                    (received_ns, signal, payload),
                ).lastrowid
            )
        )

    def set_aside(self, position: int, reason: str) -> None:
        """Move journal row ``position`` to ``set_aside`` with ``reason``, in one transaction."""

        def write(db):
            db.execute(
                "INSERT OR REPLACE INTO set_aside SELECT id, received_ns, signal, payload, ?, ? FROM journal "
                "WHERE id = ?",
                (reason[:1000], time.time_ns(), position),
            )
            db.execute("DELETE FROM journal WHERE id = ?", (position,))

        self._run(write)

    def set_aside_count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM set_aside").fetchone()[0]

    def journal_after(self, position: int):
        """``(position, signal, payload, received_ns)`` of every request journaled after ``position``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, signal, payload, received_ns FROM journal WHERE id > ? ORDER BY id", (position,)
            ).fetchall()
        return rows

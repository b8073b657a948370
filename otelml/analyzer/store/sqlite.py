"""The analyzer's embedded store: SQLite under ``--state-dir``, safe against ``kill -9`` at any moment.

What is kept:

- ``journal``: every accepted export request, written before it is acknowledged, until a checkpoint covers it;
- ``set_aside``: journaled requests that could not be applied when replayed at a restart, with the reason, kept
  for inspection (a poisoned request must never keep the analyzer down);
- ``checkpoint``: the state that is not in a closed window (open windows, cumulative stream baselines, warm-ups),
  with the journal position it covers; restart = checkpoint + replay of the journal after it;
- ``windows``: closed windows, the last ``history`` per model version;
- ``refs``: references per model version and content hash, with status ``pinned`` or ``candidate``;
- ``legacy_refs``: references an earlier otelml pickled, set aside unread (see below);
- ``events``: actions on references (stored, promoted, refused, tampered), for audit;
- ``outbox``: alert records not yet delivered, each with a stable event id and its event's time (records wait and
  go out in the order of their events' times, then of their arrival).

Checkpoints, windows and references are blobs of :mod:`otelml.analyzer.store.codec`: data only, so a planted blob can
make the analyzer refuse a row, never run code. A blob that does not decode is refused with a logged error: a
checkpoint is then replaced by the journal after it, a window left out, a pinned reference treated as tampered.
The store's format is SQLite's ``user_version``: 0 is a store of an earlier otelml, whose blobs are pickles and so
are never read. Opening one drops its checkpoint and windows (the journal since the last checkpoint is replayed,
detectors relearn their baselines, warm-ups start again) and moves its references to ``legacy_refs``, with one
warning; ``otelml state migrate --trust-pickles`` brings those back once the operator vouches for the file.

SQLite runs in WAL mode with ``synchronous=NORMAL``: a committed transaction survives the process being killed
(an operating-system crash may lose the last transactions). Every change is one transaction.

The rest of the analyzer uses the methods of ``interface.StateStore`` only, so a server database could replace it;
the tables are kept by ``journal`` and ``refs`` (this module: checkpoints, windows, the outbox).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time

from ..state.windows import ClosedWindow
from . import codec
from .base import decoded, logger
from .journal import JournalRows
from .refs import CANDIDATE, PINNED, ReferenceActionError, ReferenceRows

__all__ = ["CANDIDATE", "PINNED", "ReferenceActionError", "Store"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY AUTOINCREMENT, received_ns INTEGER, signal TEXT,
                                    payload BLOB);
CREATE TABLE IF NOT EXISTS checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), journal_upto INTEGER,
                                       created_ns INTEGER, state BLOB);
CREATE TABLE IF NOT EXISTS windows (model TEXT, version TEXT, idx INTEGER, data BLOB,
                                    PRIMARY KEY (model, version, idx));
CREATE TABLE IF NOT EXISTS refs (model TEXT, version TEXT, hash TEXT, status TEXT, created_ns INTEGER, data BLOB,
                                 PRIMARY KEY (model, version, hash));
CREATE TABLE IF NOT EXISTS legacy_refs (model TEXT, version TEXT, hash TEXT, status TEXT, created_ns INTEGER,
                                        data BLOB, PRIMARY KEY (model, version, hash));
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, time_ns INTEGER, model TEXT,
                                   version TEXT, action TEXT, detail TEXT);
CREATE TABLE IF NOT EXISTS set_aside (id INTEGER PRIMARY KEY, received_ns INTEGER, signal TEXT, payload BLOB,
                                      reason TEXT, set_aside_ns INTEGER);
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE, created_ns INTEGER,
                                   payload BLOB, event_ns INTEGER);
"""
FORMAT = 1  # the store's format (SQLite's user_version): 0 pickled its blobs, 1 writes them with ``codec``
_MIGRATIONS = (  # columns added since a table was first made: (table, column, declaration)
    ("outbox", "event_ns", "INTEGER"),
)


class Store(JournalRows, ReferenceRows):
    """SQLite store; thread-safe (one connection, one lock). Implements ``interface.StateStore``."""

    def __init__(self, state_dir: str):
        os.makedirs(state_dir, mode=0o700, exist_ok=True)  # a directory made here is the analyzer's alone
        self.path = os.path.join(state_dir, "otelml.sqlite3")
        # The database holds the journal, references and outbox: readable by the analyzer's user only. SQLite gives
        # its -wal and -shm files the database file's permissions.
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        os.chmod(self.path, 0o600)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        for table, column, declaration in _MIGRATIONS:
            if column not in {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        self.seconds_in_store = 0.0  # time spent in SQLite, for the analyzer's own metrics
        if self._db.execute("PRAGMA user_version").fetchone()[0] < FORMAT:
            self._run(self._set_pickles_aside)

    def _set_pickles_aside(self, db) -> None:
        """In a store of an earlier otelml (format 0), whose blobs are pickles: drop the checkpoint and windows, and
        move the references to ``legacy_refs``, all unread."""
        if db.execute("PRAGMA user_version").fetchone()[0] >= FORMAT:
            return
        counts = [
            db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in ("checkpoint", "windows", "refs")
        ]
        db.execute("INSERT OR REPLACE INTO legacy_refs SELECT model, version, hash, status, created_ns, data FROM refs")
        for table in ("checkpoint", "windows", "refs"):
            db.execute(f"DELETE FROM {table}")
        db.execute(f"PRAGMA user_version = {FORMAT}")
        if any(counts):
            logger.warning(
                "this store was written by an earlier otelml, which pickled its state; pickles can run code, so they "
                "are not read: %d checkpoint and %d windows dropped (the journal since the checkpoint is replayed, "
                "detectors relearn their baselines), %d references set aside; to keep those references, if this file "
                "is trusted: otelml state migrate --trust-pickles --state-dir %s",
                *counts,
                os.path.dirname(self.path),
            )

    # --- checkpoints and windows ----------------------------------------------------------------------------------
    def checkpoint(self, state, journal_upto: int, windows: list[ClosedWindow], keep: int) -> None:
        """In one transaction: save closed windows, the state, and drop the journal the state now covers."""
        blob = codec.encode(state)

        def write(db):
            db.executemany(
                "INSERT OR REPLACE INTO windows (model, version, idx, data) VALUES (?, ?, ?, ?)",
                [(w.model, w.version, w.index, codec.encode(w)) for w in windows],
            )
            for model, version in {(w.model, w.version) for w in windows}:
                db.execute(
                    "DELETE FROM windows WHERE model = ? AND version = ? AND idx <= "
                    "(SELECT MAX(idx) FROM windows WHERE model = ? AND version = ?) - ?",
                    (model, version, model, version, keep),
                )
            db.execute(
                "INSERT OR REPLACE INTO checkpoint (id, journal_upto, created_ns, state) VALUES (1, ?, ?, ?)",
                (journal_upto, time.time_ns(), blob),
            )
            db.execute("DELETE FROM journal WHERE id <= ?", (journal_upto,))

        self._run(write)

    def load_checkpoint(self):
        """``(state, journal_upto)``; the state is None without a checkpoint, or with one that cannot be read."""
        with self._lock:
            row = self._db.execute("SELECT state, journal_upto FROM checkpoint WHERE id = 1").fetchone()
        if row is None:
            return None, 0
        return decoded(row[0], "the checkpoint (the journal after it is replayed on a fresh state)"), row[1]

    def windows(self, model: str, version: str, limit: int) -> list[ClosedWindow]:
        """The last ``limit`` closed windows of a model version, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT idx, data FROM windows WHERE model = ? AND version = ? ORDER BY idx DESC LIMIT ?",
                (model, version, limit),
            ).fetchall()
        windows = (decoded(data, f"window {idx} of {model} {version}") for idx, data in reversed(rows))
        return [w for w in windows if w is not None]

    # --- alert outbox ---------------------------------------------------------------------------------------------
    def outbox_add(self, records: list[tuple[str, int, bytes]]) -> int:
        """Queue ``(event id, event time, payload)`` records; ids already queued or delivered-and-remembered are
        ignored."""

        def write(db):
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO outbox (event_id, created_ns, payload, event_ns) VALUES (?, ?, ?, ?)",
                [(event_id, time.time_ns(), payload, event_ns) for event_id, event_ns, payload in records],
            )
            return db.total_changes - before

        return self._run(write) if records else 0

    def outbox_head(self, limit: int) -> list[tuple[int, bytes]]:
        """The waiting records with the oldest events, in the order of their events' times: ``(sequence,
        payload)``. Windows close in the order the data lets them (a quiet model's later than a busy one's), so
        the order of arrival is not the order of events; after an outage everything waiting goes out in time
        order."""
        with self._lock:
            return self._db.execute(
                "SELECT seq, payload FROM outbox WHERE payload IS NOT NULL "
                "ORDER BY COALESCE(event_ns, created_ns), seq LIMIT ?",
                (limit,),
            ).fetchall()

    def outbox_remove(self, delivered: list[int]) -> None:
        """Mark the records of these sequence numbers delivered: their payload goes, their event id stays (so a
        replay of the same event is still recognised) for a bounded number of records."""

        def write(db):
            db.executemany("UPDATE outbox SET payload = NULL WHERE seq = ?", [(seq,) for seq in delivered])
            db.execute("DELETE FROM outbox WHERE payload IS NULL AND seq <= ? - 100000", (max(delivered),))

        if delivered:
            self._run(write)

    def outbox_waiting(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox WHERE payload IS NOT NULL").fetchone()[0]

    def data_version(self) -> int:
        """Changes when another connection (the CLI) writes to the store."""
        with self._lock:
            return self._db.execute("PRAGMA data_version").fetchone()[0]

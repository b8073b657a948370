"""References per model version and content hash (``pinned`` or ``candidate``), the ``legacy_refs`` an earlier
otelml pickled (set aside unread), and ``events``, the audit trail of reference actions (stored, promoted, refused,
tampered)."""

from __future__ import annotations

import time

from ..references import Reference, content_hash
from . import codec
from .base import Rows, decoded, logger

PINNED = "pinned"
CANDIDATE = "candidate"


class ReferenceActionError(ValueError):
    """A reference action that is not allowed (the message says why)."""


class ReferenceRows(Rows):
    # --- references -----------------------------------------------------------------------------------------------
    def add_reference(self, ref: Reference, status: str) -> str:
        """Store a reference as ``pinned`` (only if the version has none) or ``candidate``; returns its hash.
        A refused attempt to replace a pinned reference is recorded as a ``refused`` event."""
        if status == PINNED and self._run(lambda db: self._pinned_row(db, ref.model, ref.version)) is not None:
            self._refuse(ref.model, ref.version, f"pinning {ref.hash} over the pinned reference")
            raise ReferenceActionError(
                f"{ref.model} {ref.version} already has a pinned reference; add this one as a candidate and "
                f"promote it with: otelml reference promote --model {ref.model} --version {ref.version} "
                f"--hash {ref.hash}"
            )

        def write(db):
            db.execute(
                "INSERT OR REPLACE INTO refs (model, version, hash, status, created_ns, data) VALUES (?, ?, ?, ?, ?, ?)",
                (ref.model, ref.version, ref.hash, status, ref.created_unix_nano, codec.encode(ref)),
            )
            self._event(db, ref.model, ref.version, f"stored {status}", f"{ref.hash} from {ref.source}")
            return ref.hash

        return self._run(write)

    def pin(self, model: str, version: str, ref_hash: str) -> None:
        """Pin a candidate when the version has no pinned reference yet."""
        pinned = self._run(lambda db: self._pinned_row(db, model, version))
        if pinned is not None:
            self._refuse(model, version, f"pinning {ref_hash} over the pinned reference {pinned[0]}")
            raise ReferenceActionError(
                f"{model} {version} already has pinned reference {pinned[0]}; replacing it is explicit: "
                f"otelml reference promote --model {model} --version {version} --hash {ref_hash}"
            )
        self.promote(model, version, ref_hash)

    def promote(self, model: str, version: str, ref_hash: str) -> str | None:
        """Make a candidate the pinned reference, explicitly; returns the hash it replaced (logged)."""

        def write(db):
            found = db.execute(
                "SELECT status FROM refs WHERE model = ? AND version = ? AND hash = ?", (model, version, ref_hash)
            ).fetchone()
            if found is None:
                raise ReferenceActionError(f"no reference {ref_hash} for {model} {version}")
            old = self._pinned_row(db, model, version)
            db.execute(
                "UPDATE refs SET status = ? WHERE model = ? AND version = ? AND status = ?",
                (CANDIDATE, model, version, PINNED),
            )
            db.execute(
                "UPDATE refs SET status = ? WHERE model = ? AND version = ? AND hash = ?",
                (PINNED, model, version, ref_hash),
            )
            replaced = old[0] if old else None
            self._event(db, model, version, "promoted", f"{ref_hash} replaces {replaced}")
            return replaced

        replaced = self._run(write)
        logger.warning("reference of %s %s promoted: %s replaces %s", model, version, ref_hash, replaced)
        return replaced

    def _refuse(self, model: str, version: str, detail: str) -> None:
        self._run(lambda db: self._event(db, model, version, "refused", detail))
        logger.warning("refused to replace the pinned reference of %s %s: %s", model, version, detail)

    @staticmethod
    def _pinned_row(db, model, version):
        return db.execute(
            "SELECT hash FROM refs WHERE model = ? AND version = ? AND status = ?", (model, version, PINNED)
        ).fetchone()

    @staticmethod
    def _event(db, model, version, action, detail):
        db.execute(
            "INSERT INTO events (time_ns, model, version, action, detail) VALUES (?, ?, ?, ?, ?)",
            (time.time_ns(), model, version, action, detail),
        )

    def references(self, model: str | None = None, version: str | None = None) -> list[tuple[str, Reference]]:
        """``(status, reference)`` pairs, optionally for one model (and version)."""
        query, args = "SELECT status, data, model, version, hash FROM refs", []
        if model is not None:
            query += " WHERE model = ?" + (" AND version = ?" if version is not None else "")
            args = [model] + ([version] if version is not None else [])
        with self._lock:
            rows = self._db.execute(query + " ORDER BY model, version, created_ns", args).fetchall()
        refs = [(status, decoded(data, f"reference {h} of {m} {v}")) for status, data, m, v, h in rows]
        return [(status, ref) for status, ref in refs if ref is not None]

    def pinned(self, model: str, version: str) -> Reference | None:
        """The pinned reference, if its data still hashes to the hash it was pinned under (the last ``stored
        pinned`` or ``promoted`` event). A reference whose data was changed in the database is not used, and a
        ``tampered`` event records it, once."""

        def read(db):
            row = db.execute(
                "SELECT hash, data FROM refs WHERE model = ? AND version = ? AND status = ?", (model, version, PINNED)
            ).fetchone()
            pin = db.execute(
                "SELECT detail FROM events WHERE model = ? AND version = ? AND action IN ('stored pinned', 'promoted') "
                "ORDER BY id DESC LIMIT 1",
                (model, version),
            ).fetchone()
            return row, pin

        row, pin = self._run(read)
        if row is None:
            return None
        pinned_as = pin[0].split()[0] if pin else row[0]
        try:
            ref = codec.decode(row[1])
            actual = content_hash(ref.histograms)
        except Exception as exc:  # a blob that does not decode into a reference
            ref, actual = None, f"unreadable data ({type(exc).__name__})"
        if actual == row[0] == pinned_as:
            return ref
        self._tampered(model, version, f"pinned reference {pinned_as} (stored as {row[0]}) now holds {actual}")
        return None

    def legacy_references(self) -> list[tuple]:
        """``(model, version, hash, status, pickle)`` of the references an earlier otelml pickled, set aside unread."""
        with self._lock:
            return self._db.execute(
                "SELECT model, version, hash, status, data FROM legacy_refs ORDER BY model, version, created_ns"
            ).fetchall()

    def restore_legacy_reference(self, ref: Reference, status: str, legacy_hash: str) -> str:
        """Store a reference the operator migrated from ``legacy_refs`` (a pinned one as a candidate if the version
        has been pinned since), and drop its legacy row; returns the status it got."""

        def write(db):
            pinned = status == PINNED and self._pinned_row(db, ref.model, ref.version) is None
            stored = PINNED if pinned else CANDIDATE
            db.execute(
                "INSERT OR REPLACE INTO refs (model, version, hash, status, created_ns, data) VALUES (?, ?, ?, ?, ?, ?)",
                (ref.model, ref.version, ref.hash, stored, ref.created_unix_nano, codec.encode(ref)),
            )
            db.execute(
                "DELETE FROM legacy_refs WHERE model = ? AND version = ? AND hash = ?",
                (ref.model, ref.version, legacy_hash),
            )
            self._event(db, ref.model, ref.version, f"stored {stored}", f"{ref.hash} from {ref.source} (migrated)")
            return stored

        return self._run(write)

    def pinned_versions(self) -> list[tuple[str, str]]:
        """``(model, version)`` of every pinned reference."""
        with self._lock:
            return self._db.execute("SELECT model, version FROM refs WHERE status = ?", (PINNED,)).fetchall()

    def _tampered(self, model: str, version: str, detail: str) -> None:
        def write(db):
            seen = db.execute(
                "SELECT 1 FROM events WHERE model = ? AND version = ? AND action = 'tampered' AND detail = ?",
                (model, version, detail),
            ).fetchone()
            if seen is None:
                self._event(db, model, version, "tampered", detail)
                logger.error("the pinned reference of %s %s failed its integrity check: %s", model, version, detail)

        self._run(write)

    def events(self, after: int = 0) -> list[tuple]:
        """``(id, time_ns, model, version, action, detail)`` of reference actions after event ``after``."""
        with self._lock:
            return self._db.execute(
                "SELECT id, time_ns, model, version, action, detail FROM events WHERE id > ? ORDER BY id", (after,)
            ).fetchall()

"""Durable state: the journal, checkpoints, closed windows, references, their events and the alert outbox."""

from .sqlite import CANDIDATE, PINNED, ReferenceActionError, Store

__all__ = ["CANDIDATE", "PINNED", "ReferenceActionError", "Store"]

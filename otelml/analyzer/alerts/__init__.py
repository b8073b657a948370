"""The alert path: incidents from findings, their records (OTLP log records, OCSF), the outbox and its delivery."""

from .book import REFERENCE_ACTIONS, AlertBook, AlertEvent, detector_label

__all__ = ["REFERENCE_ACTIONS", "AlertBook", "AlertEvent", "detector_label"]

"""Alert records: each alert event encoded as an OTLP log record and queued in the store's outbox, which ``outbox``
delivers; and the analyzer's log lines for alerts and alarms (logged whether or not there is an alert endpoint).
"""

from __future__ import annotations

import json

from opentelemetry.proto.logs.v1 import logs_pb2

from ... import semconv
from ...sdk.encode import any_value, key_values
from ..logs import logger  # the analyzer's logger, escaping control characters in every record
from . import ocsf
from .book import AlertEvent


def encode(event: AlertEvent, body_format: str = "text") -> bytes:
    """One alert event as a serialized OTLP ``LogRecord``; ``body_format`` "ocsf" puts the OCSF Detection
    Finding (JSON) in the body instead of the sentence."""
    body = json.dumps(ocsf.detection_finding(event)) if body_format == "ocsf" else event.body
    record = logs_pb2.LogRecord(
        time_unix_nano=event.time_unix_nano,
        observed_time_unix_nano=event.time_unix_nano,
        severity_number=event.severity_number,
        severity_text=event.severity_text,
        body=any_value(body),
        attributes=key_values(event.attributes),
        event_name=semconv.EVENT_ALERT,
    )
    if event.trace_id:
        record.trace_id = bytes.fromhex(event.trace_id)
    if event.span_id:
        record.span_id = bytes.fromhex(event.span_id)
    return record.SerializeToString()


class AlertQueue:
    """Alert events into the store's outbox (when there is an endpoint to deliver them to) and into the log."""

    def __init__(self, store, endpoint: str | None, body_format: str = "text"):
        self.store = store  # its outbox: ``outbox_add``
        self.endpoint = endpoint
        self.body_format = body_format
        self.queued = False  # records were queued since the server last woke its sender

    def send(self, events: list[AlertEvent]) -> None:
        if events and self.endpoint:
            self.store.outbox_add([(e.event_id, e.time_unix_nano, encode(e, self.body_format)) for e in events])
            self.queued = True
        for event in events:
            logger.warning("alert %s: %s", event.state, event.body)


def log_alarms(findings) -> None:
    """One warning per alarming finding."""
    for finding in findings:
        if finding.alarm:
            logger.warning(
                "%s alarm: model %s version %s%s, %s %.3g >= %.3g, effect %s",
                finding.kind,
                finding.model,
                finding.version,
                f" feature {finding.feature}" if finding.feature else "",
                finding.statistic,
                finding.value,
                finding.threshold,
                finding.effect_size,
            )

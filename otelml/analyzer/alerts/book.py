"""Alerts: incidents made of findings, with a life cycle, turned into OTLP log records.

One alert per incident: the alarming findings of one detector on one model version (a drift touching 20 features
is one alert with 20 findings). It fires once; while alarms continue it sends an update at most every
``update_windows`` windows, and at once when its severity rises (a warning that becomes critical pages now); it
resolves after ``resolve_windows`` windows without an alarm. Every record has a stable event id (alert id, state,
sequence), so replays after a restart and retries never make a second alert downstream. ``min_severity`` drops
findings below it.

Pure: findings in, record events out; delivery (the durable outbox) is ``outbox``'s job.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from ... import semconv
from ..detectors import Finding
from ..detectors.base import ADVERSARIAL

REFERENCE_ACTIONS = {  # store events that raise a reference-guard alert, and how the alert puts them
    "promoted": "the pinned reference was replaced: ",
    "refused": "an attempt to overwrite the pinned reference was refused: ",
    "tampered": "the pinned reference's data changed in the store and is no longer used: ",
}

SEVERITIES = {"info": 0, "warning": 1, "critical": 2}
# OpenTelemetry severity numbers and texts (logs data model): INFO 9, WARN 13, ERROR 17
_OTEL_SEVERITY = {"info": (9, "INFO"), "warning": (13, "WARN"), "critical": (17, "ERROR")}
_NAMESPACE = uuid.UUID("5b2f9a54-2c5e-4c5f-9d0e-4f6c1f3b8a11")


@dataclass
class Alert:
    id: str
    key: tuple  # (model, version, kind, detector, signal)
    first_window_start: int
    last_window_end: int
    severity: str
    findings: list = field(default_factory=list)
    sequence: int = 0  # records sent so far
    quiet: int = 0  # windows since the last alarm
    since_update: int = 0


@dataclass(frozen=True)
class AlertEvent:
    """One log record to send."""

    event_id: str
    alert_id: str
    state: str
    severity_number: int
    severity_text: str
    time_unix_nano: int
    body: str
    attributes: dict
    trace_id: str
    span_id: str


class AlertBook:
    def __init__(self, resolve_windows: int = 10, update_windows: int = 10, min_severity: str = "info"):
        if min_severity not in SEVERITIES:
            raise ValueError(f"min_severity must be one of {sorted(SEVERITIES)}")
        self.resolve_windows = resolve_windows
        self.update_windows = update_windows
        self.min_severity = min_severity
        self.open: dict = {}  # key -> Alert
        self.reference_events_seen = 0  # the store's reference actions already turned into alerts

    def reference_action(
        self, event_id: int, time_ns: int, model: str, version: str, action: str, detail: str
    ) -> AlertEvent:
        """An integrity alert for a change to a pinned reference: ``promoted`` (an explicit replacement, warning),
        ``refused`` (an attempt to overwrite it, critical) or ``tampered`` (its data changed in the store, critical;
        it is no longer used). One record, no life cycle."""
        self.reference_events_seen = max(self.reference_events_seen, event_id)
        severity = "warning" if action == "promoted" else "critical"
        number, text = _OTEL_SEVERITY[severity]
        alert_id = str(uuid.uuid5(_NAMESPACE, f"reference event {event_id} {model} {version}"))
        body = (
            f"integrity alert (reference guard): model {model} version {version}: " + REFERENCE_ACTIONS[action] + detail
        )
        attributes = {
            semconv.ALERT_ID: alert_id,
            semconv.ALERT_EVENT_ID: f"{alert_id}:1",
            semconv.ALERT_KIND: "integrity",
            semconv.ALERT_STATE: semconv.ALERT_STATE_FIRING,
            semconv.ALERT_DETECTOR: "reference guard",
            semconv.ALERT_SEVERITY: severity,
            semconv.MODEL_NAME: model,
            semconv.MODEL_VERSION: version,
            semconv.ALERT_STATISTIC: f"reference {action}",
            semconv.ALERT_VALUE: 1.0,
            semconv.ALERT_THRESHOLD: 1.0,
            semconv.ALERT_FINDINGS: 1,
            semconv.ALERT_WINDOW_START: time_ns,
            semconv.ALERT_WINDOW_END: time_ns,
        }
        return AlertEvent(
            f"{alert_id}:1", alert_id, semconv.ALERT_STATE_FIRING, number, text, time_ns, body, attributes, "", ""
        )

    def on_window(self, model: str, version: str, window_end: int, findings: list) -> list[AlertEvent]:
        """Events for one closed window of one model version, given its findings (alarming or not)."""
        events = []
        alarming: dict = {}
        for f in findings:
            if f.alarm and SEVERITIES.get(f.severity, 0) >= SEVERITIES[self.min_severity]:
                alarming.setdefault(_key(f), []).append(f)
        for key, group in alarming.items():
            alert = self.open.get(key)
            if alert is None:
                alert = self.open[key] = Alert(
                    id=str(uuid.uuid5(_NAMESPACE, repr((key, group[0].window_start_unix_nano)))),
                    key=key,
                    first_window_start=group[0].window_start_unix_nano,
                    last_window_end=window_end,
                    severity=_worst(group),
                )
                alert.findings.extend(group)
                events.append(self._event(alert, semconv.ALERT_STATE_FIRING, group, window_end))
                continue
            alert.findings.extend(group)
            alert.findings = alert.findings[-200:]
            alert.last_window_end, alert.quiet = window_end, 0
            escalated = SEVERITIES[_worst(group)] > SEVERITIES[alert.severity]
            alert.severity = max(alert.severity, _worst(group), key=SEVERITIES.get)
            alert.since_update += 1
            if escalated or alert.since_update >= self.update_windows:
                alert.since_update = 0
                events.append(self._event(alert, semconv.ALERT_STATE_FIRING, group, window_end))
        for key, alert in list(self.open.items()):
            if key[:2] != (model, version) or key in alarming:
                continue
            alert.quiet += 1
            if alert.quiet >= self.resolve_windows:
                del self.open[key]
                events.append(self._event(alert, semconv.ALERT_STATE_RESOLVED, alert.findings[-1:], window_end))
        return events

    def _event(self, alert: Alert, state: str, group: list, window_end: int) -> AlertEvent:
        alert.sequence += 1
        lead = _lead(group)
        features = sorted({f.feature for f in alert.findings if f.feature})
        severity = "info" if state == semconv.ALERT_STATE_RESOLVED else alert.severity
        number, text = _OTEL_SEVERITY[severity]
        model, version, kind, detector, signal = alert.key
        label = detector if kind == ADVERSARIAL else detector_label(detector, signal)
        trace_id, span_id = next((pair for f in group for pair in f.trace_ids), ("", ""))
        attributes = {
            semconv.ALERT_ID: alert.id,
            semconv.ALERT_EVENT_ID: f"{alert.id}:{alert.sequence}",
            semconv.ALERT_KIND: kind,
            semconv.ALERT_STATE: state,
            semconv.ALERT_DETECTOR: label,
            semconv.ALERT_SEVERITY: severity,
            semconv.MODEL_NAME: model,
            semconv.MODEL_VERSION: version,
            semconv.ALERT_STATISTIC: lead.statistic,
            semconv.ALERT_VALUE: float(lead.value),
            semconv.ALERT_THRESHOLD: float(lead.threshold),
            semconv.ALERT_FINDINGS: len(alert.findings),
            semconv.ALERT_WINDOW_START: alert.first_window_start,
            semconv.ALERT_WINDOW_END: window_end,
        }
        if features:
            attributes[semconv.ALERT_FEATURES] = features
            attributes[semconv.FEATURE_NAME] = lead.feature or features[0]  # one feature to route or filter on
        if kind == ADVERSARIAL:
            attributes[semconv.CALLER_ID] = signal
            attributes[semconv.ALERT_QUERIES] = int(lead.details.get("queries", 0))
            attributes[semconv.ALERT_FIRST_TRACE_ID] = lead.details.get("first trace id", "")
        if lead.effect is not None and lead.effect_size is not None:
            attributes[semconv.ALERT_EFFECT] = lead.effect
            attributes[semconv.ALERT_EFFECT_SIZE] = float(lead.effect_size)
        return AlertEvent(
            event_id=attributes[semconv.ALERT_EVENT_ID],
            alert_id=alert.id,
            state=state,
            severity_number=number,
            severity_text=text,
            time_unix_nano=window_end,
            body=_body(state, kind, label, model, version, features, lead),
            attributes=attributes,
            trace_id=trace_id,
            span_id=span_id,
        )


def _key(f: Finding) -> tuple:
    signal = f.details.get("metric") or f.details.get("source") or f.details.get("caller") or ""
    if signal == semconv.METRIC_FEATURE_VALUE:
        signal = ""
    return (f.model, f.version, f.kind, f.detector, signal)


def _worst(findings) -> str:
    return max((f.severity for f in findings), key=lambda s: SEVERITIES.get(s, 0))


def _lead(findings) -> Finding:
    """The model-level finding if there is one, else the strongest."""
    model_level = [f for f in findings if f.feature is None]
    return (model_level or sorted(findings, key=lambda f: -f.value))[0]


def detector_label(detector: str, signal: str) -> str:
    """What people call the detector: input drift, output drift, label mix, ... (else its name and signal)."""
    labels = {
        ("drift", ""): "input drift",
        ("drift", semconv.METRIC_CONFIDENCE): "output drift",
        ("drift", semconv.METRIC_PREDICTION_VALUE): "prediction drift",
        ("category drift", "labels"): "label mix",
        ("category drift", "features"): "category drift",
    }
    return labels.get((detector, signal)) or (f"{detector} ({signal})" if signal else detector)


def _body(state, kind, label, model, version, features, lead: Finding) -> str:
    where = f"model {model} version {version}" + (f", {', '.join(features[:10])}" if features else "")
    if kind == ADVERSARIAL:
        d = lead.details
        where += (
            f", caller {d.get('caller')}: {d.get('queries')} queries ({d.get('repeats')} repeats), "
            f"first trace {d.get('first trace id')}, latest trace {d.get('latest trace id')}"
        )
    effect = f", {lead.effect} {lead.effect_size:.3g}" if lead.effect and lead.effect_size is not None else ""
    if state == semconv.ALERT_STATE_RESOLVED:
        return f"{kind} alert resolved ({label}): {where}"
    return f"{kind} alert ({label}): {where}: {lead.statistic} {lead.value:.3g} >= {lead.threshold:.3g}{effect}"


def restored(book: AlertBook | None, resolve_windows: int, update_windows: int, min_severity: str) -> AlertBook:
    """The alert book of a checkpoint (``None`` for none) under these settings: itself if they are its own, else a
    fresh book that keeps its open alerts."""
    settings = (resolve_windows, update_windows, min_severity)
    if book is not None and (book.resolve_windows, book.update_windows, book.min_severity) == settings:
        return book
    fresh = AlertBook(*settings)
    if book is not None:
        fresh.open = book.open
    return fresh

"""Alerts as OCSF Detection Findings (class_uid 2004), for SIEMs that speak the Open Cybersecurity Schema Framework.

With ``alerts_format = "ocsf"`` the alert log record's body is this JSON object instead of the sentence; the
record's attributes stay the same. Mapping:

===============================  ==========================================================================
OCSF field                       from the alert
===============================  ==========================================================================
class_uid / category_uid         2004 Detection Finding / 2 Findings
activity_id, type_uid            1 Create (first firing), 2 Update (later firing records), 3 Close (resolved);
                                 type_uid = 200400 + activity_id
time, start_time, end_time       record time; incident's first window start; this window's end (ms)
severity_id                      info 1 Informational, warning 3 Medium, critical 5 Critical
status_id                        1 New, 2 In Progress, 4 Resolved
is_alert                         true unless resolved
message                          the readable sentence
finding_info                     uid = alert id, title, desc, types = [kind], first/last_seen_time,
                                 analytic {uid, name = detector, type_id 3 Statistical}
anomaly_analyses                 analysis_target = the model version; anomalies: observed_attribute =
                                 each feature (or the statistic), observation_type "Distribution Analysis"
                                 (drift) or "Deviation Analysis", observations = value and effect size;
                                 baselines: the threshold and the reference it was measured against
resources                        the model version (type "Machine Learning Model")
metadata                         product otelml and its version, OCSF version, uid = event id
unmapped                         every otelml.alert.* attribute
===============================  ==========================================================================
"""

from __future__ import annotations

from ... import semconv
from ..._version import __version__
from .book import AlertEvent

OCSF_VERSION = "1.5.0"
_SEVERITY = {"info": (1, "Informational"), "warning": (3, "Medium"), "critical": (5, "Critical")}
_ACTIVITY = {1: "Create", 2: "Update", 3: "Close"}
_STATUS = {1: "New", 2: "In Progress", 4: "Resolved"}


def detection_finding(event: AlertEvent) -> dict:
    a = event.attributes
    resolved = event.state == semconv.ALERT_STATE_RESOLVED
    sequence = int(a[semconv.ALERT_EVENT_ID].rsplit(":", 1)[1])
    activity = 3 if resolved else (1 if sequence == 1 else 2)
    status = 4 if resolved else (1 if sequence == 1 else 2)
    severity_id, severity = _SEVERITY[a[semconv.ALERT_SEVERITY]]
    model, version = a[semconv.MODEL_NAME], a[semconv.MODEL_VERSION]
    start_ms, end_ms = a[semconv.ALERT_WINDOW_START] // 10**6, a[semconv.ALERT_WINDOW_END] // 10**6
    kind = a[semconv.ALERT_KIND]
    observed = a.get(semconv.ALERT_FEATURES) or [a[semconv.ALERT_STATISTIC]]
    observation = {"value": f"{a[semconv.ALERT_STATISTIC]} = {a[semconv.ALERT_VALUE]:.6g}", "count": 1}
    if semconv.ALERT_EFFECT in a:
        observation["value"] += f"; {a[semconv.ALERT_EFFECT]} = {a[semconv.ALERT_EFFECT_SIZE]:.6g}"
    observation_type = "Distribution Analysis" if kind == "drift" else "Deviation Analysis"
    target = {"name": f"{model} {version}", "type": "Machine Learning Model"}
    return {
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": activity,
        "activity_name": _ACTIVITY[activity],
        "type_uid": 200400 + activity,
        "type_name": f"Detection Finding: {_ACTIVITY[activity]}",
        "time": event.time_unix_nano // 10**6,
        "start_time": start_ms,
        "end_time": end_ms,
        "severity_id": severity_id,
        "severity": severity,
        "status_id": status,
        "status": _STATUS[status],
        "is_alert": not resolved,
        "message": event.body,
        "finding_info": {
            "uid": a[semconv.ALERT_ID],
            "title": f"{kind} on {model} {version}",
            "desc": event.body,
            "types": [kind],
            "first_seen_time": start_ms,
            "last_seen_time": end_ms,
            "analytic": {
                "uid": a[semconv.ALERT_DETECTOR],
                "name": a[semconv.ALERT_DETECTOR],
                "type_id": 3,
                "type": "Statistical",
            },
        },
        "anomaly_analyses": [
            {
                "analysis_target": target,
                "anomalies": [
                    {"observed_attribute": name, "observation_type": observation_type, "observations": [observation]}
                    for name in observed
                ],
                "baselines": [
                    {
                        "observed_attribute": name,
                        "observation_type": observation_type,
                        "observations": [
                            {
                                "value": f"threshold {a[semconv.ALERT_THRESHOLD]:.6g} against the "
                                f"reference of {model} {version}"
                            }
                        ],
                    }
                    for name in observed
                ],
            }
        ],
        "resources": [{"name": model, "type": "Machine Learning Model", "version": version}],
        "metadata": {
            "version": OCSF_VERSION,
            "uid": a[semconv.ALERT_EVENT_ID],
            "product": {"name": "otelml", "vendor_name": "otelml", "version": __version__},
        },
        "unmapped": {k: v for k, v in a.items() if k.startswith("otelml.alert.")},
    }

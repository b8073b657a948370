"""The read models behind the API, the status page and the analyzer's own metrics: functions over the service's
parts (its state, pipeline, alert book and store), each taking the service's lock only while it reads the parts
that ingest changes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..alerts import detector_label
from ..detection import as_dict
from ..store import CANDIDATE, PINNED
from . import status_page

if TYPE_CHECKING:
    from ..service import Analyzer
    from ..state import State


def models(analyzer: Analyzer) -> list[dict]:
    """What ``GET /api/models`` returns."""
    with analyzer.lock:
        summaries = [_summary(analyzer.state, mv) for mv in analyzer.state.models.values()]
    for summary in summaries:
        summary["reference"] = _reference_status(analyzer, summary["model"], summary["version"])
        with analyzer.lock:
            summary["detectors"] = analyzer.pipeline.detection.summary(summary["model"], summary["version"])
    return sorted(summaries, key=lambda s: (s["model"], s["version"]))


def page_data(analyzer: Analyzer) -> dict:
    """A snapshot for the status page (``status_page.render``)."""
    summaries = models(analyzer)
    with analyzer.lock:
        for summary in summaries:
            mv = analyzer.state.models[(summary["model"], summary["version"])]
            reference = analyzer.pipeline.pinned(mv.model, mv.version)
            summary.update(status_page.model_data(mv, reference, summary["detectors"]))
        alerts = [
            {
                "model": a.key[0],
                "version": a.key[1],
                "kind": a.key[2],
                "detector": detector_label(a.key[3], a.key[4]),
                "severity": a.severity,
                "features": sorted({f.feature for f in a.findings if f.feature}),
                "findings": len(a.findings),
            }
            for a in analyzer.alerts.open.values()
        ]
        health = dict(analyzer.state.counts)
    return {"models": summaries, "alerts": alerts, "health": health}


def alarms(analyzer: Analyzer) -> list[dict]:
    """Recent alarms, newest last (what ``GET /api/alarms`` returns)."""
    with analyzer.lock:
        return [as_dict(f) for f in analyzer.pipeline.detection.alarms]


def _reference_status(analyzer: Analyzer, model: str, version: str) -> dict:
    refs = analyzer.store.references(model, version)
    pinned = next((ref for status, ref in refs if status == PINNED), None)
    if pinned is not None:
        return {"status": PINNED, "hash": pinned.hash, "source": pinned.source, "rows": pinned.rows}
    with analyzer.lock:
        progress = analyzer.pipeline.warmup.progress(model, version)
    return {
        "status": "warming up",
        "observations": progress,
        "needed": analyzer.config.warmup,
        "candidates": [ref.hash for status, ref in refs if status == CANDIDATE],
    }


def snapshot(analyzer: Analyzer) -> dict:
    """The counts that ``/api/health`` reads without the ingest lock; the service takes them under it."""
    return {
        "models": len(analyzer.state.models),
        "windows_closed": sum(mv.windows_closed for mv in analyzer.state.models.values()),
        "cumulative_streams": len(analyzer.state.deltas),
        "points": dict(analyzer.state.counts),
        "detector_failures": analyzer.pipeline.detection.failed,
        "callers": analyzer.pipeline.attacks.summary(),
        "journal_position": analyzer.journal_position,
        "journal_set_aside": analyzer.set_aside_rows,
    }


def health(analyzer: Analyzer) -> dict:
    """What ``GET /api/health`` returns: counts as of the last request or tick, read without the ingest lock, so
    a long checkpoint or window never delays it."""
    snapshot = analyzer.health_snapshot
    return {
        "ready": analyzer.ready,
        "models": snapshot["models"],
        "windows_closed": snapshot["windows_closed"],
        "cumulative_streams": snapshot["cumulative_streams"],
        "points": snapshot["points"],
        "overloaded": analyzer.overloaded,
        "detector_failures": snapshot["detector_failures"],
        "window_failures": analyzer.window_failures,
        "journal_set_aside": snapshot["journal_set_aside"],
        "store_seconds": round(analyzer.store.seconds_in_store, 6),
        "journal_position": snapshot["journal_position"],
        "callers": snapshot["callers"],
    }


def _summary(state: State, mv) -> dict:
    """One model version in ``GET /api/models``, before its reference and detectors are added."""
    current = max(mv.open) if mv.open else None
    return {
        "model": mv.model,
        "version": mv.version,
        "task": mv.task,
        "features": sorted(mv.features),
        "rows": mv.rows,
        "calls": mv.calls,
        "points": mv.points,
        "spans": mv.spans,
        "first_seen_unix_nano": mv.first_seen_ns,
        "last_event_unix_nano": mv.max_event_ns,
        "windows_closed": mv.windows_closed,
        "partial_windows": mv.partial_windows,
        "sources": len(mv.sources),
        "open_windows": sorted(mv.open),
        "current_window": None
        if current is None
        else {
            "index": current,
            "start_unix_nano": current * state.window_ns,
            "end_unix_nano": (current + 1) * state.window_ns,
            "points": mv.open[current].points,
        },
        "last_closed_window": mv.history[-1].summary() if mv.history else None,
    }

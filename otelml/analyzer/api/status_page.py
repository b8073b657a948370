"""The status page people open on the analyzer's ``--http`` port: server-rendered HTML with inline SVG plots, no
scripts and no external assets.

It shows every model version (traffic, windows, reference, the latest statistic of each detector against its
threshold), the open alerts, and per model version: the current distribution of each feature against its reference
(the most drifted first), the confidence histogram, and latency percentiles over the last windows.
"""

from __future__ import annotations

import html
import math

import numpy as np

from ... import histogram, semconv

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;background:#fff}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem}h3{font-size:1rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}
th{background:#f3f3f3}.alarm{color:#b00020;font-weight:bold}.ok{color:#2e7d32}.muted{color:#777}
.plots{display:flex;flex-wrap:wrap;gap:1rem}figure{margin:0}figcaption{font-size:.85rem;text-align:center}
svg{background:#fafafa;border:1px solid #ddd}
"""
_MAX_FEATURE_PLOTS = 12


def _e(value) -> str:
    return html.escape(str(value))


def _density(h: histogram.ExpHistogram, lo: float, hi: float, bins: int = 60):
    """The histogram's mass on ``bins`` equal-width bins between ``lo`` and ``hi`` (bucket mass spread uniformly)."""
    edges = np.linspace(lo, hi, bins + 1)
    lower, upper, counts = h.buckets()
    lower, upper = np.clip(lower, h.min, h.max), np.clip(upper, h.min, h.max)
    mass = np.zeros(bins)
    for a, b, c in zip(lower, upper, counts):  # per bucket, at most a few hundred
        if b <= a:
            mass[min(max(np.searchsorted(edges, a) - 1, 0), bins - 1)] += c
            continue
        overlap = np.clip(np.minimum(edges[1:], b) - np.maximum(edges[:-1], a), 0, None)
        mass += c * overlap / (b - a)
    return mass / max(mass.sum(), 1)


def distribution_svg(live, reference, width=260, height=110) -> str:
    """Live (blue) against reference (grey) densities on a shared range, as two step lines."""
    parts = [h for h in (live, reference) if h is not None and h.count]
    if not parts:
        return ""
    lo, hi = min(h.min for h in parts), max(h.max for h in parts)
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        lo, hi = (lo - 0.5, lo + 0.5) if math.isfinite(lo) else (0.0, 1.0)
    series = [(reference, "#9e9e9e"), (live, "#1565c0")]
    peak = max(float(_density(h, lo, hi).max()) for h, _ in series if h is not None and h.count) or 1.0
    lines = []
    for h, colour in series:
        if h is None or not h.count:
            continue
        mass = _density(h, lo, hi)
        xs = np.linspace(0, width, mass.size + 1)
        points = []
        for i, m in enumerate(mass):
            y = height - 4 - (height - 8) * m / peak
            points += [f"{xs[i]:.1f},{y:.1f}", f"{xs[i + 1]:.1f},{y:.1f}"]
        lines.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{" ".join(points)}"/>')
    axis = f'<text x="2" y="{height - 2}" font-size="9">{lo:.3g}</text>'
    axis += f'<text x="{width - 2}" y="{height - 2}" font-size="9" text-anchor="end">{hi:.3g}</text>'
    return f'<svg width="{width}" height="{height}" role="img">{"".join(lines)}{axis}</svg>'


def lines_svg(series: dict, width=520, height=140) -> str:
    """Lines over window positions, one per series name, with a legend (for latency percentiles)."""
    values = [v for ys in series.values() for v in ys if v is not None and math.isfinite(v)]
    if not values:
        return ""
    top = max(values) or 1.0
    colours = ["#2e7d32", "#f9a825", "#b00020", "#1565c0"]
    out = []
    for (name, ys), colour in zip(series.items(), colours):
        n = max(len(ys) - 1, 1)
        points = " ".join(
            f"{width * i / n:.1f},{height - 14 - (height - 24) * y / top:.1f}"
            for i, y in enumerate(ys)
            if y is not None and math.isfinite(y)
        )
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>')
        out.append(
            f'<text x="{6 + 70 * len(out) // 2}" y="{height - 2}" font-size="10" fill="{colour}">{_e(name)}</text>'
        )
    out.append(f'<text x="{width - 2}" y="10" font-size="9" text-anchor="end">{top:.3g}</text>')
    return f'<svg width="{width}" height="{height}" role="img">{"".join(out)}</svg>'


def _detector_cells(detectors: dict) -> str:
    cells = []
    for label, f in sorted(detectors.items()):
        value, threshold = f.get("value"), f.get("threshold")
        state = "alarm" if f.get("alarm") else "ok"
        shown = f"{value:.3g} / {threshold:.3g}" if isinstance(value, float) and isinstance(threshold, float) else ""
        cells.append(f'<span class="{state}">{_e(label)}: {_e(shown)}</span>')
    return "<br>".join(cells) or '<span class="muted">no findings yet</span>'


def render(data: dict) -> str:
    """The page for a snapshot from ``Analyzer.page_data()``."""
    rows = []
    for m in data["models"]:
        ref = m["reference"]
        ref_text = (
            f"pinned {ref['hash'][:12]}"
            if ref["status"] == "pinned"
            else f"warming up {ref.get('observations', 0)}/{ref.get('needed', '?')}"
        )
        rows.append(
            f'<tr><td><a href="#{_e(m["model"])}-{_e(m["version"])}">{_e(m["model"])}</a></td><td>{_e(m["version"])}'
            f"</td><td>{m['calls']}</td><td>{m['rows']}</td><td>{m['windows_closed']}</td><td>{_e(ref_text)}</td>"
            f"<td>{_detector_cells(m['detectors'])}</td></tr>"
        )
    alerts = [
        f'<tr><td class="{"alarm" if a["severity"] == "critical" else ""}">{_e(a["severity"])}</td>'
        f"<td>{_e(a['kind'])}</td><td>{_e(a['model'])} {_e(a['version'])}</td><td>{_e(a['detector'])}</td>"
        f"<td>{_e(', '.join(a['features'][:10]))}</td><td>{a['findings']}</td></tr>"
        for a in data["alerts"]
    ]
    sections = [_model_section(m) for m in data["models"]]
    alert_table = (
        "<table><tr><th>severity</th><th>kind</th><th>model</th><th>detector</th><th>features</th><th>findings</th>"
        "</tr>" + "".join(alerts) + "</table>"
        if alerts
        else '<p class="ok">none</p>'
    )
    health = data["health"]
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>otelml analyzer</title>'
        f"<style>{_STYLE}</style></head><body><h1>otelml analyzer</h1>"
        f'<p class="muted">{len(data["models"])} model versions; points accepted {health.get("accepted", 0)}, '
        f"rejected {health.get('rejected', 0)}</p>"
        f"<h2>Models</h2><table><tr><th>model</th><th>version</th><th>calls</th><th>rows</th><th>windows</th>"
        f"<th>reference</th><th>detectors (statistic / threshold)</th></tr>{''.join(rows)}</table>"
        f"<h2>Open alerts</h2>{alert_table}{''.join(sections)}</body></html>"
    )


def _model_section(m: dict) -> str:
    figures = []
    for name, live, reference, score in m["features"][:_MAX_FEATURE_PLOTS]:
        caption = _e(name) + (f" (statistic {score:.3g})" if score is not None else "")
        figures.append(f"<figure>{distribution_svg(live, reference)}<figcaption>{caption}</figcaption></figure>")
    confidence = m["confidence"]
    conf_figure = (
        f"<figure>{distribution_svg(confidence[0], confidence[1])}<figcaption>confidence</figcaption></figure>"
        if confidence[0] is not None
        else ""
    )
    latency = lines_svg(m["latency"]) if m["latency"] else ""
    return (
        f'<h2 id="{_e(m["model"])}-{_e(m["version"])}">{_e(m["model"])} {_e(m["version"])}</h2>'
        f"<h3>Features: last window (blue) against the reference (grey)</h3>"
        f'<div class="plots">{"".join(figures) or "<p class=muted>no reference yet</p>"}{conf_figure}</div>'
        f"<h3>Latency percentiles over the last windows (s)</h3>{latency or '<p class=muted>no calls yet</p>'}"
    )


def model_data(mv, reference, detectors: dict, history_limit: int = 60) -> dict:
    """What the page shows of one model version (``mv``: the state's ModelVersion)."""
    history = list(mv.history)[-history_limit:]
    last = next((w for w in reversed(history) if w.points), None)
    ref_features = reference.features() if reference is not None else {}
    drift = detectors.get("input drift")
    features = []
    for name in sorted(mv.features):
        live = last.histogram(semconv.METRIC_FEATURE_VALUE, **{semconv.FEATURE_NAME: name}) if last else None
        features.append((name, live, ref_features.get(name), None))
    if drift is not None and drift.get("details", {}).get("features"):
        named = drift["details"]["features"]
        features.sort(key=lambda f: (f[0] not in named, f[0]))
    confidence = (
        last.histogram(semconv.METRIC_CONFIDENCE) if last else None,
        reference.histograms.get((semconv.METRIC_CONFIDENCE, ())) if reference is not None else None,
    )
    latency = {f"p{q}": [] for q in (50, 95, 99)}
    for w in history:
        h = w.histogram(semconv.METRIC_DURATION)
        for q in (50, 95, 99):
            latency[f"p{q}"].append(histogram.quantile(h, q / 100) if h is not None and h.count else None)
    return {
        "features": features,
        "confidence": confidence,
        "latency": latency if any(v is not None for v in latency["p50"]) else {},
    }

"""False alarms on no-drift streams and detection delays after a change, for any detectors with the interface of
``detectors`` (``make(reference_rows)``, ``update(rows, calls) -> row or None``).

    >>> from realistic import detectors, measure, streams
    >>> stream = streams.by_name("phishing, ref 500")
    >>> measure.null_rate(detectors.otelml(), stream, windows=2_000, seed=0)  # false alarms per 10,000 windows
"""

from __future__ import annotations

from .populations import Change
from .streams import CHANGED, LIVE, Stream

PRE = 10  # no-drift windows before a change
CHANGES = (
    Change("+0.5 sd, 1 feature", "mean", 0.5, 1, "any"),
    Change("+0.5 sd, 3 features", "mean", 0.5, 3, "any"),
    Change("+0.1 sd, 3 zero-inflated", "mean", 0.1, 3, "zero-inflated", horizon=3),
    Change("sd x1.5, 1 feature", "sd", 1.5, 1, "spread"),
)


def null_counts(makers: dict, stream: Stream, windows: int, seed: int) -> dict:
    """Alarms of each detector on ``windows`` no-drift windows of ``stream`` against its reference ``seed`` (the
    same rows for every detector), and the rows seen."""
    reference = stream.reference(seed)
    detectors = {name: make(reference) for name, make in makers.items()}
    counts = dict.fromkeys(makers, 0)
    rows_seen = 0
    for rows, calls in stream.windows(seed, windows):
        rows_seen += len(rows)
        for name, detector in detectors.items():
            counts[name] += detector.update(rows, calls) is not None
    return {"alarms": counts, "windows": windows, "rows": rows_seen}


def null_rate(make_detector, stream: Stream, windows: int, seed: int) -> float:
    """False alarms per 10,000 windows of one detector on one no-drift stream and reference."""
    return null_counts({"detector": make_detector}, stream, windows, seed)["alarms"]["detector"] / windows * 1e4


def delays(makers: dict, stream: Stream, change: Change, seed: int, horizon: int) -> dict | None:
    """Rows from the change to each detector's first alarm after it (None: none within ``horizon`` windows), and
    its alarms in the PRE windows before; None where ``stream`` has no feature the change can be made on.

    Each seed has its own reference; the detectors see PRE no-drift windows, then windows of the changed
    population, the same rows for all of them."""
    changed, chosen = stream.changed(change, seed)
    if changed is None:
        return None
    key = CHANGES.index(change) + 1 if change in CHANGES else 99
    reference = stream.reference(seed + 1_000_000)
    detectors = {name: make(reference) for name, make in makers.items()}
    before = dict.fromkeys(makers, 0)
    for rows, calls in stream.windows(seed, PRE, role=LIVE, a=key):
        for name, detector in detectors.items():
            before[name] += detector.update(rows, calls) is not None
    found, waiting, rows_since = {}, dict(detectors), 0
    for rows, calls in stream.windows(seed, horizon, changed, role=CHANGED, a=key):
        for name, detector in list(waiting.items()):
            at = detector.update(rows, calls)
            if at is not None:
                found[name] = rows_since + at
                del waiting[name]
        rows_since += len(rows)
        if not waiting:
            break
    return {"delay": {name: found.get(name) for name in makers}, "before": before, "features": chosen}


def delay(make_detector, stream: Stream, change: Change, seed: int, horizon: int) -> int | None:
    """One detector's delay in rows on one seed (None: not within the horizon, or no such change on this stream)."""
    result = delays({"detector": make_detector}, stream, change, seed, horizon)
    return None if result is None else result["delay"]["detector"]

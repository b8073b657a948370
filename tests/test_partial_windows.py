"""Late and partial windows do not read as an outage, a surge, a slowdown or a swapped model.

Deterministic: points are built by hand with the timestamps a late export would carry and fed to the analyzer's
state and detectors; no clocks, no processes (tests/test_e2e.py runs the same through real processes).
"""

import dataclasses

import numpy as np

from otelml import histogram, semconv
from otelml.analyzer import Reference, State, StateConfig
from otelml.analyzer.detection import Detection
from otelml.analyzer.detectors import (
    AvailabilityDetector,
    LatencyDetector,
    SequentialConfig,
    SlowCallsDetector,
    ThroughputDetector,
)
from otelml.analyzer.detectors.base import Finding
from otelml.analyzer.detectors.synthetic import window as synthetic_window
from otelml.analyzer.ingest.points import Decoded, Point, StreamKey
from otelml.sdk.export import next_export_delay

S = 1_000_000_000
W = 60 * S
T0 = 28_333_320 * W  # a window boundary
FIRST = T0 // W
CALLS = 100  # per source and window


def key(metric, instance, **extra):
    attributes = {semconv.MODEL_NAME: "m", semconv.MODEL_VERSION: "1", **extra}
    return StreamKey((("service.instance.id", instance),), "otelml", metric, tuple(sorted(attributes.items())))


def export(start_s, end_s, instance="a", calls=CALLS):
    """One SDK export: delta calls and a duration histogram over ``(start, end]`` seconds after T0."""
    start, end = T0 + int(start_s * S), T0 + int(end_s * S)
    durations = histogram.from_values(np.random.default_rng(int(end_s * 10)).lognormal(-4, 0.3, calls))
    return [
        Point(key(semconv.METRIC_CALLS, instance), "sum", start, end, False, calls, monotonic=True),
        Point(key(semconv.METRIC_DURATION, instance), "exponential", start, end, False, durations),
    ]


def run(requests, lateness_s=0.0, idle_timeout_s=600.0):
    """Feed ``requests`` (lists of points, in arrival order) to a state with one-minute windows; the closed windows
    by index relative to the first."""
    st = State(StateConfig(window_s=60, lateness_s=lateness_s, idle_timeout_s=idle_timeout_s))
    closed, rejected = [], 0
    for points in requests:
        applied = st.apply(Decoded(points=list(points)), max(p.time_unix_nano for p in points))
        closed += applied.closed
        rejected += applied.rejected
    return {w.index - FIRST: w for w in closed if w.model == "m"}, rejected


def test_an_export_that_misses_its_window_leaves_it_partial_and_the_next_one_too():
    # every minute at second 59, until one export comes 2 s late: window 1 gets nothing, window 2 two minutes
    ends = [59, 121, 179, 239, 299]
    windows, _ = run([export(a, b) for a, b in zip([-1] + ends, ends)])
    calls = {i: w.counter(semconv.METRIC_CALLS) for i, w in windows.items()}
    assert calls == {0: CALLS, 1: 0, 2: 2 * CALLS, 3: CALLS}
    assert {i: w.partial for i, w in windows.items()} == {0: False, 1: True, 2: True, 3: False}
    assert windows[1].summary()["partial"] is True


def test_silence_is_not_partial():
    # the source sends nothing over window 1 (no export covers it): an empty, complete window, an outage
    windows, _ = run([export(-1, 59), export(125, 179), export(179, 239), export(239, 299)])
    assert windows[1].counter(semconv.METRIC_CALLS) == 0 and not windows[1].partial
    assert not any(w.partial for w in windows.values())


def test_one_replica_whose_export_arrives_after_anothers_next_one_is_waited_for():
    # replica b's export for window 1 arrives after replica a's export for window 2: with lateness 0 the window
    # used to close on a's watermark and b's points were rejected as late, leaving window 1 with a's calls only
    requests = [export(-1, 59, "a"), export(-1, 59, "b"), export(59, 119, "a"), export(119, 179, "a")]
    requests += [export(59, 119, "b"), export(119, 179, "b"), export(179, 239, "a"), export(179, 239, "b")]
    windows, rejected = run(requests)
    assert rejected == 0
    assert {i: w.counter(semconv.METRIC_CALLS) for i, w in windows.items()} == {
        0: 2 * CALLS,
        1: 2 * CALLS,
        2: 2 * CALLS,
    }
    assert not any(w.partial for w in windows.values())


def test_a_replica_that_stops_holds_windows_back_only_for_the_idle_timeout():
    requests = [export(-1, 59, "a"), export(-1, 59, "b")] + [export(e - 60, e, "a") for e in range(119, 600, 60)]
    windows, _ = run(requests, idle_timeout_s=180)
    # b's newest point (59 s) is 180 s behind a's once a reaches 239 s; from then on windows close on a alone
    assert sorted(windows)[:3] == [0, 1, 2] and windows[1].counter(semconv.METRIC_CALLS) == CALLS
    assert not any(w.partial for w in windows.values())


def sequential():
    return SequentialConfig(false_alarm_days=1.0, window_s=86400.0 / 1000, baseline_windows=10)


def feed(detector, windows):
    return [f for w in windows for f in detector.update(w, None) if f.alarm]


def test_availability_and_throughput_skip_partial_windows_and_still_find_silence():
    rng = np.random.default_rng(3)
    baseline = [synthetic_window(i, calls=int(rng.poisson(300))) for i in range(10)]
    late = [
        dataclasses.replace(synthetic_window(10, calls=0), partial=True),  # its export landed in the next window
        dataclasses.replace(synthetic_window(11, calls=600), partial=True),
    ]
    silent = [synthetic_window(12, calls=0)]
    for detector in (AvailabilityDetector(sequential()), ThroughputDetector(sequential())):
        assert feed(detector, baseline + late) == [], detector.name
    availability = AvailabilityDetector(sequential())
    [alarm] = feed(availability, baseline + late + silent)
    assert alarm.window_start_unix_nano == silent[0].start_unix_nano and alarm.severity == "critical"
    throughput = ThroughputDetector(sequential())
    assert feed(throughput, baseline + [dataclasses.replace(late[1], partial=False)])  # a real surge is still one


def test_latency_and_slow_calls_skip_partial_windows_and_still_find_a_slowdown():
    rng = np.random.default_rng(4)
    baseline = [synthetic_window(i, durations=rng.lognormal(-4, 0.3, 300)) for i in range(10)]
    stalled = dataclasses.replace(synthetic_window(10, durations=rng.lognormal(-4, 0.3, 300) * 3), partial=True)
    slow = dataclasses.replace(stalled, partial=False)
    for detector in (LatencyDetector, SlowCallsDetector):
        assert feed(detector(sequential()), baseline + [stalled]) == [], detector.name
        assert feed(detector(sequential()), baseline + [slow]), detector.name


def test_integrity_needs_inputs_observed_in_a_complete_window():
    rng = np.random.default_rng(5)
    features = rng.normal(size=(5000, 3))
    reference = Reference(
        "m", "1", synthetic_window(0, features=features, confidence=rng.beta(8, 2, 5000)).histograms, "test", 5000
    )

    def calm(index):
        return synthetic_window(index, features=rng.normal(size=(300, 3)), confidence=rng.beta(8, 2, 300))

    def swapped(index, **kwargs):
        return synthetic_window(index, confidence=rng.beta(2, 8, 2000), **kwargs)

    def integrity(last):
        detection = Detection(86400.0 / 1000, false_alarm_days=1.0, baseline_windows=10)
        findings = [f for w in [calm(i) for i in range(1, 6)] + [last] for f in detection.on_window(w, reference)]
        return [f for f in findings if f.detector == "integrity" and f.alarm]

    outputs_only = swapped(6)  # a source's outputs arrived, its inputs did not
    assert outputs_only.histogram(semconv.METRIC_FEATURE_VALUE) is None
    assert integrity(outputs_only) == []
    partial = dataclasses.replace(swapped(6, features=rng.normal(size=(2000, 3))), partial=True)
    assert integrity(partial) == []
    [found] = integrity(swapped(6, features=rng.normal(size=(2000, 3))))  # the swap itself is still found
    assert found.severity == "critical"


def test_the_sdk_collects_on_a_fixed_grid_so_exports_do_not_drift_through_the_windows():
    """With an export interval equal to the window, waiting a full interval after each export (the old loop) drifts
    by the export's own time until a window gets no export and the next gets two; on the grid every window gets one,
    and a collection held up by a stall is followed by the next on the grid, not by a second one in its window."""
    rng = np.random.default_rng(6)
    export_times = rng.uniform(0.0, 0.2, 300)  # seconds each export takes

    def windows_hit(ends):
        index = np.floor(np.asarray(ends)).astype(int)  # one-second windows
        return np.bincount(index - index[0])

    now, drifting = 1000.0, []
    for took in export_times:
        now += 1.0
        drifting.append(now)
        now += took
    assert (windows_hit(drifting) == 0).any() and windows_hit(drifting).max() == 1

    now, on_grid = 1000.0, []
    for i, took in enumerate(export_times):
        now += next_export_delay(now, 1.0, 0.4)
        on_grid.append(now)
        now += took + (1.7 if i == 100 else 0.0)  # one export stalls for 1.7 s
    hits = windows_hit(on_grid)
    assert hits.max() == 1 and (hits == 0).sum() == 1  # only the stall skips a window (marked partial there)
    assert np.allclose(np.asarray(on_grid) % 1.0, 0.4)


def test_a_model_that_stops_in_a_replica_still_reporting_others_gets_its_windows_closed_at_once():
    # the SDK sends every model of a process in one export: a source that moved on without a model's points had no
    # calls of it, so that model's windows close on the source's watermark, empty and complete (an outage), without
    # waiting for the idle timeout
    others = [
        Point(
            key(semconv.METRIC_CALLS, "a", **{semconv.MODEL_NAME: "other"}),
            "sum",
            T0 + (e - 60) * S,
            T0 + e * S,
            False,
            CALLS,
            monotonic=True,
        )
        for e in range(59, 300, 60)
    ]
    requests = [export(-1, 59) + others[:1]] + [[p] for p in others[1:]]
    windows, _ = run(requests, idle_timeout_s=3600)
    assert [windows[i].counter(semconv.METRIC_CALLS) for i in range(4)] == [CALLS, 0, 0, 0]
    assert not any(w.partial for w in windows.values()) and {w.closed_by for w in windows.values()} == {"watermark"}


class Scripted:
    """A stand-in drift detector that reports the statistic it is given for each window."""

    def __init__(self, label, values, **details):
        self.label, self.values, self.details = label, values, details

    def update(self, window, reference):
        value = self.values[window.index]
        return [
            Finding(
                "drift",
                self.label,
                "m",
                "1",
                None,
                "log evidence",
                value,
                14.8,
                value >= 14.8,
                window.start_unix_nano,
                window.end_unix_nano,
                details=dict(self.details),
            )
        ]


def test_integrity_does_not_take_an_input_drift_that_just_restarted_for_stable_inputs():
    # input drift restarts after each alarm: while the world changes, its statistic drops to nothing every other
    # window, and an output alarm in such a window used to read as "outputs moved while inputs are stable"
    inputs = [1, 1, 1, 1, 20, 1, 1, 1, 1, 1]  # an alarm in window 4, then restarted
    outputs = [1, 1, 1, 1, 5, 20, 1, 1, 20, 1]  # outputs alarm right after (window 5), and again in window 8
    detection = Detection(86400.0 / 1000, false_alarm_days=1.0)
    detection._detectors[("m", "1")] = {
        "input drift": Scripted("input drift", inputs),
        "output drift": Scripted("output drift", outputs, metric=semconv.METRIC_CONFIDENCE),
    }
    rng = np.random.default_rng(7)
    integrity = [
        i
        for i in range(10)
        for f in detection.on_window(
            synthetic_window(i, features=rng.normal(size=(50, 2)), confidence=rng.random(50)), None
        )
        if f.detector == "integrity" and f.alarm
    ]
    assert integrity == [8]  # window 5 followed an input alarm; window 8 is a swap after calm windows

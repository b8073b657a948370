"""The analyzer's pure state: deltas from cumulative streams, event-time windows, watermarks, caps, determinism."""

import re

import numpy as np
import pytest

from otelml import histogram, semconv
from otelml.analyzer.points import Decoded, Point, StreamKey
from otelml.analyzer.state import Limits, State, StateConfig
from otelml.analyzer.streams import Deltas, StalePoint

S = 1_000_000_000
T0 = 28_333_320 * 60 * S  # a window boundary, so window contents are easy to count


def key(metric, model="m", version="1", instance="a", **extra):
    attributes = {semconv.MODEL_NAME: model, semconv.MODEL_VERSION: version, **extra}
    return StreamKey((("service.instance.id", instance),), "otelml", metric, tuple(sorted(attributes.items())))


def rows(t, n, cumulative=False, start=None, **k):
    return Point(
        key(semconv.METRIC_ROWS, **k), "sum", start if start is not None else t - S, t, cumulative, n, monotonic=True
    )


def feature(t, values, name="a", cumulative=False, start=None, **k):
    h = histogram.from_values(np.asarray(values, dtype=float))
    return Point(
        key(semconv.METRIC_FEATURE_VALUE, **{semconv.FEATURE_NAME: name}, **k),
        "exponential",
        start if start is not None else t - S,
        t,
        cumulative,
        h,
    )


def state(**config):
    return State(StateConfig(window_s=60, lateness_s=10, idle_timeout_s=120, **config))


def apply(st, *points, now=None):
    return st.apply(Decoded(points=list(points)), now or max(p.time_unix_nano for p in points))


def test_cumulative_sums_become_deltas_with_resets():
    deltas = Deltas()
    k = key(semconv.METRIC_ROWS)
    out = [
        deltas.delta(Point(k, "sum", T0, T0 + t * S, True, v, monotonic=True)).value
        for t, v in [(1, 10), (2, 25), (3, 25), (4, 5)]
    ]  # 5 < 25: a reset that kept its start time
    assert out == [10, 15, 0, 5]
    assert deltas.delta(Point(k, "sum", T0 + 10 * S, T0 + 11 * S, True, 7, monotonic=True)).value == 7  # new start
    with pytest.raises(StalePoint):
        deltas.delta(Point(k, "sum", T0 + 10 * S, T0 + 11 * S, True, 9, monotonic=True))


def test_cumulative_histograms_become_deltas_across_scale_changes():
    rng = np.random.default_rng(0)
    first, second = rng.normal(size=500), rng.uniform(1e3, 1e5, size=300)  # the second pushes the scale down
    deltas = Deltas()
    k = key(semconv.METRIC_FEATURE_VALUE)
    h1 = histogram.from_values(first)
    h2 = histogram.from_values(np.concatenate([first, second]))
    assert h2.scale < h1.scale
    deltas.delta(Point(k, "exponential", T0, T0 + S, True, h1))
    d = deltas.delta(Point(k, "exponential", T0, T0 + 2 * S, True, h2)).value
    assert d.count == 300 and d.sum == pytest.approx(second.sum())
    expected = histogram.rebin(histogram.from_values(second), d.scale, d.zero_threshold)
    lower, upper, counts = d.buckets()
    exp_lower, exp_upper, exp_counts = expected.buckets()
    np.testing.assert_array_equal(counts, exp_counts)
    shrunk = histogram.from_values(first[:100])  # counts fell: reset
    assert deltas.delta(Point(k, "exponential", T0, T0 + 3 * S, True, shrunk)).value.count == 100


def test_windows_close_by_event_time_and_late_points_are_counted():
    st = state()
    assert apply(st, rows(T0 + 5 * S, 3), rows(T0 + 30 * S, 4)).closed == []
    result = apply(st, rows(T0 + 75 * S, 1))  # watermark 65 s: window 0 (0-60 s) closes
    [closed] = result.closed
    assert closed.index == T0 // (60 * S) and closed.counter(semconv.METRIC_ROWS) == 7
    late = apply(st, rows(T0 + 50 * S, 2), now=T0 + 80 * S)
    assert late.rejected == 1 and "late point" in late.errors[0] and st.counts["late"] == 1


def test_a_quiet_model_gets_empty_windows_from_other_models_progress():
    st = state()
    apply(st, rows(T0 + 5 * S, 3, model="quiet", instance="q"), rows(T0 + 5 * S, 3, model="busy"))
    closed = apply(st, rows(T0 + 400 * S, 1, model="busy")).closed
    quiet = [w for w in closed if w.model == "quiet"]
    assert [w.points for w in quiet][:1] == [1] and all(w.points == 0 for w in quiet[1:])
    assert len(quiet) >= 3 and {w.closed_by for w in quiet[1:]} == {"idle"}


def test_wall_clock_silence_closes_windows_too():
    st = state()
    apply(st, rows(T0 + 5 * S, 3), now=T0 + 6 * S)
    assert st.tick(T0 + 60 * S) == []  # not silent long enough
    closed = st.tick(T0 + 300 * S)
    assert closed and closed[0].counter(semconv.METRIC_ROWS) == 3


def test_replicas_add_up_and_replay_at_any_grouping_gives_the_same_windows():
    rng = np.random.default_rng(1)
    points = []
    for second in range(0, 600, 10):
        for instance in ("a", "b", "c"):
            points.append(feature(T0 + second * S + S, rng.normal(size=20), instance=instance))
            points.append(rows(T0 + second * S + S, 20, instance=instance))

    def run(batch):
        st = state()
        closed = []
        for i in range(0, len(points), batch):
            closed += apply(st, *points[i : i + batch]).closed
        return [
            (w.index, w.counter(semconv.METRIC_ROWS), w.histogram(semconv.METRIC_FEATURE_VALUE).count) for w in closed
        ]

    one_by_one, all_at_once, in_sevens = run(1), run(len(points)), run(7)
    assert one_by_one == in_sevens
    assert all_at_once == one_by_one[: len(all_at_once)]
    assert one_by_one[0][1:] == (3 * 6 * 20, 3 * 6 * 20)


def test_caps_reject_and_count_without_disturbing_known_models():
    st = state(limits=Limits(max_models=1, max_versions=1, max_features=2, max_streams=1))
    assert apply(st, rows(T0 + S, 1)).accepted == 1
    assert apply(st, rows(T0 + S, 1, model="other")).rejected == 1
    assert apply(st, rows(T0 + S, 1, version="2")).rejected == 1
    assert apply(st, feature(T0 + S, [1], "a"), feature(T0 + S, [1], "b"), feature(T0 + S, [1], "c")).rejected == 1
    assert apply(st, rows(T0 + 2 * S, 1, cumulative=True, start=T0)).accepted == 1
    assert apply(st, rows(T0 + 2 * S, 1, cumulative=True, start=T0, instance="z")).rejected == 1
    assert apply(st, rows(T0 + 3 * S, 1)).accepted == 1
    assert st.counts["rejected"] == 4


def test_points_from_the_far_future_and_foreign_points():
    st = state()
    result = apply(st, rows(T0 + 10_000 * S, 1), now=T0)
    assert result.rejected == 1 and "ahead" in result.errors[0]
    foreign = Point(StreamKey((), "http", "http.server.duration", ()), "sum", T0, T0 + S, False, 3, monotonic=True)
    result = apply(st, foreign)
    assert (result.accepted, result.rejected, st.counts["ignored"]) == (0, 0, 1)


def test_state_config_is_validated():
    with pytest.raises(ValueError):
        StateConfig(window_s=0)


def test_config_files_flags_and_defaults(tmp_path, monkeypatch):
    from otelml.analyzer import config
    from otelml.analyzer.attacks import AttackConfig

    path = tmp_path / "analyzer.toml"
    path.write_text('[analyzer]\nwindow = 30\notlp_grpc = "0.0.0.0:14317"\n[analyzer.limits]\nmax_models = 7\n')
    loaded = config.load(str(path), window=None, warmup=99)
    assert (loaded.window, loaded.otlp_grpc, loaded.warmup, loaded.limits.max_models) == (30, "0.0.0.0:14317", 99, 7)
    assert loaded.lateness == 30.0  # a default
    monkeypatch.setenv("OTELML_AUTH_TOKEN", "t0k")
    assert config.load().auth_token == "t0k"
    path.write_text('[analyzer.attacks]\ntrusted = ["gateway-id"]\nfalse_alarms = 1e5\n')
    attacks = config.load(str(path)).attacks
    assert attacks.trusted == ("gateway-id",) and attacks.false_alarms == 1e5 and attacks.max_callers == 20_000
    expected = AttackConfig(trusted=("gateway-id",))
    assert attacks == expected and hash(attacks) == hash(expected)  # the file's list became the tuple
    with pytest.raises(ValueError, match="a tuple when built in code"):
        AttackConfig(trusted=["gateway-id"])  # a list is made a tuple before construction, by AttackConfig.from_table
    path.write_text("[analyzer]\nwindw = 30\n")
    with pytest.raises(ValueError, match="unknown settings.*windw"):
        config.load(str(path))
    path.write_text("[analyzer.attacks]\nfalse_alarm = 3\n")
    with pytest.raises(ValueError, match="unknown attacks settings.*false_alarm"):
        config.load(str(path))
    for bad, message in [
        ('trusted = "gateway-id"', "trusted must be a list of caller ids"),
        ("trusted = [1, 2]", "trusted must be a list of caller ids"),
        ("false_alarms = 0.5", "false_alarms must be larger than 1"),
        ("ratio = 2", "ratio must lie in"),
        ("history = 0", "history must be positive"),
        ('novelty_floor = "x"', "novelty_floor must be a number"),
        ("novelty_floor = 1", "novelty_floor must lie in"),
        ("remembered_inputs = 1000000000", "remembered_inputs must be at most"),
    ]:
        path.write_text(f"[analyzer.attacks]\n{bad}\n")
        with pytest.raises(ValueError, match=message):
            config.load(str(path))
    path.write_text("[analyzer]\ndrift_scan_share = 0\n")
    assert config.load(str(path)).drift_scan_share == 0
    for bad in ("1.5", '"half"', "true"):
        path.write_text(f"[analyzer]\ndrift_scan_share = {bad}\n")
        with pytest.raises(ValueError, match="drift_scan_share must be a number"):
            config.load(str(path))
    with pytest.raises(ValueError, match="TLS needs both"):
        config.load(tls_cert="cert.pem")


def test_every_analyzer_setting_is_checked_for_type_and_range(tmp_path):
    """A wrong value stops the analyzer at start-up with the setting's name, instead of failing at the first window
    that uses it (a text ``min_effect`` used to raise TypeError inside drift detection) or silently alarming all the
    time (``false_alarm_days`` so small that ln A is negative)."""
    from otelml.analyzer import config

    path = tmp_path / "analyzer.toml"
    for bad, message in [
        ('min_effect = "large"', "min_effect must be a number, got 'large'"),
        ('false_alarm_days = "30"', "false_alarm_days must be a number"),
        ("false_alarm_days = 0.00001", "allows a false alarm every 0.0144 windows; it must be at least 10"),
        ("baseline_windows = 0", "baseline_windows must be at least 1"),
        ("baseline_windows = 2.5", "baseline_windows must be a whole number"),
        ("warmup = true", "warmup must be a whole number"),
        ("min_effect = -1", "min_effect must be at least 0"),
        ("window = nan", "window must be finite"),
        ("confidence_threshold = 1.5", "confidence_threshold must lie in"),
        ("low_confidence_threshold = 0", "low_confidence_threshold must lie in"),
        ("confidence_minutes = 0", "confidence_minutes must be positive"),
        ("alert_resolve_windows = 0", "alert_resolve_windows must be at least 1"),
        ("otlp_grpc = 4317", "otlp_grpc must be a string"),
    ]:
        path.write_text(f"[analyzer]\n{bad}\n")
        with pytest.raises(ValueError, match=re.escape(message)):
            config.load(str(path))
    path.write_text("[analyzer]\nconfidence_threshold = 0.9\nconfidence_minutes = 2\nwindow = 30\n")
    loaded = config.load(str(path))
    assert (loaded.confidence_threshold, loaded.confidence_minutes) == (0.9, 2)


def test_the_analyzers_own_metrics_routed_back_by_a_collector_are_ignored():
    st = state()
    own = StreamKey((), semconv.ANALYZER_SCOPE_NAME, semconv.METRIC_ANALYZER_DRIFT_SCORE, ((semconv.MODEL_NAME, "m"),))
    applied = apply(st, Point(own, "gauge", T0, T0 + S, False, 3.5))
    assert applied.accepted == 0 and st.counts["ignored"] == 1 and st.models == {}


def test_findings_show_example_calls_of_what_they_saw():
    """A window keeps the newest exemplars of every stream; a finding's example calls are distinct, and the ones
    that show what its detector saw come first: the slowest calls for latency, failed calls for the error rate, the
    named feature's calls for drift."""
    from otelml.analyzer.detectors import ErrorRateDetector, InputRangeDetector, LatencyDetector
    from otelml.analyzer.points import Exemplar
    from otelml.analyzer.windows import Window

    window = Window(0, 60 * 10**9)

    def add(metric, extra, trace, value):
        exemplar = Exemplar(trace * 32, trace * 16, 1, value)
        window.add(Point(StreamKey((), "otelml", metric, extra), "sum", 0, 1, False, 1, exemplars=(exemplar,)), extra)

    duration, failed = semconv.METRIC_DURATION, ((semconv.ERROR_TYPE, "Timeout"),)
    for trace, value in (("9", 5.0), ("a", 0.02), ("b", 0.9), ("c", 0.03)):  # the stream keeps b and c
        add(duration, (), trace, value)
    add(duration, failed, "d", 0.01)
    for i, trace in enumerate("efgh"):
        add(semconv.METRIC_FEATURE_VALUE, ((semconv.FEATURE_NAME, f"x{i % 2}"),), trace, float(i))
    add(semconv.METRIC_FEATURE_VALUE, ((semconv.FEATURE_NAME, "x1"),), "b", 7.0)  # one call, several streams
    closed = window.close("m", "1", "watermark")

    def shown(detector, **fields):
        finding = detector._finding(closed, statistic="s", value=1.0, threshold=1.0, alarm=True, **fields)
        assert len(set(finding.trace_ids)) == len(finding.trace_ids) <= 3
        return [trace[0] for trace, _ in finding.trace_ids]

    assert shown(LatencyDetector(), feature=None) == ["b", "c", "d"]
    assert shown(ErrorRateDetector(), feature=None)[0] == "d"
    assert shown(InputRangeDetector(), feature="x1")[:2] == ["b", "h"]
    assert shown(InputRangeDetector(), feature=None, details={"features": ["x0"]})[:2] == ["g", "e"]


@pytest.mark.parametrize("history", [20, 1440])
def test_memory_keeps_the_last_windows_and_the_store_keeps_the_history(history):
    """A day of one-minute windows per model version was held in memory, though only the last 60 are read there
    (the store keeps the history)."""
    from otelml.analyzer.state import IN_MEMORY_WINDOWS

    st = state(limits=Limits(history=history))
    closed = sum((apply(st, rows(T0 + i * 60 * S + 5 * S, 1)).closed for i in range(100)), [])
    assert len(closed) >= 90
    assert len(st.models[("m", "1")].history) == min(history, IN_MEMORY_WINDOWS)

"""Caps that protect known models without locking new ones out: model-version eviction (the never-confirmed and the
idle first, never the pinned or the recently active), and per-window caps on attribute sets folded into
``__other__``. Through the real analyzer service (OTLP protobuf requests, decoded and journaled) and the pure state."""

import sys
from pathlib import Path

import numpy as np
import pytest

from otelml import semconv
from otelml.analyzer import codec, references
from otelml.analyzer.config import AnalyzerConfig
from otelml.analyzer.decode import decode_metrics
from otelml.analyzer.points import Decoded, Point, StreamKey
from otelml.analyzer.service import Analyzer
from otelml.analyzer.state import Limits, State, StateConfig
from otelml.analyzer.store import PINNED

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from cardinality import FAULT, MIX, base_time, label_mix, sums_request  # noqa: E402

S = 10**9
W = 60 * S
PROTOBUF = "application/x-protobuf"


def analyzer(tmp_path, **limits) -> Analyzer:
    config = AnalyzerConfig(
        state_dir=str(tmp_path / "state"), window=60, lateness=0, baseline_windows=5, limits=Limits(**limits)
    )
    return Analyzer(config)


def send(service: Analyzer, points, instance="bench"):
    body = sums_request(points, instance)
    return service.ingest("metrics", PROTOBUF, body, decode_metrics(body, PROTOBUF))


def rows(model, end):
    return (model, semconv.METRIC_ROWS, {}, 1, end)


def test_a_flood_of_model_names_neither_locks_out_a_new_model_nor_silences_its_alerts(tmp_path):
    """5,000 model names past a cap of 50 once kept every new model out until a restart. Now a known, active model
    keeps working through the flood, names sent once evict nothing, names sent twice evict only the never-confirmed,
    and a new legitimate model gets in on its second request, has its windows closed and raises its alert."""
    service = analyzer(tmp_path, max_models=50)
    reference = references.from_data("steady", "1", ["x"], np.arange(100.0).reshape(-1, 1), "test")
    service.store.add_reference(reference, PINNED)
    t0 = base_time()
    at = lambda w, s=30: t0 + w * W + s * S  # noqa: E731 - second s of window w
    for w in range(2):
        assert send(service, label_mix("steady", MIX, at(w)), "steady").rejected == 0
    service.detection._detectors[("flood-0", "1")], service.warmup._windows[("flood-0", "1")] = {}, []
    for first in range(0, 5000, 500):  # 5,000 names, each in two requests: each gets in by eviction
        body = [rows(f"flood-{i}", at(2)) for i in range(first, first + 500)]
        assert send(service, body, "flood").rejected == (451 if first == 0 else 500)  # 49 fit; the rest turned away

        assert send(service, body, "flood").accepted == 500  # ... let in on the second request
    health = service.health()
    assert health["models"] == 50 and health["points"]["evicted"] == 5000 - 49
    assert ("steady", "1") in service.state.models  # confirmed and active: never evicted
    assert service.state.pinned == {("steady", "1")}  # and pinned: never evicted, however idle

    once = [rows(f"once-{i}", at(3)) for i in range(5000)]
    assert send(service, once, "flood").rejected == 5000  # names sent once evict nothing
    assert service.health()["points"]["evicted"] == 5000 - 49
    first = send(service, label_mix("newcomer", MIX, at(3)), "newcomer")
    assert first.rejected == 3 and "over the cap" in first.errors[0]
    assert send(service, label_mix("newcomer", MIX, at(3, 31)), "newcomer").accepted == 3  # its second request
    for w in range(4, 16):
        mix = FAULT if w >= 10 else MIX
        assert send(service, label_mix("steady", MIX, at(w)), "steady").rejected == 0
        assert send(service, label_mix("newcomer", mix, at(w)), "newcomer").rejected == 0
        flood = [rows(f"late-{w}-{i}", at(w)) for i in range(200)]  # confirmed now: a flood sent twice passes it by
        send(service, flood, "flood"), send(service, flood, "flood")
    models = {m["model"]: m for m in service.models()}
    assert models["newcomer"]["windows_closed"] >= 11 and models["steady"]["windows_closed"] >= 15
    alarms = [a for a in service.alarms() if a["model"] == "newcomer" and a["feature"] == "predicted label"]
    assert alarms and alarms[0]["window_start_unix_nano"] >= t0 + 10 * W  # raised by the fault, not before
    # what the service keeps per model version goes with an evicted one (planted for the first flood name, as a
    # version confirmed and later idle would have it: a slow flood of such names grew it without bound)
    assert ("flood-0", "1") not in service.detection._detectors and ("flood-0", "1") not in service.warmup._windows
    assert not [a for a in service.alarms() if a["model"] == "steady"]
    service.close()


def test_a_window_holds_at_most_the_cap_of_category_and_label_values(tmp_path):
    """350,000 distinct category values in one window were all kept (822 MB, 4.6 s a request). Now a window holds
    ``max_values`` per metric and feature; the rest is counted in one ``__other__`` value per feature, and another
    feature's values are not folded by the flood."""
    service = analyzer(tmp_path, max_values=100)
    end = base_time() + 30 * S
    category = lambda feature, value: (  # noqa: E731
        "wide",
        semconv.METRIC_FEATURE_CATEGORY,
        {semconv.FEATURE_NAME: feature, semconv.FEATURE_CATEGORY: value},
        1,
        end,
    )
    for first in range(0, 100_000, 10_000):
        applied = send(service, [category("colour", f"c{i}") for i in range(first, first + 10_000)])
        assert applied.accepted == 10_000
    labels = [("wide", semconv.METRIC_PREDICTIONS, {semconv.PREDICTION_LABEL: f"l{i}"}, 2, end) for i in range(500)]
    send(service, labels + [category("size", v) for v in ("s", "m", "l")])
    [window] = service.state.models[("wide", "1")].open.values()
    colours = [k for k in window.counters if dict(k[1]).get(semconv.FEATURE_NAME) == "colour"]
    assert len(colours) == 101 and len(window.counters) <= 101 + 101 + 3  # colour, labels, size: memory bounded
    assert window.counters[(semconv.METRIC_FEATURE_CATEGORY, _other("colour"))] == 100_000 - 100
    predictions = {dict(e)[semconv.PREDICTION_LABEL]: v for (m, e), v in window.counters.items() if m.endswith("ions")}
    assert len(predictions) == 101 and predictions[semconv.OTHER_VALUE] == 2 * 400
    sizes = {dict(e)[semconv.FEATURE_CATEGORY] for (_, e) in window.counters if ("otelml.feature.name", "size") in e}
    assert sizes == {"s", "m", "l"}  # another feature's values are its own
    assert service.health()["points"]["overflow"] == 100_000 - 100 + 400
    service.close()


def _other(feature):
    return tuple(sorted({(semconv.FEATURE_NAME, feature), (semconv.FEATURE_CATEGORY, semconv.OTHER_VALUE)}))


def test_category_drift_sees_a_flood_of_new_values_as_mass_moved_to_an_unseen_value(tmp_path):
    """The overflow bucket is a value the baseline never had: the category-drift detector alarms on a real flood
    (the mix moved), names the feature, and shows ``__other__`` in the window's mix."""
    service = analyzer(tmp_path, max_values=20)
    t0 = base_time()
    for w in range(12):
        end = t0 + w * W + 30 * S
        values = {"red": 50, "green": 30, "blue": 20} if w < 8 else {f"v{w}-{i}": 1 for i in range(300)}
        points = [
            (
                "shop",
                semconv.METRIC_FEATURE_CATEGORY,
                {semconv.FEATURE_NAME: "colour", semconv.FEATURE_CATEGORY: k},
                v,
                end,
            )
            for k, v in values.items()
        ]
        send(service, points + [rows("shop", end)])
    alarms = [a for a in service.alarms() if a["detector"] == "category drift"]
    assert alarms and alarms[0]["feature"] == "colour" and alarms[0]["window_start_unix_nano"] >= t0 + 8 * W
    assert alarms[0]["details"]["mix"][semconv.OTHER_VALUE] == 300 - 20
    service.close()


# --- the pure state: the eviction policy one rule at a time -------------------------------------------------------
T0 = 28_333_320 * W


def point(model, t, version="1", instance="a", cumulative=False):
    attributes = ((semconv.MODEL_NAME, model), (semconv.MODEL_VERSION, version))
    key = StreamKey((("service.instance.id", instance),), "otelml", semconv.METRIC_ROWS, attributes)
    return Point(key, "sum", T0 if cumulative else t - S, t, cumulative, 1, monotonic=True)


def apply(st, *points, now):
    return st.apply(Decoded(points=list(points)), now)


def twice(st, p, now):
    """A new model at the cap: turned away by one request, let in by the next."""
    assert apply(st, p, now=now).rejected == 1
    return apply(st, p, now=now)


def test_eviction_takes_the_never_confirmed_first_then_the_idle_never_the_pinned_or_the_active():
    limits = Limits(max_models=4, protect_windows=2, protect_s=1)
    st = State(StateConfig(window_s=60, lateness_s=0, idle_timeout_s=3600, limits=limits))
    apply(st, point("pinned", T0 + S), now=T0)
    st.pinned.add(("pinned", "1"))
    apply(st, point("idle", T0 + S), point("idle", T0 + W + S), now=T0)  # confirmed (two windows), then quiet
    apply(st, point("active", T0 + S), point("active", T0 + W + S), now=T0)
    apply(st, point("new-1", T0 + W + S), now=T0 + 4 * W)  # under the cap; on probation
    apply(st, point("active", T0 + 5 * W + S), now=T0 + 5 * W)  # active again
    assert twice(st, point("new-2", T0 + 5 * W + S), now=T0 + 5 * W).accepted == 1
    assert set(st.models) == {("pinned", "1"), ("idle", "1"), ("active", "1"), ("new-2", "1")}  # new-1 went first
    apply(st, point("new-2", T0 + 6 * W + S), now=T0 + 5 * W)  # confirmed
    assert twice(st, point("new-3", T0 + 6 * W + S), now=T0 + 5 * W).accepted == 1  # nobody on probation: the idle
    assert set(st.models) == {("pinned", "1"), ("active", "1"), ("new-2", "1"), ("new-3", "1")}
    apply(st, point("new-3", T0 + 7 * W + S), now=T0 + 6 * W)  # confirmed; everyone is protected now
    assert twice(st, point("new-4", T0 + 7 * W + S), now=T0 + 6 * W).rejected == 1
    assert st.counts["evicted"] == 2 and len(st.models) == 4
    much_later = twice(st, point("new-5", T0 + 30 * W), now=T0 + 30 * W)  # the pinned stays however idle
    assert much_later.accepted == 1 and ("pinned", "1") in st.models and st.counts["evicted"] == 3
    assert st.take_evicted() == [("new-1", "1"), ("idle", "1"), ("active", "1")] and st.take_evicted() == []


@pytest.mark.parametrize("protect_s, kept", [(600.0, True), (1.0, False)])
def test_with_short_windows_a_model_that_sends_every_few_minutes_keeps_its_place(protect_s, kept):
    """Protection was counted in windows only: with one-second windows, a canary that sent once a minute was evicted
    by a flood of names (found by the fuzz run). A model with data in the last ``protect_s`` seconds stays too."""
    limits = Limits(max_models=3, protect_s=protect_s)
    st = State(StateConfig(window_s=1, lateness_s=0, idle_timeout_s=3600, limits=limits))
    apply(st, point("canary", T0 + S), now=T0 + S)
    apply(st, point("canary", T0 + 2 * S), now=T0 + 2 * S)  # confirmed: data in a second window
    t = T0 + 180 * S  # three minutes (180 windows) later, a flood of names that each send in two windows
    for i in range(6):
        if apply(st, point(f"flood-{i}", t), now=t).rejected:  # at the cap: turned away once
            apply(st, point(f"flood-{i}", t), now=t)
        apply(st, point(f"flood-{i}", t + S), now=t + S)
        t += 2 * S
    assert (("canary", "1") in st.models) is kept
    assert len(st.models) == 3  # the flood filled the cap


def test_at_the_cap_on_cumulative_streams_the_one_quiet_longest_makes_room():
    """Full of cumulative streams, a live model rejected every new one until a restart (replicas that restart with
    new instance ids fill it). A stream whose last point is over ``protect_s`` old is forgotten to make room."""
    st = State(StateConfig(window_s=60, lateness_s=0, idle_timeout_s=3600, limits=Limits(max_streams=2)))
    apply(
        st, point("m", T0 + S, instance="a", cumulative=True), point("m", T0 + S, instance="b", cumulative=True), now=T0
    )
    apply(st, point("m", T0 + 500 * S, instance="a", cumulative=True), now=T0 + 500 * S)  # a is alive, b went
    assert apply(st, point("m", T0 + 550 * S, instance="c", cumulative=True), now=T0 + 550 * S).rejected == 1
    assert apply(st, point("m", T0 + 700 * S, instance="c", cumulative=True), now=T0 + 700 * S).accepted == 1
    assert st.counts["streams_forgotten"] == 1 and {k.resource[0][1] for k in st.deltas.last} == {"a", "c"}


def test_eviction_for_a_new_version_stays_within_its_model_and_forgets_its_cumulative_streams():
    st = State(StateConfig(window_s=60, lateness_s=0, idle_timeout_s=3600, limits=Limits(max_versions=2)))
    apply(st, point("m", T0 + S, "1", cumulative=True), point("m", T0 + S, "2", cumulative=True), now=T0)
    apply(st, point("other", T0 + S), now=T0)
    assert len(st.deltas) == 2
    assert twice(st, point("m", T0 + 2 * S, "3"), now=T0).accepted == 1
    assert set(st.models) == {("m", "2"), ("m", "3"), ("other", "1")}  # m 1 arrived longest ago
    assert len(st.deltas) == 1 and st.counts["evicted"] == 1 and st.counts["evicted_points"] == 1


def test_a_model_version_tracks_at_most_the_cap_of_sources_and_state_survives_a_checkpoint():
    st = State(StateConfig(window_s=60, lateness_s=0, idle_timeout_s=3600, limits=Limits(max_sources=3)))
    applied = apply(st, *[point("m", T0 + S, instance=f"i{i}") for i in range(100)], now=T0)
    assert applied.accepted == 100 and len(st.models[("m", "1")].sources) == 3
    [window] = st.models[("m", "1")].open.values()
    assert len(window.spans) == 3 and sum(window.counters.values()) == 100
    restored = codec.decode(codec.encode(st))
    assert list(restored._probation) == [("m", "1")] and restored._names["m"] == 1


def test_limits_must_be_positive():
    for bad in ({"max_values": 0}, {"max_models": -1}, {"protect_windows": True}, {"max_series": 2.5}):
        with pytest.raises(ValueError, match="must be a positive int"):
            Limits(**bad)
    with pytest.raises(ValueError, match="max_future_s must be a positive float"):
        Limits(max_future_s=float("nan"))


def test_one_source_ahead_of_the_clock_does_not_make_other_senders_late():
    """A point up to max_future_s ahead (a client whose clock runs fast, or a flipped timestamp) is accepted, but it
    moved the data clock by which quiet models' windows close: every other model's open windows closed at once and
    their senders' next, on-time points were rejected as late. The data clock no longer runs ahead of arrival."""
    st = State(StateConfig(window_s=60, lateness_s=0, idle_timeout_s=120, limits=Limits(max_future_s=600)))
    now = T0 + 10 * W
    assert apply(st, point("steady", now - S, instance="a"), now=now).accepted == 1
    assert apply(st, point("skewed", now + 500 * S, instance="b"), now=now).accepted == 1  # 8 minutes ahead
    on_time = apply(st, point("steady", now + 30 * S, instance="a"), now=now + 31 * S)
    assert on_time.accepted == 1 and on_time.rejected == 0, on_time.errors

"""@otelml.monitor, the context manager and otelml.instrument: spans, metrics, safety, threads, ground truth."""

import asyncio
import os
import threading

import numpy as np
import pandas as pd
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import StatusCode
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import otelml
from otelml import semconv
from otelml.sdk.recorder import BLOCK_ROWS

from .conftest import collect


def proba_model(x):
    x = np.asarray(x, dtype=float).reshape(-1, 2)
    p = 1 / (1 + np.exp(-x[:, 0]))
    return np.column_stack([1 - p, p])


def test_span_per_call_with_model_identity_and_single_row_attributes(runtime, spans):
    predict = otelml.monitor(model="m", version="3", classes=["neg", "pos"])(proba_model)
    predict(np.array([2.0, 0.0]))
    predict(np.zeros((4, 2)))
    finished = spans[1].get_finished_spans()
    assert [s.name for s in finished] == ["predict m", "predict m"]
    single, batch = (dict(s.attributes) for s in finished)
    assert single[semconv.MODEL_NAME] == "m" and single[semconv.MODEL_VERSION] == "3"
    assert single[semconv.MODEL_TASK] == "classification" and single[semconv.BATCH_SIZE] == 1
    assert single[semconv.PREDICTION_LABEL] == "pos"
    assert single[semconv.PREDICTION_CONFIDENCE] == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert batch[semconv.BATCH_SIZE] == 4 and semconv.PREDICTION_LABEL not in batch


def test_metrics_count_every_row_of_every_call(runtime):
    predict = otelml.monitor(model="m", version="1", feature_names=["a", "b"])(proba_model)
    rng = np.random.default_rng(0)
    rows = 0
    for size in [1] * 700 + [3, 50, BLOCK_ROWS, 2000]:  # single rows, small batches, direct aggregation
        predict(rng.normal(size=(size, 2)))
        rows += size
    snap = collect(runtime)[("m", "1")]
    assert snap.counters[(semconv.METRIC_CALLS, None)] == 704
    assert snap.counters[(semconv.METRIC_ROWS, None)] == rows
    for feature in "ab":
        assert snap.histograms[(semconv.METRIC_FEATURE_VALUE, feature)].count == rows
    assert snap.histograms[(semconv.METRIC_CONFIDENCE, None)].count == rows
    assert snap.histograms[(semconv.METRIC_MARGIN, None)].count == rows
    assert snap.histograms[(semconv.METRIC_DURATION, None)].count == 704
    by_label = {k[1]: v for k, v in snap.counters.items() if k[0] == semconv.METRIC_PREDICTIONS}
    assert sum(by_label.values()) == rows and set(by_label) == {"0", "1"}
    assert collect(runtime) == {}  # delta: the next interval starts empty


def test_unsampled_calls_still_count_fully():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    rt = otelml.configure(tracer_provider=provider, export_metrics=False)
    try:
        predict = otelml.monitor(model="m", version="1")(proba_model)
        for _ in range(10):
            predict(np.ones((5, 2)))
        snap = collect(rt)[("m", "1")]
        assert exporter.get_finished_spans() == ()
        assert snap.counters[(semconv.METRIC_ROWS, None)] == 50
        assert snap.histograms[(semconv.METRIC_FEATURE_VALUE, "x0")].count == 50
        assert snap.exemplar is None  # exemplars come from sampled calls only
    finally:
        otelml.shutdown()


def test_model_exceptions_are_recorded_and_reraised_unchanged(runtime, spans):
    class Boom(RuntimeError):
        pass

    error = Boom("model failed")

    @otelml.monitor(model="m", version="1")
    def predict(x):
        raise error

    with pytest.raises(Boom) as caught:
        predict(np.ones(2))
    assert caught.value is error
    span = spans[1].get_finished_spans()[0]
    assert span.status.status_code == StatusCode.ERROR
    assert (
        span.attributes[semconv.ERROR_TYPE] == "test_model_exceptions_are_recorded_and_reraised_unchanged.<locals>.Boom"
    )
    assert span.events[0].name == "exception"
    snap = collect(runtime)[("m", "1")]
    assert snap.counters[(semconv.METRIC_CALLS, span.attributes[semconv.ERROR_TYPE])] == 1
    assert snap.histograms[(semconv.METRIC_DURATION, span.attributes[semconv.ERROR_TYPE])].count == 1


@pytest.mark.parametrize(
    "inputs, output, reason",
    [
        (np.zeros((2, 2, 2)), np.zeros((2, 2)), "bad_input"),  # wrong input shape
        (object(), np.zeros(1), "bad_input"),  # unreadable input
        (np.ones((3, 2)), np.array([[0.5, 0.5]]), "bad_output"),  # 3 rows in, 1 out
        (np.ones((1, 2)), {"weird": "output"}, "bad_output"),
    ],
)
def test_bad_input_or_output_never_reaches_the_caller(runtime, dropped, inputs, output, reason):
    @otelml.monitor(model="m", version="1", output="proba")
    def predict(x):
        return output

    assert predict(inputs) is output
    assert dropped().get(reason, 0) >= 1


def test_internal_failures_are_counted_not_raised(runtime, dropped, monkeypatch):
    predict = otelml.monitor(model="m", version="1")(proba_model)
    monkeypatch.setattr(runtime.registry.recorder("m", "1", "classification"), "record_row", None)  # a bug inside
    result = predict(np.ones(2))
    assert result.shape == (1, 2)
    assert dropped().get("internal_error") == 1


def test_nonfinite_values_are_counted_and_kept_out_of_histograms(runtime):
    predict = otelml.monitor(model="m", version="1")(proba_model)
    x = np.ones((10, 2))
    x[0, 0], x[1, 0], x[2, 1] = np.nan, np.inf, -np.inf
    predict(x)
    predict(np.array([np.nan, 1.0]))
    snap = collect(runtime)[("m", "1")]
    nonfinite = {k[1]: v for k, v in snap.counters.items() if k[0] == semconv.METRIC_FEATURE_NONFINITE}
    assert nonfinite == {("x0", "nan"): 2, ("x0", "+inf"): 1, ("x1", "-inf"): 1}
    assert snap.histograms[(semconv.METRIC_FEATURE_VALUE, "x0")].count == 11 - 3
    assert snap.histograms[(semconv.METRIC_FEATURE_VALUE, "x1")].count == 11 - 1


def test_methods_async_functions_and_keyword_inputs(runtime):
    class Service:
        @otelml.monitor(model="svc", version="1")
        def predict(self, features):
            return proba_model(features)

    @otelml.monitor(model="async", version="1")
    async def predict_async(x):
        await asyncio.sleep(0)
        return proba_model(x)

    @otelml.monitor(model="kw", version="1", inputs="rows")
    def predict_kw(threshold, rows):
        return proba_model(rows)

    Service().predict(np.ones((3, 2)))
    asyncio.run(predict_async(np.ones((2, 2))))
    predict_kw(0.5, rows=np.ones((4, 2)))
    snaps = collect(runtime)
    assert snaps[("svc", "1")].counters[(semconv.METRIC_ROWS, None)] == 3
    assert snaps[("async", "1")].counters[(semconv.METRIC_ROWS, None)] == 2
    assert snaps[("kw", "1")].counters[(semconv.METRIC_ROWS, None)] == 4


def test_context_manager_around_a_call_site(runtime, spans):
    x = np.ones((6, 2))
    with otelml.monitor(model="cm", version="1") as call:
        y = proba_model(x)
        call.record(inputs=x, outputs=y)
    with pytest.raises(ValueError):
        with otelml.monitor(model="cm", version="1"):
            raise ValueError("in the block")
    finished = spans[1].get_finished_spans()
    assert finished[0].attributes[semconv.BATCH_SIZE] == 6
    assert finished[1].status.status_code == StatusCode.ERROR
    snap = collect(runtime)[("cm", "1")]
    assert snap.counters[(semconv.METRIC_ROWS, None)] == 6
    assert snap.counters[(semconv.METRIC_CALLS, "ValueError")] == 1
    assert snap.histograms[(semconv.METRIC_CONFIDENCE, None)].count == 6


def test_nested_spans_inside_the_model_are_children(runtime, spans):
    tracer = spans[0].get_tracer("app")

    @otelml.monitor(model="m", version="1")
    def predict(x):
        with tracer.start_as_current_span("feature lookup"):
            return proba_model(x)

    predict(np.ones(2))
    inner, outer = spans[1].get_finished_spans()
    assert inner.parent.span_id == outer.context.span_id


def test_instrument_a_scikit_learn_pipeline_with_dataframes(runtime, spans):
    rng = np.random.default_rng(1)
    df = pd.DataFrame(rng.normal(size=(200, 3)), columns=["amount", "age", "hour"])
    labels = np.where(df["amount"] > 0, "fraud", "ok")
    model = otelml.instrument(make_pipeline(StandardScaler(), LogisticRegression()).fit(df, labels), "fraud", "7")
    assert list(model.predict(df.head(5))) == list(model.model.predict(df.head(5)))
    model.predict_proba(df.head(10))
    model.decision_function(df.head(1))
    assert model.classes_.tolist() == ["fraud", "ok"]  # everything else passes through
    snap = collect(runtime)[("fraud", "7")]
    assert snap.histograms[(semconv.METRIC_FEATURE_VALUE, "amount")].count == 16
    assert snap.histograms[(semconv.METRIC_CONFIDENCE, None)].count == 10
    by_label = {k[1] for k in snap.counters if k[0] == semconv.METRIC_PREDICTIONS}
    assert by_label <= {"fraud", "ok"} and by_label
    assert spans[1].get_finished_spans()[-1].attributes[semconv.PREDICTION_LABEL] in ("fraud", "ok")
    with pytest.raises(TypeError, match="has none of"):
        otelml.instrument(object(), "x")


def test_late_ground_truth_by_prediction_id_and_by_pairs(runtime, dropped):
    predict = otelml.monitor(model="gt", version="1", classes=["no", "yes"])(proba_model)
    predict(np.array([3.0, 0.0]))  # predicts "yes"
    one = otelml.last_prediction_id()
    predict(np.array([[-3.0, 0.0], [3.0, 0.0]]))  # "no", "yes"
    two = otelml.last_prediction_id()
    assert one != two and len(one) == 16
    assert otelml.record_outcome("yes", prediction_id=one)
    assert otelml.record_outcome(["yes", "yes"], prediction_id=two)
    assert not otelml.record_outcome("yes", prediction_id=one)  # used already
    assert not otelml.record_outcome("yes", prediction_id="not-an-id")
    assert not otelml.record_outcome(["a", "b", "c"], model="gt", version="1", predicted=["a"])
    assert otelml.record_outcome(["no", "yes"], model="gt", version="1", predicted=["no", "no"])
    outcomes = {k[1]: v for k, v in collect(runtime)[("gt", "1")].counters.items() if k[0] == semconv.METRIC_OUTCOMES}
    assert outcomes == {("yes", "yes"): 2, ("no", "yes"): 2, ("no", "no"): 1}
    assert dropped() == {"unknown_prediction": 2, "bad_input": 1}


def test_span_id_is_the_prediction_id(runtime, spans):
    with otelml.monitor(model="m", version="1") as call:
        call.record(np.ones(2), proba_model(np.ones(2)))
    assert call.prediction_id == f"{spans[1].get_finished_spans()[0].context.span_id:016x}"


def test_cardinality_caps(spans, dropped):
    limits = otelml.sdk.recorder.Limits(max_features=3, max_labels=2, max_categories=2)
    rt = otelml.configure(tracer_provider=spans[0], export_metrics=False, limits=limits)
    try:
        predict = otelml.monitor(model="m", version="1", output="labels")(lambda x: np.array(["a", "b", "c", "d"]))
        predict(pd.DataFrame({f"f{i}": np.arange(4.0) for i in range(5)}))
        predict(pd.DataFrame({"color": ["r", "g", "b", "y"]}))
        snap = collect(rt)[("m", "1")]
        features = {k[1] for k in snap.histograms if k[0] == semconv.METRIC_FEATURE_VALUE}
        labels = {k[1]: v for k, v in snap.counters.items() if k[0] == semconv.METRIC_PREDICTIONS}
        colors = {k[1][1]: v for k, v in snap.counters.items() if k[0] == semconv.METRIC_FEATURE_CATEGORY}
        assert len(features) == 3 and dropped()["cardinality_limit"] == 2 * 4
        assert labels == {"a": 2, "b": 2, "__other__": 4}
        assert colors == {"b": 1, "g": 1, "__other__": 2}
    finally:
        otelml.shutdown()


def test_threads_lose_nothing(runtime):
    predict = otelml.monitor(model="t", version="1")(proba_model)

    def worker(seed):
        rng = np.random.default_rng(seed)
        for i in range(300):
            predict(rng.normal(size=(1 + i % 3, 2)))

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    collected = []
    while any(t.is_alive() for t in threads):  # collect concurrently, as the export thread does
        collected.append(collect(runtime).get(("t", "1")))
    for t in threads:
        t.join()
    collected.append(collect(runtime).get(("t", "1")))
    snaps = [s for s in collected if s is not None]
    rows = sum(s.counters.get((semconv.METRIC_ROWS, None), 0) for s in snaps)
    values = sum(s.histograms[(semconv.METRIC_FEATURE_VALUE, "x0")].count for s in snaps if s.histograms)
    assert rows == values == 8 * (100 * 1 + 100 * 2 + 100 * 3)


def test_memory_stays_bounded_over_many_calls(runtime):
    predict = otelml.monitor(model="mem", version="1")(proba_model)
    rng = np.random.default_rng(3)
    for _ in range(20):
        predict(rng.normal(size=(BLOCK_ROWS, 2)))
    for _ in range(3 * BLOCK_ROWS):
        predict(rng.normal(size=2))
    recorder = runtime.registry.recorder("mem", "1", "classification")
    assert all(len(parts) <= 64 for parts in recorder._histograms.values())
    assert recorder._block.shape == (BLOCK_ROWS, 2)
    assert len(runtime.predictions._entries) <= runtime.predictions.max_calls


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_records_on_its_own(runtime):
    predict = otelml.monitor(model="fork", version="1")(proba_model)
    predict(np.ones((3, 2)))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: parent's data is not repeated, new calls count
        try:
            predict(np.ones((2, 2)))
            snap = collect(otelml.sdk.runtime.default_runtime())[("fork", "1")]
            os.write(write, str(snap.counters[(semconv.METRIC_ROWS, None)]).encode())
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 100) == b"2"
    os.waitpid(pid, 0)
    assert collect(runtime)[("fork", "1")].counters[(semconv.METRIC_ROWS, None)] == 3


def test_hostile_inputs_are_capped_before_any_work(runtime, dropped):
    """A 100,000-column row, giant names and giant labels: bounded work, counted drops, result unchanged."""
    wide = pd.DataFrame(np.ones((1, 100_000)), columns=[f"c{i}" for i in range(100_000)])
    long_name = "n" * 10_000
    predict = otelml.monitor(model="hostile", version="1", output="labels")(lambda x: np.array(["L" * 100_000]))
    assert predict(wide)[0] == "L" * 100_000
    snap = collect(runtime)[("hostile", "1")]
    assert len({k[1] for k in snap.histograms if k[0] == semconv.METRIC_FEATURE_VALUE}) == 512
    assert dropped()["cardinality_limit"] == 100_000 - 512
    assert {len(k[1]) for k in snap.counters if k[0] == semconv.METRIC_PREDICTIONS} == {128}
    otelml.monitor(model="names", version="1")(lambda x: np.zeros(1))(
        pd.DataFrame({long_name: [1.0], "c": ["v" * 5000]})
    )
    snap = collect(runtime)[("names", "1")]
    assert {k[1] for k in snap.histograms if k[0] == semconv.METRIC_FEATURE_VALUE} == {"n" * 128}
    assert {len(k[1][1]) for k in snap.counters if k[0] == semconv.METRIC_FEATURE_CATEGORY} == {128}


def test_a_huge_batch_is_recorded_exactly(runtime):
    predict = otelml.monitor(model="big", version="1", task="regression")(lambda x: x[:, 0])
    x = np.random.default_rng(0).normal(size=(1_000_000, 4))
    assert predict(x) is not None
    snap = collect(runtime)[("big", "1")]
    assert snap.histograms[(semconv.METRIC_FEATURE_VALUE, "x3")].count == 1_000_000
    assert snap.histograms[(semconv.METRIC_PREDICTION_VALUE, None)].count == 1_000_000


def test_a_monitor_given_its_own_runtime_records_and_counts_there(runtime, spans, dropped):
    own = otelml.sdk.runtime.Runtime(otelml.sdk.runtime.Settings(tracer_provider=spans[0], export_metrics=False))
    threads = threading.active_count()
    assert own.pump is None and threading.active_count() == threads  # making a runtime starts nothing
    own.start()
    predict = otelml.monitor(model="own", version="1", runtime=own)(proba_model)
    predict(np.ones((3, 2)))
    predict(np.zeros((2, 2, 2)))  # unreadable: counted in the runtime's own health
    assert collect(own)[("own", "1")].counters[(semconv.METRIC_ROWS, None)] == 3
    assert ("own", "1") not in collect(runtime)
    assert own.health.totals() == {"bad_input": 1} and dropped() == {}


def test_a_capped_layout_is_planned_once(runtime, dropped, monkeypatch):
    plans = []
    real = otelml.sdk.features.CapPlan
    monkeypatch.setattr(otelml.sdk.features, "CapPlan", lambda *a: plans.append(a) or real(*a))
    predict = otelml.monitor(model="wide", version="1", output="labels")(lambda x: np.array(["a"] * len(x)))
    wide = pd.DataFrame(np.ones((2, 600)), columns=[f"c{i}" for i in range(600)])
    for _ in range(5):
        predict(wide)
    assert len(plans) == 1 and dropped()["cardinality_limit"] == 5 * 2 * (600 - 512)
    assert collect(runtime)[("wide", "1")].counters[(semconv.METRIC_ROWS, None)] == 10

"""A failure injected at every stage of the SDK, and a collector that is dead or black-holed while exports run.

Stages: the caller id (an identity whose ``str()`` and ``hash()`` raise, a caller function that raises), the inputs
and their fingerprints (inputs whose conversion raises, a fingerprinter that raises), the span (a tracer whose
``start_span`` raises, a span whose every method raises), recording (a recorder and an output reader that raise) and
export (an exporter that raises, one that hangs). For each: the wrapped model's return value and exceptions are
exactly those of the model (the same objects), the fault costs each call at most one try (no retry, no loop, at most
one log line per reason), the call never waits for an export, and the failure is counted in otelml's own health (the
``otelml.telemetry.dropped`` counts, by reason).

Most of these faults cannot be produced for real (a tracer or a recorder does not raise on demand), so they are made
by monkeypatching otelml's and OpenTelemetry's internals; that is the only reason internals are touched here.
"""

import socket
import threading
import time

import numpy as np
import pytest
from opentelemetry.sdk.metrics.export import MetricExportResult

import otelml
from otelml import semconv
from otelml.sdk import hashing, outputs, recorder
from otelml.sdk.runtime import Runtime, default_runtime
from otelml.testing import OTLPSink, free_port

from .conftest import collect

RESULT = np.array([[0.25, 0.75]])
X = np.array([[1.0, 2.0]])
CALLS = 20


class Boom(Exception):
    """The injected fault."""


class Halt(BaseException):
    """A model's exception that is not an ``Exception`` (as KeyboardInterrupt): it must pass through unchanged."""


class Counted:
    """A fault that counts how often it was tried."""

    def __init__(self):
        self.tries = 0

    def __call__(self, *args, **kwargs):
        self.tries += 1
        raise Boom("injected")


class Unprintable:
    """A caller identity whose ``str()`` and ``hash()`` raise."""

    def __init__(self, fault: Counted):
        self.fault = fault

    def __str__(self):
        return self.fault()

    def __hash__(self):
        return self.fault()


class Unconvertible:
    """An input value numpy cannot convert: its ``__array__`` raises."""

    def __init__(self, fault: Counted):
        self.fault = fault

    def __array__(self, *args, **kwargs):
        return self.fault()


class RaisingTracer:
    def __init__(self, fault):
        self.fault = fault

    def start_span(self, *args, **kwargs):
        return self.fault()


class RaisingProvider:
    def __init__(self, tracer):
        self.tracer = tracer

    def get_tracer(self, *args, **kwargs):
        return self.tracer


class RaisingSpan:
    """A span that is recording and whose every method raises."""

    def __init__(self, fault):
        self.fault = fault

    def is_recording(self):
        return True

    def get_span_context(self):
        return self.fault()

    set_attribute = set_attributes = record_exception = set_status = end = get_span_context


@pytest.fixture
def no_export():
    """otelml configured without metric export (``configure(**more)``); shut down after the test."""
    yield lambda **more: otelml.configure(export_metrics=False, **({"create_tracer_provider": False} | more))
    otelml.shutdown()


def transparent(predict, state, args, kwargs) -> int:
    """Call ``predict`` CALLS times answering, then raising an Exception and a BaseException: the same objects come
    back as from the model itself, the exception with the model's frame in its traceback. Returns the calls made."""
    for _ in range(CALLS):
        assert predict(*args, **kwargs) is RESULT
    for error in (Boom("the model's own"), Halt()):
        state["raise"] = error
        with pytest.raises(type(error)) as caught:
            predict(*args, **kwargs)
        assert caught.value is error
        assert any(entry.name == "model" for entry in caught.traceback)
    state["raise"] = None
    return CALLS + 2


def a_model(**options):
    """A monitored model answering RESULT (or raising ``state["raise"]``), and its state."""
    state = {"raise": None}

    def model(x, user=None):
        if state["raise"] is not None:
            raise state["raise"]
        return RESULT

    return otelml.monitor(model="m", version="1", **options)(model), state


def once_per_reason(caplog) -> None:
    """The fault logged at most once per reason (rate-limited): no traceback formatted on every call."""
    reasons = [r.args[0] for r in caplog.records if r.getMessage().startswith("otelml dropped telemetry")]
    assert len(reasons) == len(set(reasons)), reasons


def fault_caller_identity(fault, monkeypatch, configure):
    configure()
    return {"caller": "user"}, {"user": Unprintable(fault)}, "bad_input", True, 1


def fault_caller_function(fault, monkeypatch, configure):
    configure()
    return {"caller": fault}, {"user": "alice"}, "bad_input", True, 1


def fault_input_conversion(fault, monkeypatch, configure):
    configure()
    return {}, {"x": [Unconvertible(fault)]}, "internal_error", False, 1


def fault_fingerprinter(fault, monkeypatch, configure):
    configure()
    monkeypatch.setattr(hashing.Fingerprinter, "fingerprints", fault)
    return {"fingerprint_bits": 64}, {}, "internal_error", False, 1


def fault_span_start(fault, monkeypatch, configure):
    configure(tracer_provider=RaisingProvider(RaisingTracer(fault)))
    return {}, {}, "internal_error", False, 1


def fault_span_methods(fault, monkeypatch, configure):
    configure(tracer_provider=RaisingProvider(RaisingTracer(lambda *a, **k: RaisingSpan(fault))))
    return {}, {}, "internal_error", False, 2  # once recording the call, once ending the span


def fault_recorder(fault, monkeypatch, configure):
    configure()
    monkeypatch.setattr(recorder.Recorder, "record", fault)
    monkeypatch.setattr(recorder.Recorder, "record_row", fault)
    return {}, {}, "internal_error", False, 1


def fault_output_reader(fault, monkeypatch, configure):
    configure()
    monkeypatch.setattr(outputs, "read_outputs", fault)
    monkeypatch.setattr(outputs, "read_row", fault)
    return {}, {}, "internal_error", False, 1


@pytest.mark.parametrize(
    "inject",
    [
        fault_caller_identity,
        fault_caller_function,
        fault_input_conversion,
        fault_fingerprinter,
        fault_span_start,
        fault_span_methods,
        fault_recorder,
        fault_output_reader,
    ],
    ids=lambda f: f.__name__.removeprefix("fault_"),
)
def test_a_fault_at_any_stage_leaves_the_call_as_it_was_and_is_counted(
    inject, monkeypatch, no_export, dropped, caplog, spans
):
    fault = Counted()
    options, call_kwargs, reason, still_recorded, per_call = inject(
        fault, monkeypatch, lambda **more: no_export(**({"tracer_provider": spans[0]} | more))
    )
    predict, state = a_model(**options)
    args = () if "x" in call_kwargs else (X,)
    calls = transparent(predict, state, args, call_kwargs)
    assert 1 <= fault.tries <= per_call * calls  # never retried: the bound on what the fault costs a call
    assert 1 <= dropped().get(reason, 0) and sum(dropped().values()) <= per_call * calls, dropped()
    once_per_reason(caplog)
    if still_recorded:  # a caller id that cannot be had costs the id, never the call's telemetry
        snapshot = collect(default_runtime())[("m", "1")]
        assert snapshot.counters[(semconv.METRIC_ROWS, None)] == calls
        assert all(semconv.CALLER_ID not in s.attributes for s in spans[1].get_finished_spans())


def test_a_caller_context_whose_identity_cannot_be_read_is_counted_not_raised(no_export, dropped):
    """``with otelml.caller(x)`` used to raise into the application when ``str(x)`` raised."""
    no_export()
    fault = Counted()
    predict, _ = a_model()
    with otelml.caller(Unprintable(fault)):
        assert predict(X) is RESULT
    assert fault.tries == 1 and dropped() == {"bad_input": 1}
    assert collect(default_runtime())[("m", "1")].counters[(semconv.METRIC_ROWS, None)] == 1


def test_call_record_with_inputs_that_raise_is_counted_not_raised(no_export, dropped):
    no_export()
    fault = Counted()
    with otelml.monitor(model="m", version="1") as call:
        assert call.record(inputs=[Unconvertible(fault)], outputs=RESULT) is call
    assert fault.tries == 1 and dropped().get("internal_error") == 1


class BrokenExporter:
    """A metric exporter that raises, or (``hang``) blocks until released; counts its exports."""

    def __init__(self, hang: bool = False):
        self.hang = hang
        self.exports = 0
        self.inside = threading.Event()
        self.release = threading.Event()

    def export(self, request, *args, **kwargs):
        self.exports += 1
        if not self.hang:
            raise Boom("exporter")
        self.inside.set()
        self.release.wait(120)
        return MetricExportResult.FAILURE

    def shutdown(self, *args, **kwargs):
        pass


def configure_with(monkeypatch, exporter, **settings):
    monkeypatch.setattr(Runtime, "_metric_exporter", lambda self: exporter)
    return otelml.configure(create_tracer_provider=False, export_interval_s=0.05, **settings)


def test_an_exporter_that_raises_costs_the_calls_nothing_and_is_counted(monkeypatch, dropped):
    exporter = BrokenExporter()
    runtime = configure_with(monkeypatch, exporter, shutdown_timeout_s=5)
    try:
        predict, state = a_model()
        deadline = time.monotonic() + 60
        while exporter.exports < 3 and time.monotonic() < deadline:
            transparent(predict, state, (X,), {})
            time.sleep(0.02)
        assert exporter.exports >= 3  # exports ran, and raised, while the calls went on
        assert runtime.pump._thread.is_alive()  # the export thread outlived its failures
        assert dropped().get("internal_error", 0) >= 3
    finally:
        assert not otelml.shutdown()
    assert dropped().get("export_failed", 0) >= 1  # what was never sent is counted as dropped at shutdown


def test_a_hanging_exporter_never_blocks_a_call_and_shutdown_is_bounded(monkeypatch, dropped):
    exporter = BrokenExporter(hang=True)
    configure_with(monkeypatch, exporter, shutdown_timeout_s=0.5)
    try:
        predict, state = a_model()
        assert predict(X) is RESULT
        assert exporter.inside.wait(60)  # the export thread is now stuck inside the exporter
        transparent(predict, state, (X,), {})
        assert not exporter.release.is_set()  # every call above returned while the exporter was still blocked
        assert not otelml.shutdown()  # returns after shutdown_timeout_s with the exporter still blocked
        assert not exporter.release.is_set() and exporter.exports == 1
        assert dropped().get("export_failed", 0) >= 1  # the calls' telemetry never sent, counted
    finally:
        exporter.release.set()
        otelml.shutdown()


def thread_cpu_per_call(predict, seconds: float, pending=None) -> tuple:
    """Call ``predict`` for ``seconds``; ``(CPU seconds of this thread per call, calls, all returned RESULT,
    largest backlog of unsent requests seen)``."""
    calls = returned = backlog = 0
    cpu = time.thread_time()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        returned += predict(X) is RESULT
        calls += 1
        if pending is not None:
            backlog = max(backlog, len(pending()))
        time.sleep(0.0005)  # a busy service, not a spin: leaves the export thread (and the machine) room
    return (time.thread_time() - cpu) / calls, calls, returned == calls, backlog


@pytest.mark.parametrize("collector", ["no listener", "black hole"])
def test_a_dead_collector_with_exports_running_costs_the_calls_nothing(collector, dropped, monkeypatch):
    """Exports every 0.2 s to a port nobody listens on, or to a black hole (connections the kernel accepts and
    nobody answers), for several seconds: many exports run and fail meanwhile. The calls all return their value, at
    a thread CPU cost per call within 3x of the same calls with a live collector measured just before; the backlog
    of unsent requests stays at its cap (lowered to 2 here so that it is reached), what falls off it is counted, and
    shutdown takes no longer than shutdown_timeout_s."""
    seconds, cap, shutdown_timeout_s = 4.0, 2, 1.0
    with OTLPSink() as sink:
        otelml.configure(endpoint=sink.http_endpoint, create_tracer_provider=False, export_interval_s=0.2)
        predict, _ = a_model()
        live_cpu, live_calls, live_ok, _ = thread_cpu_per_call(predict, seconds)
        assert otelml.shutdown() and live_ok
        assert sum(p.as_int for _, _, p in sink.metric_points(semconv.METRIC_CALLS)) == live_calls

    hole = socket.socket()
    try:
        if collector == "black hole":
            hole.bind(("127.0.0.1", 0))
            hole.listen(1024)  # never accepted: each export waits for its time-out
            port = hole.getsockname()[1]
        else:
            port = free_port()
        runtime = otelml.configure(
            endpoint=f"http://127.0.0.1:{port}",
            create_tracer_provider=False,
            export_interval_s=0.2,
            timeout_s=0.5,
            shutdown_timeout_s=shutdown_timeout_s,
        )
        runtime.pump._max_pending = cap
        exporter = runtime.pump.exporter
        attempts = []
        real_export = exporter.export
        monkeypatch.setattr(exporter, "export", lambda *a, **k: attempts.append(1) or real_export(*a, **k))
        predict, _ = a_model()
        dead_cpu, dead_calls, dead_ok, backlog = thread_cpu_per_call(
            predict, seconds, pending=lambda: runtime.pump._pending
        )
        assert dead_ok, "a call did not return its value"
        assert len(attempts) >= 3, attempts  # exports ran, and failed, while the calls went on
        assert backlog <= cap + 1 and len(runtime.pump._pending) <= cap + 1  # bounded: the cap, and one collecting
        assert dropped().get("export_failed", 0) > 0, dropped()  # the oldest intervals fell off, counted
        assert dead_cpu <= 3 * live_cpu, (dead_cpu, live_cpu, dead_calls, live_calls)
        started = time.monotonic()
        assert not otelml.shutdown()
        took = time.monotonic() - started
        assert took <= shutdown_timeout_s + 2.0, took  # generous for a loaded machine
    finally:
        hole.close()
        otelml.shutdown()

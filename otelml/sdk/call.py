"""One monitored call, from start to end: a fresh :class:`Call` per call, and the :class:`Binding` of a monitor to
the runtime it records into.

Start: read the inputs as features (``features``), hash the caller (``callers``, ``hashing``), fingerprint the rows,
start the span. End: read the outputs (``outputs``), put the row's label and confidence on the span, sample an
exemplar, hand everything to the model's recorder (``recorder``), remember the predicted labels for late outcomes
(``outcomes``), end the span. Each stage runs inside a guard (``health``): whatever fails inside otelml is counted
and skipped, and never reaches the caller; exceptions of the model itself are recorded on the span.
"""

from __future__ import annotations

import contextvars
import random
import threading
import time

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from .. import semconv
from .callers import identity_guard, identity_text
from .features import InputError
from .hashing import MAX_FINGERPRINT_ROWS, FingerprintSlot
from .health import BAD_INPUT, BAD_OUTPUT, CARDINALITY, INTERNAL_ERROR
from .outputs import OutputError
from .recorder import Exemplar

EXEMPLAR_EVERY_NS = 1_000_000_000  # keep at most one exemplar candidate per monitor per second
_last_call: contextvars.ContextVar = contextvars.ContextVar("otelml_last_call", default=None)
_OPEN_CALL = otel_context.create_key("otelml-call")  # the call of a ``with otelml.monitor(...)`` block


def last_prediction_id() -> str | None:
    """The prediction id of the latest monitored call in this thread or task (the call's span id, in hex)."""
    call = _last_call.get()
    return None if call is None else call.prediction_id


class RateGate:
    """Lets one event through per ``every_ns`` nanoseconds; thread-safe (the pass is claimed under a lock)."""

    def __init__(self, every_ns: int):
        self.every_ns = every_ns
        self._last = 0
        self._lock = threading.Lock()

    def due(self, now_ns: int) -> bool:
        """Whether a pass may be had now (a cheap check without the lock)."""
        return now_ns - self._last >= self.every_ns

    def claim(self, now_ns: int) -> bool:
        """Take the pass, if no other thread took it meanwhile."""
        with self._lock:
            if now_ns - self._last < self.every_ns:
                return False
            self._last = now_ns
            return True


class Binding:
    """What one monitor uses of one runtime: its recorder, the tracer, the health and its guards, the fingerprinter.
    Made once per monitor and runtime, never changed (its fingerprinter is thread-safe)."""

    __slots__ = (
        "spec",
        "runtime",
        "recorder",
        "tracer",
        "health",
        "max_features",
        "fingerprints",
        "start_guard",
        "end_guard",
        "span_guard",
        "record_guard",
        "input_guard",
        "output_guard",
        "caller_guard",
        "identity_guard",
    )

    def __init__(self, spec, runtime):
        self.spec = spec
        self.runtime = runtime
        self.recorder = runtime.registry.recorder(spec.model, spec.version, spec.task)
        self.tracer = runtime.tracer
        self.health = health = runtime.health
        self.max_features = self.recorder.limits.max_features
        bits = spec.fingerprint_bits
        self.fingerprints = FingerprintSlot(runtime.caller_key, bits) if bits else None
        model = f"model {spec.model!r}: "
        self.start_guard = health.guard(INTERNAL_ERROR, "starting a monitored call failed: ", exc_info=True)
        self.end_guard = health.guard(INTERNAL_ERROR, "recording a monitored call failed: ", exc_info=True)
        self.span_guard = health.guard(INTERNAL_ERROR, "ending a span failed: ", exc_info=True)
        self.record_guard = health.guard(INTERNAL_ERROR, "recording a call failed: ", exc_info=True)
        self.input_guard = health.guard(BAD_INPUT, model, errors=InputError, show=str)
        self.output_guard = health.guard(BAD_OUTPUT, model, errors=(OutputError, ValueError, TypeError), show=str)
        self.caller_guard = health.guard(BAD_INPUT, "the caller function failed: ")
        self.identity_guard = identity_guard(health)

    def features(self, x):
        """``(names, numeric, categorical)`` within the feature cap; ``(None, None, None)`` (counted) if unreadable."""
        with self.input_guard:
            names, numeric, categorical, dropped = self.spec.features.read(x, self.max_features)
            if dropped:
                self.health.drop(
                    CARDINALITY,
                    f"model {self.spec.model!r}: more than {self.max_features} features; the rest are not recorded",
                    count=dropped,
                )
            return names, numeric, categorical
        return None, None, None

    def start(self, x, identity, keep: bool = False) -> Call | None:
        """Start a call with inputs ``x`` (or ``None``) from caller ``identity``; ``None`` (counted) if that fails.
        ``keep``: the call goes into the context it attaches, for :func:`leave` (the ``with`` form)."""
        with self.start_guard:
            start_ns = time.perf_counter_ns()
            spec = self.spec
            names = numeric = categorical = None
            if x is not None:
                names, numeric, categorical = self.features(x)
            attributes = spec.attributes.copy()
            if numeric is not None:
                attributes[semconv.BATCH_SIZE] = numeric.shape[0]
            identity = identity_text(identity, self.identity_guard)  # one that cannot be read costs the caller id only
            if identity is not None:
                attributes[semconv.CALLER_ID] = self.runtime.caller_hasher().id(identity)
            if self.fingerprints is not None and numeric is not None and 0 < numeric.shape[0] <= MAX_FINGERPRINT_ROWS:
                prints = self.fingerprints.fingerprints(names, numeric)
                if prints:
                    attributes[semconv.INPUT_FINGERPRINT] = prints[0] if len(prints) == 1 else prints
            span = self.tracer.start_span(spec.span_name, attributes=attributes)
            call = Call(self, span, start_ns, names, numeric, categorical)
            context = trace.set_span_in_context(span)
            if keep:
                context = otel_context.set_value(_OPEN_CALL, call, context)
            call.token = otel_context.attach(context)
            return call
        return None


def enter(binding: Binding | None, identity) -> Call:
    """Start the call of a ``with`` block; if otelml cannot, a call that records nothing."""
    call = None if binding is None else binding.start(None, identity, keep=True)
    if call is None:
        call = Call(None, trace.INVALID_SPAN, time.perf_counter_ns(), None, None, None)
        call.recorded = True
        call.token = otel_context.attach(otel_context.set_value(_OPEN_CALL, call))
    return call


def leave(exc) -> None:
    """End the call of the innermost ``with`` block, found in the context its start attached."""
    call = otel_context.get_value(_OPEN_CALL)
    if call is None:
        return
    if not call.recorded:
        call.end(None, exc, outputs_read=True)
    else:
        otel_context.detach(call.token)


class Call:
    """One monitored call; what ``with otelml.monitor(...) as call`` gives you."""

    __slots__ = (
        "binding",
        "span",
        "token",
        "start_ns",
        "names",
        "numeric",
        "categorical",
        "outputs",
        "recorded",
        "_id",
    )

    def __init__(self, binding, span, start_ns, names, numeric, categorical):
        self.binding = binding  # None for a call otelml failed to start
        self.span = span
        self.token = None
        self.start_ns = start_ns
        self.names = names
        self.numeric = numeric
        self.categorical = categorical
        self.outputs = None
        self.recorded = False
        self._id = None

    @property
    def monitor(self):
        """The monitor this call belongs to (``None`` if otelml failed to start it)."""
        return None if self.binding is None else self.binding.spec

    @property
    def prediction_id(self) -> str:
        """Identifies this call's predictions for :func:`otelml.record_outcome`; equal to the span id in hex."""
        if self._id is None:
            span_id = self.span.get_span_context().span_id
            self._id = f"{span_id or random.getrandbits(64):016x}"
        return self._id

    def record(self, inputs=None, outputs=None) -> Call:
        """Tell the call its inputs and outputs (context-manager use); either may be given separately."""
        binding = self.binding
        if binding is None:
            return self
        with binding.record_guard:
            if inputs is not None:
                self.names, self.numeric, self.categorical = binding.features(inputs)
            if outputs is not None:
                self.outputs = binding.spec.outputs.outputs(outputs)
        return self

    def end(self, result, exc, outputs_read: bool = False) -> None:
        """Record the call's result (or the model's exception ``exc``) and end its span."""
        binding = self.binding
        try:
            with binding.end_guard:
                self._record(binding, result, exc, outputs_read)
        finally:
            self.recorded = True
            with binding.span_guard:
                if self.token is not None:
                    otel_context.detach(self.token)
                self.span.end()

    def _record(self, binding: Binding, result, exc, outputs_read: bool) -> None:
        duration = (time.perf_counter_ns() - self.start_ns) / 1e9
        spec, span, numeric = binding.spec, self.span, self.numeric
        error_type = row = None
        outputs = self.outputs
        if exc is not None:
            error_type = type(exc).__qualname__
            if span.is_recording():
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                span.set_attribute(semconv.ERROR_TYPE, error_type)
        elif not outputs_read:
            with binding.output_guard:
                if numeric is not None and numeric.shape[0] == 1:
                    row = spec.outputs.row(result)
                if row is None:
                    outputs = spec.outputs.outputs(result)
        if outputs is not None and numeric is not None and outputs.rows != numeric.shape[0]:
            binding.health.drop(
                BAD_OUTPUT,
                f"model {spec.model!r}: {numeric.shape[0]} input rows but {outputs.rows} outputs",
                count=outputs.rows,
            )
            outputs = None
        if row is None and outputs is not None and outputs.rows == 1:
            row = outputs.first_row()
        recorder = binding.recorder
        exemplar = None
        if span.is_recording():
            if outputs_read and numeric is not None:
                span.set_attribute(semconv.BATCH_SIZE, numeric.shape[0])
            if row is not None:
                span.set_attributes(_row_attributes(row))
            if spec.exemplars.due(time.time_ns()):
                exemplar = self._exemplar(spec.exemplars, duration, row, error_type)
        if row is not None or (outputs is None and numeric is not None and numeric.shape[0] == 1):
            recorder.record_row(self.names, numeric, self.categorical, row, duration, error_type, exemplar)
            predicted = None if row is None else row[0]
        else:
            recorder.record(self.names, numeric, self.categorical, outputs, duration, error_type, exemplar)
            predicted = None if outputs is None else outputs.predicted_labels()
        if predicted is not None:
            binding.runtime.predictions.remember(self, recorder, predicted)
        _last_call.set(self)

    def _exemplar(self, gate: RateGate, duration, row, error_type):
        now = time.time_ns()
        context = self.span.get_span_context()
        if not context.trace_flags.sampled or not gate.claim(now):
            return None
        first_row = {}
        if self.numeric is not None and self.numeric.shape[0]:
            first_row = dict(zip(self.names, self.numeric[0].tolist()))
        confidence = None if row is None else row[1]
        return Exemplar(context.trace_id, context.span_id, now, first_row, duration, confidence, error_type)


def _row_attributes(row) -> dict:
    label, confidence, _, _ = row
    attributes = {}
    if label is not None:
        attributes[semconv.PREDICTION_LABEL] = str(label)
    if confidence is not None:
        attributes[semconv.PREDICTION_CONFIDENCE] = confidence
    return attributes


class Bindings:
    """A monitor's :class:`Binding` to the runtime it last ran under. Thread-safe: the binding is read without a
    lock and replaced whole under one."""

    def __init__(self, spec):
        self._spec = spec
        self._binding: Binding | None = None
        self._lock = threading.Lock()

    def get(self, runtime) -> Binding | None:
        """The binding to ``runtime``; ``None`` (counted) if it cannot be made."""
        binding = self._binding
        if binding is not None and binding.runtime is runtime:
            return binding
        with runtime.health.guard(INTERNAL_ERROR, "starting a monitored call failed: ", exc_info=True):
            with self._lock:
                binding = self._binding
                if binding is None or binding.runtime is not runtime:
                    binding = self._binding = Binding(self._spec, runtime)
                return binding
        return None

"""``@otelml.monitor``: a decorator and context manager for predict calls, and ``otelml.instrument`` for models.

Each call gets a span (``predict {model}``) and adds its inputs and outputs to the model's recorder, which turns them
into histograms and counters with numpy. Whatever goes wrong inside otelml is counted and logged (rate-limited) and
never reaches the caller; exceptions of the model itself are recorded on the span and re-raised unchanged.

Example:
    >>> import numpy as np, otelml
    >>> @otelml.monitor(model="demo", version="1")
    ... def predict(x):
    ...     return np.array([[0.2, 0.8]] * len(x))
    >>> predict(np.zeros((3, 2))).shape
    (3, 2)
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import random
import time

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from . import _callers, _config, _health, semconv
from ._inputs import MAX_NAME_LENGTH, InputError, cap_features, to_features
from ._outputs import KINDS, OutputError, read_outputs, read_row
from ._recorder import Exemplar

_EXEMPLAR_EVERY_NS = 1_000_000_000  # keep at most one exemplar candidate per model per second
_last_call: contextvars.ContextVar = contextvars.ContextVar("otelml_last_call", default=None)
_open_calls: contextvars.ContextVar = contextvars.ContextVar("otelml_open_calls", default=())


def last_prediction_id() -> str | None:
    """The prediction id of the latest monitored call in this thread or task (the call's span id, in hex)."""
    call = _last_call.get()
    return None if call is None else call.prediction_id


class Call:
    """One monitored call; what ``with otelml.monitor(...) as call`` gives you."""

    __slots__ = (
        "monitor",
        "span",
        "token",
        "start_ns",
        "names",
        "numeric",
        "categorical",
        "outputs",
        "recorded",
        "binding",
        "_id",
    )

    def __init__(self, monitor, span, token, start_ns, names, numeric, categorical, binding=None):
        self.monitor = monitor
        self.binding = binding  # (runtime, recorder, tracer) when the call started
        self.span = span
        self.token = token
        self.start_ns = start_ns
        self.names = names
        self.numeric = numeric
        self.categorical = categorical
        self.outputs = None
        self.recorded = False
        self._id = None

    @property
    def prediction_id(self) -> str:
        """Identifies this call's predictions for :func:`otelml.record_outcome`; equal to the span id in hex."""
        if self._id is None:
            span_id = self.span.get_span_context().span_id
            self._id = f"{span_id or random.getrandbits(64):016x}"
        return self._id

    def record(self, inputs=None, outputs=None) -> "Call":
        """Tell the call its inputs and outputs (context-manager use); either may be given separately."""
        try:
            if inputs is not None:
                monitor = self.monitor
                self.names, self.numeric, self.categorical = monitor._features(
                    inputs, self.binding[1].limits.max_features
                )
            if outputs is not None:
                self.outputs = self.monitor._read_outputs(outputs)
        except Exception as exc:  # never raise into the caller
            _health.health.drop(_health.INTERNAL_ERROR, f"recording a call failed: {exc!r}", exc_info=True)
        return self


class monitor:
    """Monitor predict calls of one model version: ``@monitor(model=...)`` or ``with monitor(model=...) as call:``.

    Parameters:
        model: model name, an attribute on every span and metric point.
        version: model version (recommended: alerts and references are kept per version).
        feature_names: names of the input columns when the input does not carry them.
        task: ``"classification"``, ``"regression"`` or ``"scoring"``.
        output: how to read the return value: ``"auto"``, ``"labels"``, ``"proba"``, ``"scores"``, ``"values"``.
        classes: class labels in the order of probability columns (default: the column index).
        inputs: the argument that holds the features, by position or name (default: the first one after ``self``).
        caller: who calls, for per-caller attack detection: an argument name, or a callable of the call's arguments;
            ``with otelml.caller(...)`` works too. Only a keyed hash goes out (see ``otelml._callers``).
        fingerprint_bits: if set (a multiple of 8, e.g. 64), a nearness-preserving fingerprint of each input row
            goes on the span (calls of up to 64 rows), never the input itself.
    """

    def __init__(
        self,
        model: str,
        version: str | None = None,
        *,
        feature_names=None,
        task: str = semconv.TASK_CLASSIFICATION,
        output: str = "auto",
        classes=None,
        inputs: int | str | None = None,
        caller=None,
        fingerprint_bits: int = 0,
    ):
        if not isinstance(model, str) or not model:
            raise ValueError("model must be a non-empty string")
        if task not in semconv.TASKS:
            raise ValueError(f"task must be one of {semconv.TASKS}, got {task!r}")
        if output not in KINDS:
            raise ValueError(f"output must be one of {KINDS}, got {output!r}")
        self.model = model
        self.version = None if version is None else str(version)
        self.task = task
        self.output = output
        self.classes = None if classes is None else list(classes)
        self.feature_names = None if feature_names is None else tuple(str(n) for n in feature_names)
        self.inputs = inputs
        if fingerprint_bits < 0 or fingerprint_bits % 8:
            raise ValueError("fingerprint_bits must be 0 (off) or a positive multiple of 8")
        if caller is not None and not (isinstance(caller, str) or callable(caller)):
            raise ValueError("caller must be an argument name or a callable")
        self.caller = caller
        self.fingerprint_bits = fingerprint_bits
        self._fingerprinter = (None, None)  # (runtime, Fingerprinter)
        self.span_name = f"{semconv.SPAN_NAME_PREFIX} {model}"
        self._attributes = {semconv.MODEL_NAME: model, semconv.MODEL_TASK: task}
        if self.version is not None:
            self._attributes[semconv.MODEL_VERSION] = self.version
        self._bound = (None, None, None)  # runtime, recorder, tracer
        self._guessed_output = None
        self._last_exemplar_ns = 0
        self._checked_names = None

    # --- decorator ------------------------------------------------------------------------------------------------
    def __call__(self, fn):
        position, name = _input_argument(fn, self.inputs)

        def features_of(args, kwargs):
            if position < len(args):
                return args[position]
            return kwargs.get(name) if name is not None else None

        caller_of = _caller_reader(fn, self.caller)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args, **kwargs):
                call = self._begin(features_of(args, kwargs), caller_of(args, kwargs))
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    self._end(call, None, exc)
                    raise
                self._end(call, result, None)
                return result

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            call = self._begin(features_of(args, kwargs), caller_of(args, kwargs))
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                self._end(call, None, exc)
                raise
            self._end(call, result, None)
            return result

        return wrapper

    # --- context manager ------------------------------------------------------------------------------------------
    def __enter__(self) -> Call:
        call = self._begin(None, _callers.current_caller())
        if call is None:  # otelml failed to start: hand out a call that records nothing
            call = Call(self, trace.INVALID_SPAN, None, time.perf_counter_ns(), None, None, None)
            call.recorded = True
        _open_calls.set(_open_calls.get() + (call,))
        return call

    def __exit__(self, exc_type, exc, tb):
        stack = _open_calls.get()
        if stack:
            _open_calls.set(stack[:-1])
            call = stack[-1]
            if not call.recorded:
                self._end(call, None, exc, outputs_read=True)
        return False

    # --- the work -------------------------------------------------------------------------------------------------
    def _binding(self):
        runtime = _config.runtime()
        bound = self._bound
        if bound[0] is not runtime:
            recorder = runtime.registry.recorder(self.model, self.version, self.task)
            bound = self._bound = (runtime, recorder, runtime.tracer)
        return bound

    def _features(self, x, max_features):
        """``to_features`` within the feature cap; ``(None, None, None)`` (counted) when unreadable."""
        try:
            names, numeric, categorical = to_features(x, self.feature_names)
        except InputError as exc:
            _health.health.drop(_health.BAD_INPUT, f"model {self.model!r}: {exc}")
            return None, None, None
        if names is not self._checked_names:  # the same tuple again and again on the hot path
            if len(names) + len(categorical) > max_features or any(len(n) > MAX_NAME_LENGTH for n in names):
                names, numeric, categorical = self._cap(names, numeric, categorical, max_features)
            else:
                self._checked_names = names
        return names, numeric, categorical

    def _fingerprints(self, runtime, names, numeric) -> list:
        if not numeric.shape[1]:
            return []
        owner, printer = self._fingerprinter
        if owner is not runtime or printer.names != names:
            printer = _callers.Fingerprinter(runtime.caller_key(), names, self.fingerprint_bits)
            self._fingerprinter = (runtime, printer)
        return printer.fingerprints(numeric)

    def _cap(self, names, numeric, categorical, max_features):
        names, numeric, categorical, dropped = cap_features(names, numeric, categorical, max_features)
        if dropped:
            _health.health.drop(
                _health.CARDINALITY,
                f"model {self.model!r}: more than {max_features} features; the rest are not recorded",
                count=dropped,
            )
        return names, numeric, categorical

    def _read_outputs(self, y):
        kind = self.output if self.output != "auto" else self._guessed_output
        if kind is None:
            out = read_outputs(y, "auto", self.task, self.classes)
            self._guessed_output = _kind_of(out)
            return out
        return read_outputs(y, kind, self.task, self.classes)

    def _read_row(self, y):
        """``(label, confidence, margin, value)`` of a one-row result, or ``None`` until the output kind is known."""
        kind = self.output if self.output != "auto" else self._guessed_output
        return None if kind is None else read_row(y, kind, self.classes)

    def _begin(self, x, identity=None) -> Call | None:
        try:
            start_ns = time.perf_counter_ns()
            binding = self._binding()
            names = numeric = categorical = None
            if x is not None:
                names, numeric, categorical = self._features(x, binding[1].limits.max_features)
            attributes = self._attributes.copy()
            if numeric is not None:
                attributes[semconv.BATCH_SIZE] = numeric.shape[0]
            identity = _callers.identity_text(identity)  # one that cannot be read costs the caller id, not the call
            if identity is not None:
                attributes[semconv.CALLER_ID] = binding[0].caller_hasher().id(identity)
            if self.fingerprint_bits and numeric is not None and 0 < numeric.shape[0] <= _callers.MAX_FINGERPRINT_ROWS:
                prints = self._fingerprints(binding[0], names, numeric)
                if prints:
                    attributes[semconv.INPUT_FINGERPRINT] = prints[0] if len(prints) == 1 else prints
            span = binding[2].start_span(self.span_name, attributes=attributes)
            token = otel_context.attach(trace.set_span_in_context(span))
            return Call(self, span, token, start_ns, names, numeric, categorical, binding)
        except Exception as exc:
            _health.health.drop(_health.INTERNAL_ERROR, f"starting a monitored call failed: {exc!r}", exc_info=True)
            return None

    def _end(self, call: Call | None, result, exc, outputs_read: bool = False) -> None:
        if call is None:
            return
        try:
            duration = (time.perf_counter_ns() - call.start_ns) / 1e9
            span = call.span
            numeric = call.numeric
            error_type = row = None
            outputs = call.outputs
            if exc is not None:
                error_type = type(exc).__qualname__
                if span.is_recording():
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, str(exc)))
                    span.set_attribute(semconv.ERROR_TYPE, error_type)
            elif not outputs_read:
                try:
                    if numeric is not None and numeric.shape[0] == 1:
                        row = self._read_row(result)
                    if row is None:
                        outputs = self._read_outputs(result)
                except (OutputError, ValueError, TypeError) as err:
                    _health.health.drop(_health.BAD_OUTPUT, f"model {self.model!r}: {err}")
            if outputs is not None and numeric is not None and outputs.rows != numeric.shape[0]:
                _health.health.drop(
                    _health.BAD_OUTPUT,
                    f"model {self.model!r}: {numeric.shape[0]} input rows but {outputs.rows} outputs",
                    count=outputs.rows,
                )
                outputs = None
            if row is None and outputs is not None and outputs.rows == 1:
                row = outputs.first_row()
            runtime, recorder, _ = call.binding
            exemplar = None
            if span.is_recording():
                if outputs_read and numeric is not None:
                    span.set_attribute(semconv.BATCH_SIZE, numeric.shape[0])
                if row is not None:
                    span.set_attributes(_row_attributes(row))
                if time.time_ns() - self._last_exemplar_ns >= _EXEMPLAR_EVERY_NS:
                    exemplar = self._exemplar(span, call, duration, row, error_type)
            if row is not None or (outputs is None and numeric is not None and numeric.shape[0] == 1):
                recorder.record_row(call.names, numeric, call.categorical, row, duration, error_type, exemplar)
                predicted = None if row is None else row[0]
            else:
                recorder.record(call.names, numeric, call.categorical, outputs, duration, error_type, exemplar)
                predicted = None if outputs is None else outputs.predicted_labels()
            if predicted is not None:
                runtime.predictions.remember(call, recorder, predicted)
            _last_call.set(call)
        except Exception as err:
            _health.health.drop(_health.INTERNAL_ERROR, f"recording a monitored call failed: {err!r}", exc_info=True)
        finally:
            call.recorded = True
            try:
                if call.token is not None:
                    otel_context.detach(call.token)
                call.span.end()
            except Exception as err:
                _health.health.drop(_health.INTERNAL_ERROR, f"ending a span failed: {err!r}", exc_info=True)

    def _exemplar(self, span, call, duration, row, error_type):
        now = time.time_ns()
        context = span.get_span_context()
        if not context.trace_flags.sampled:
            return None
        self._last_exemplar_ns = now
        first_row = {}
        if call.numeric is not None and call.numeric.shape[0]:
            first_row = dict(zip(call.names, call.numeric[0].tolist()))
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


def _caller_reader(fn, caller):
    """A function of the call's arguments that returns the caller identity (or the ``otelml.caller`` context)."""
    if callable(caller):

        def from_callable(args, kwargs):
            try:
                return caller(*args, **kwargs)
            except Exception as exc:
                _health.health.drop(_health.BAD_INPUT, f"the caller function failed: {exc!r}")
                return None

        return from_callable
    if isinstance(caller, str):
        position, name = _input_argument(fn, caller)

        def from_argument(args, kwargs):
            return args[position] if position < len(args) else kwargs.get(name)

        return from_argument
    return lambda args, kwargs: _callers.current_caller()


def _kind_of(out) -> str:
    if out.confidence is not None:
        return "proba"
    if out.values is not None:
        return "scores" if out.label_index is not None else "values"
    return "labels"


def _input_argument(fn, inputs):
    """Position and name of the argument that holds the features."""
    try:
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
    except (TypeError, ValueError):
        params = []
    if isinstance(inputs, int):
        return inputs, params[inputs].name if inputs < len(params) else None
    if isinstance(inputs, str):
        for i, p in enumerate(params):
            if p.name == inputs:
                return i, inputs
        raise ValueError(f"{getattr(fn, '__qualname__', fn)} has no argument named {inputs!r}")
    skip = 1 if params and params[0].name in ("self", "cls") else 0
    return skip, params[skip].name if skip < len(params) else None


_METHOD_OUTPUTS = {"predict": None, "predict_proba": "proba", "decision_function": "scores"}


class MonitoredModel:
    """A model whose ``predict``, ``predict_proba`` and ``decision_function`` are monitored; everything else is
    passed through to the wrapped model (``.model``)."""

    def __init__(self, model, monitors: dict):
        self.__dict__["model"] = model
        self.__dict__["_methods"] = {name: monitors[name](getattr(model, name)) for name in monitors}

    def __getattr__(self, name):
        methods = self.__dict__["_methods"]
        if name in methods:
            return methods[name]
        return getattr(self.__dict__["model"], name)

    def __setattr__(self, name, value):
        setattr(self.__dict__["model"], name, value)

    def __repr__(self):
        return f"MonitoredModel({self.__dict__['model']!r})"


def instrument(estimator, model: str, version: str | None = None, **options) -> MonitoredModel:
    """Wrap an object with ``predict`` / ``predict_proba`` / ``decision_function`` (scikit-learn estimators and
    pipelines, or look-alikes) so every call of those methods is monitored. Options are those of :class:`monitor`.

    Class labels come from ``classes_`` and feature names from ``feature_names_in_`` when the estimator has them.
    """
    found = [name for name in _METHOD_OUTPUTS if callable(getattr(estimator, name, None))]
    if not found:
        raise TypeError(f"{type(estimator).__name__} has none of {sorted(_METHOD_OUTPUTS)}")
    if "classes" not in options and getattr(estimator, "classes_", None) is not None:
        options["classes"] = list(estimator.classes_)
    if "feature_names" not in options and getattr(estimator, "feature_names_in_", None) is not None:
        options["feature_names"] = list(estimator.feature_names_in_)
    task = options.get("task", semconv.TASK_CLASSIFICATION)
    monitors = {}
    for name in found:
        kind = _METHOD_OUTPUTS[name] or ("labels" if task == semconv.TASK_CLASSIFICATION else "values")
        monitors[name] = monitor(model, version, **{**options, "output": options.get("output", kind), "inputs": 0})
    return MonitoredModel(estimator, monitors)

"""``@otelml.monitor``: a decorator and context manager for predict calls, and ``otelml.instrument`` for models.

A :class:`monitor` is a spec: what to monitor and how, never changed once made. Decorating a function, or entering
``with``, makes a fresh :class:`~otelml.sdk.call.Call` per call (``otelml.sdk.call``), so calls share no mutable
state. What a monitor keeps across its calls lives in small thread-safe objects it owns: the feature reader (the
checked feature names, the cap plan), the output reader (the guessed output kind), the exemplar rate gate, and the
binding to the runtime it records into (recorder, tracer, health, fingerprinter).

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

import functools
import inspect

from .. import semconv
from . import call as calls
from .call import Bindings, Call, RateGate
from .callers import current_caller
from .features import FeatureReader
from .outputs import KINDS, OutputReader
from .runtime import Runtime, default_runtime


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
            ``with otelml.caller(...)`` works too. Only a keyed hash goes out (see ``otelml.sdk.hashing``).
        fingerprint_bits: if set (a multiple of 8, e.g. 64), a nearness-preserving fingerprint of each input row
            goes on the span (calls of up to 64 rows), never the input itself.
        runtime: the :class:`~otelml.sdk.runtime.Runtime` to record into, started (default: the one
            ``otelml.configure()`` set up, see ``otelml.sdk.runtime.default_runtime``).
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
        runtime: Runtime | None = None,
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
        self.features = FeatureReader(feature_names)
        self.feature_names = self.features.feature_names
        self.outputs = OutputReader(output, task, classes)
        self.classes = self.outputs.classes
        self.inputs = inputs
        if fingerprint_bits < 0 or fingerprint_bits % 8:
            raise ValueError("fingerprint_bits must be 0 (off) or a positive multiple of 8")
        if caller is not None and not (isinstance(caller, str) or callable(caller)):
            raise ValueError("caller must be an argument name or a callable")
        self.caller = caller
        self.fingerprint_bits = fingerprint_bits
        self.runtime = runtime
        self.span_name = f"{semconv.SPAN_NAME_PREFIX} {model}"
        self.attributes = {semconv.MODEL_NAME: model, semconv.MODEL_TASK: task}
        if self.version is not None:
            self.attributes[semconv.MODEL_VERSION] = self.version
        self.exemplars = RateGate(calls.EXEMPLAR_EVERY_NS)
        self._bindings = Bindings(self)
        self._frozen = True

    def __setattr__(self, name, value):
        if getattr(self, "_frozen", False):
            raise AttributeError(f"a monitor does not change once made; make another (setting {name!r})")
        super().__setattr__(name, value)

    def binding(self):
        """The :class:`~otelml.sdk.call.Binding` to this monitor's runtime (given, else the default one); ``None``
        (counted) if it cannot be made."""
        return self._bindings.get(self.runtime or default_runtime())

    # --- decorator ------------------------------------------------------------------------------------------------
    def __call__(self, fn):
        position, name = _input_argument(fn, self.inputs)
        caller_of = _caller_reader(fn, self.caller)

        bindings, runtime = self._bindings, self.runtime

        def start(args, kwargs):
            binding = bindings.get(runtime or default_runtime())
            if binding is None:
                return None
            x = args[position] if position < len(args) else kwargs.get(name) if name is not None else None
            return binding.start(x, caller_of(args, kwargs, binding))

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args, **kwargs):
                call = start(args, kwargs)
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    if call is not None:
                        call.end(None, exc)
                    raise
                if call is not None:
                    call.end(result, None)
                return result

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            call = start(args, kwargs)
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                if call is not None:
                    call.end(None, exc)
                raise
            if call is not None:
                call.end(result, None)
            return result

        return wrapper

    # --- context manager ------------------------------------------------------------------------------------------
    def __enter__(self) -> Call:
        return calls.enter(self.binding(), current_caller())

    def __exit__(self, exc_type, exc, tb):
        calls.leave(exc)
        return False


def _caller_reader(fn, caller):
    """A function of the call's arguments (and its binding) that returns the caller identity (or the
    ``otelml.caller`` context)."""
    if callable(caller):

        def from_callable(args, kwargs, binding):
            with binding.caller_guard:
                return caller(*args, **kwargs)
            return None

        return from_callable
    if isinstance(caller, str):
        position, name = _input_argument(fn, caller)

        def from_argument(args, kwargs, binding):
            return args[position] if position < len(args) else kwargs.get(name)

        return from_argument
    return lambda args, kwargs, binding: current_caller()


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

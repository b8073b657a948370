"""The runtime a monitor records into, and ``otelml.configure()`` / ``otelml.shutdown()``: one-line set-up that
follows OpenTelemetry's environment.

- Resource: ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` (through the SDK's ``Resource.create``), or the
  resource of the tracer provider the application already set.
- Transport: ``OTEL_EXPORTER_OTLP_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_{TRACES,METRICS}_PROTOCOL`` choose ``grpc`` or
  ``http/protobuf`` (the default, as the OTLP exporter specification says); endpoints, headers, TLS, compression
  and timeouts are read by the OpenTelemetry exporters themselves from ``OTEL_EXPORTER_OTLP_*``.
- Spans: if the application already set a global tracer provider, otelml uses it; otherwise it creates an SDK
  provider with a batch span processor and an OTLP span exporter, and sets it as the global one.
- Metrics: always through otelml's own collector thread and OTLP metric exporter (see the README for why), every
  ``OTEL_METRIC_EXPORT_INTERVAL`` milliseconds (default 10 s), with delta temporality and exponential histograms.

Calling ``configure()`` again with the same arguments does nothing; with other arguments it replaces the previous
set-up after flushing it.

A :class:`Runtime` holds what a monitor records into: the tracer, the recorders, the recent predictions, the health
counters, the metrics thread. Making one has no side effects; :meth:`Runtime.start` creates the tracer provider (and
makes it the global one if asked) and starts the metrics thread. The process has one default runtime,
:func:`default_runtime`: the one ``configure()`` set up and started, else a fallback that records but exports
nothing. Monitors use it unless given a runtime of their own (``otelml.monitor(..., runtime=...)``). The default
runtimes share one set of health counters, so what was dropped before ``configure()`` (or under the set-up it
replaced) is still exported.
"""

from __future__ import annotations

import atexit
import os
import threading
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from .. import histogram, semconv
from .._version import __version__
from . import export, hashing, outcomes
from .health import Health
from .outcomes import PredictionStore
from .recorder import Limits, Registry

DEFAULT_INTERVAL_S = 10.0


@dataclass(frozen=True)
class Settings:
    """Everything ``configure()`` accepts; each ``None`` falls back to OpenTelemetry's environment variables."""

    service_name: str | None = None
    resource_attributes: tuple = ()
    endpoint: str | None = None  # base endpoint for both signals, e.g. http://localhost:4318
    protocol: str | None = None  # "grpc" or "http/protobuf"
    headers: tuple = ()
    timeout_s: float | None = None
    export_interval_s: float | None = None
    shutdown_timeout_s: float = 5.0  # longest shutdown() (and exit) waits for a last export
    tracer_provider: object = None
    create_tracer_provider: bool = True  # when the application set none
    set_global_tracer_provider: bool = True
    export_metrics: bool = True
    caller_key: str | None = None  # key for caller ids and input fingerprints (else OTELML_CALLER_KEY)
    limits: Limits = field(default_factory=Limits)
    layout: histogram.Layout = histogram.DEFAULT_LAYOUT

    def __post_init__(self):
        t = self.shutdown_timeout_s
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t < float("inf"):
            raise ValueError(f"shutdown_timeout_s must be a finite number of seconds, at least 0, got {t!r}")

    @classmethod
    def from_overrides(cls, **overrides) -> "Settings":
        unknown = set(overrides) - set(cls.__dataclass_fields__)
        if unknown:
            raise TypeError(
                f"configure() got unknown settings {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}"
            )
        for name in ("resource_attributes", "headers"):
            if isinstance(overrides.get(name), dict):
                overrides[name] = tuple(sorted(overrides[name].items()))
        return cls(**overrides)


def _protocol(signal: str, settings: Settings) -> str:
    return (
        settings.protocol
        or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()


def _span_exporter(settings: Settings):
    protocol = _protocol("TRACES", settings)
    kwargs = {}
    if settings.headers:
        kwargs["headers"] = dict(settings.headers)
    if settings.timeout_s is not None:
        kwargs["timeout"] = settings.timeout_s
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        if settings.endpoint:
            kwargs["endpoint"] = settings.endpoint
            kwargs["insecure"] = settings.endpoint.startswith("http://")
        return OTLPSpanExporter(**kwargs)
    if protocol in ("http/protobuf", "http"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        if settings.endpoint:
            kwargs["endpoint"] = settings.endpoint.rstrip("/") + "/v1/traces"
        return OTLPSpanExporter(**kwargs)
    raise ValueError(f"unsupported OTLP protocol {protocol!r}; use 'grpc' or 'http/protobuf'")


class Runtime:
    """What a monitor records into: the tracer, the recorders, recent predictions, health, the metrics thread.

    ``Runtime(settings)`` has no side effects; :meth:`start` sets it going. Use ``configure()`` for the default one.
    """

    def __init__(self, settings: Settings | None = None, *, health: Health | None = None):
        self.settings = settings = settings or Settings()
        self.health = health or Health()
        self.registry = Registry(settings.limits, settings.layout, self.health)
        self.predictions = PredictionStore()
        self._caller_key = self._caller_hasher = None
        self._tracer = None
        self.owned_tracer_provider = None
        self.resource = None
        self.pump = None
        self.started = False

    @property
    def tracer(self):
        """The tracer of the given tracer provider, else of the global one (a proxy until the application sets one);
        after :meth:`start`, of the provider it created, if it did."""
        if self._tracer is None:
            provider = self.settings.tracer_provider or trace.get_tracer_provider()
            self._tracer = provider.get_tracer(semconv.SCOPE_NAME, __version__)
        return self._tracer

    def start(self) -> "Runtime":
        """Create the SDK tracer provider when the application has none (and ``create_tracer_provider``), make it the
        global one (``set_global_tracer_provider``), start the metrics thread (``export_metrics``). Once; start a
        runtime before monitors use it. Returns the runtime."""
        if self.started:
            return self
        self.started = True
        settings = self.settings
        provider = settings.tracer_provider or trace.get_tracer_provider()
        if (
            settings.tracer_provider is None
            and settings.create_tracer_provider
            and isinstance(provider, trace.ProxyTracerProvider)
        ):
            provider = TracerProvider(resource=self._resource(None))
            provider.add_span_processor(BatchSpanProcessor(_span_exporter(settings)))
            self.owned_tracer_provider = provider
            if settings.set_global_tracer_provider:
                trace.set_tracer_provider(provider)
        self._tracer = provider.get_tracer(semconv.SCOPE_NAME, __version__)
        self.resource = self._resource(getattr(provider, "resource", None))
        if settings.export_metrics:
            interval = settings.export_interval_s or export.env_interval_s(DEFAULT_INTERVAL_S)
            self.pump = export.MetricsPump(
                self.registry, self._metric_exporter, dict(self.resource.attributes), __version__, interval, self.health
            )
            self.pump.start()
        return self

    def _metric_exporter(self):
        settings = self.settings
        return export.metric_exporter(
            _protocol("METRICS", settings), settings.endpoint, dict(settings.headers) or None, settings.timeout_s
        )

    def _resource(self, existing):
        extra = dict(self.settings.resource_attributes)
        if self.settings.service_name:
            extra["service.name"] = self.settings.service_name
        base = existing if existing is not None else Resource.create()
        return base.merge(Resource(extra)) if extra else base

    def caller_key(self) -> bytes:
        """The key of caller ids and input fingerprints (made on first use)."""
        if self._caller_key is None:
            self._caller_key = hashing.caller_key(self.settings.caller_key)
        return self._caller_key

    def caller_hasher(self) -> hashing.CallerHasher:
        if self._caller_hasher is None:
            self._caller_hasher = hashing.CallerHasher(self.caller_key())
        return self._caller_hasher

    def force_flush(self) -> bool:
        """Export spans and metrics now; ``True`` if everything was delivered."""
        ok = True
        if self.owned_tracer_provider is not None:
            ok = self.owned_tracer_provider.force_flush() and ok
        if self.pump is not None:
            ok = self.pump.flush() and ok
        return ok

    def shutdown(self) -> bool:
        """Stop exporting, sending what is left once, for at most ``shutdown_timeout_s`` seconds: a backend that is
        down or does not answer costs an application that stops or restarts no more than that. What is still unsent
        then is counted as dropped (``export_failed``)."""
        result: list = []
        worker = threading.Thread(target=lambda: result.append(self._shutdown()), name="otelml-shutdown", daemon=True)
        worker.start()
        worker.join(self.settings.shutdown_timeout_s)
        if result:
            return result[0]
        if self.pump is not None:
            self.pump.abandon(f"shutdown took longer than {self.settings.shutdown_timeout_s} s")
        return False

    def _shutdown(self) -> bool:
        ok = True
        if self.pump is not None:
            ok = self.pump.shutdown() and ok
        if self.owned_tracer_provider is not None:
            self.owned_tracer_provider.shutdown()
        return ok

    def record_outcome(self, actual, **which) -> bool:
        """:func:`record_outcome` into this runtime."""
        return outcomes.record_outcome(self.registry, self.predictions, self.health, actual, **which)

    def after_fork(self) -> None:
        self.registry.after_fork()
        self.predictions.after_fork()
        if self.pump is not None:
            self.pump.after_fork()


class _Default:
    """The process's one default runtime: the one ``configure()`` set up, else a fallback that records but exports
    nothing (made with no side effects, so it is made at import)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.active: Runtime | None = None
        self.fallback = Runtime(Settings(export_metrics=False, create_tracer_provider=False))
        self.exit_hook = False

    def after_fork_in_child(self) -> None:
        self.lock = threading.Lock()
        for rt in (self.active, self.fallback):
            if rt is not None:
                rt.after_fork()


_default = _Default()


def default_runtime() -> Runtime:
    """The runtime monitors use unless given one: the one ``configure()`` set up, else one that records but exports
    no metrics."""
    return _default.active or _default.fallback


def configure(**overrides) -> Runtime:
    """Set otelml up; see the module docstring and the README for the settings.

    Example:
        >>> rt = configure(export_metrics=False, create_tracer_provider=False)
        >>> configure(export_metrics=False, create_tracer_provider=False) is rt
        True
        >>> shutdown()
        True
    """
    settings = Settings.from_overrides(**overrides)
    with _default.lock:
        current = _default.active
        if current is not None and current.settings == settings:
            return current
        if current is not None:
            current.shutdown()
        _default.active = Runtime(settings, health=_default.fallback.health).start()
        if not _default.exit_hook:
            atexit.register(shutdown)
            _default.exit_hook = True
        return _default.active


def shutdown() -> bool:
    """Flush and stop what ``configure()`` created; ``True`` if everything was delivered."""
    with _default.lock:
        current, _default.active = _default.active, None
    return current.shutdown() if current is not None else True


def force_flush() -> bool:
    """Export everything recorded so far, now; ``True`` if it was delivered."""
    current = _default.active
    return current.force_flush() if current is not None else True


def record_outcome(actual, *, prediction_id=None, model=None, version=None, predicted=None) -> bool:
    """Record the true label(s) of earlier predictions; returns whether they were counted. Never raises.

    Either ``prediction_id`` (from :func:`otelml.last_prediction_id` or ``call.prediction_id``; ``actual`` holds one
    label per row of that call), or ``model`` (and ``version``) with ``predicted``.

    Example:
        >>> import otelml
        >>> otelml.record_outcome("spam", model="filter", version="3", predicted="ham")
        True
    """
    return default_runtime().record_outcome(
        actual, prediction_id=prediction_id, model=model, version=version, predicted=predicted
    )


os.register_at_fork(after_in_child=_default.after_fork_in_child)

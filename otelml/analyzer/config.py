"""Analyzer settings: command-line flags over a config file (TOML, or YAML where PyYAML is installed) over defaults.

A config file holds the same names as the flags, with underscores, at the top level or under ``[analyzer]``;
limits go under ``[analyzer.limits]`` (or ``limits:``)::

    [analyzer]
    otlp_grpc = "0.0.0.0:4317"
    window = 60
    [analyzer.limits]
    max_models = 200
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields

from .attacks import AttackConfig
from .state import Limits, StateConfig


@dataclass(frozen=True)
class AnalyzerConfig:
    otlp_grpc: str = "127.0.0.1:4317"
    otlp_http: str = "127.0.0.1:4318"
    http: str = "127.0.0.1:8080"
    state_dir: str = "./otelml-state"
    window: float = 60.0  # seconds per tumbling window
    lateness: float = 30.0  # seconds a window waits for late points after the data moved past it
    idle_timeout: float = 120.0  # seconds of silence after which windows close anyway
    warmup: int = 5000  # observations per feature before a live-traffic reference is pinned
    max_inflight: int = 64  # requests being ingested at once; past it, receivers answer "retry later"
    max_wait: float = 1.0  # seconds a request may wait for its turn to be ingested; past it, "retry later"
    checkpoint_interval: float = 10.0  # seconds between checkpoints while data flows
    false_alarm_days: float = 30.0  # each detector: at most one false alarm per model per this many days
    min_effect: float = 0.05  # drift alarms need at least this W1/sd (or total variation for categories)
    drift_scan_share: float = 0.75  # input/output drift: the mean-shift scan's share of the false-alarm budget
    baseline_windows: int = 30  # windows a model version's own baseline takes (errors, latency, label mix, ...)
    confidence_threshold: float = 0.7  # the confidence rule: mean confidence below this ...
    confidence_minutes: float = 5.0  # ... for this many minutes of windows alarms
    low_confidence_threshold: float = 0.6  # the low-confidence test: the share of predictions at or below this
    alerts_endpoint: str | None = None  # OTLP endpoint for alert log records (else OTEL_EXPORTER_OTLP_*_ENDPOINT)
    alerts_protocol: str | None = None  # grpc or http/protobuf (else OTEL_EXPORTER_OTLP_[LOGS_]PROTOCOL)
    alerts_min_severity: str = "info"  # info, warning, critical
    alerts_format: str = "text"  # the log body: "text" (a sentence) or "ocsf" (an OCSF Detection Finding, JSON)
    alert_resolve_windows: int = 10  # windows without an alarm before an alert resolves
    alert_update_windows: int = 10  # at most one update record per this many windows of an ongoing alert
    tls_cert: str | None = None
    tls_key: str | None = None
    auth_token: str | None = None  # bearer token required on every listener (also OTELML_AUTH_TOKEN)
    limits: Limits = field(default_factory=Limits)
    attacks: AttackConfig = field(default_factory=AttackConfig)  # per-caller attack tests ([attacks] in the file)

    def state_config(self) -> StateConfig:
        return StateConfig(self.window, self.lateness, self.idle_timeout, self.limits)

    def __post_init__(self):
        for f in fields(self):
            _check_type(f.name, f.type, getattr(self, f.name))
        if (self.tls_cert is None) != (self.tls_key is None):
            missing, given = ("tls_key", "tls_cert") if self.tls_key is None else ("tls_cert", "tls_key")
            raise ValueError(f"{missing} is not set: TLS needs both tls_cert and tls_key, and only {given} is")
        for name in ("warmup", "max_inflight", "baseline_windows", "alert_resolve_windows", "alert_update_windows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        for name in ("checkpoint_interval", "false_alarm_days", "confidence_minutes", "max_wait"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        # The state's own check names all three rules at once; this one names the setting that breaks its rule.
        for name, ok, rule in (
            ("window", self.window > 0, "positive"),
            ("lateness", self.lateness >= 0, "at least 0"),
            ("idle_timeout", self.idle_timeout > 0, "positive"),
        ):
            if not ok:
                raise ValueError(f"{name} must be {rule} (seconds), got {getattr(self, name)!r}")
        self.state_config()
        between = self.false_alarm_days * 86400 / self.window
        if between < MIN_WINDOWS_PER_FALSE_ALARM:
            raise ValueError(
                f"false_alarm_days = {self.false_alarm_days!r} at window = {self.window!r} s allows a false alarm "
                f"every {between:.3g} windows; it must be at least {MIN_WINDOWS_PER_FALSE_ALARM}: false_alarm_days "
                f"must be at least {MIN_WINDOWS_PER_FALSE_ALARM * self.window / 86400:.3g} at this window"
            )
        if self.min_effect < 0:
            raise ValueError(f"min_effect must be at least 0, got {self.min_effect!r}")
        if not 0.0 <= self.drift_scan_share <= 1.0:
            raise ValueError(f"drift_scan_share must be a number in [0, 1], got {self.drift_scan_share!r}")
        for name in ("confidence_threshold", "low_confidence_threshold"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in (0, 1], got {getattr(self, name)!r}")
        if self.alerts_format not in ("text", "ocsf"):
            raise ValueError(f"alerts_format must be 'text' or 'ocsf', got {self.alerts_format!r}")


MIN_WINDOWS_PER_FALSE_ALARM = 10  # a smaller A makes every detector's threshold meaningless (ln A near or below 0)
_KINDS = {"float": ((int, float), "a number"), "int": ((int,), "a whole number"), "str": ((str,), "a string")}


def _check_type(name: str, annotation: str, value) -> None:
    """ValueError unless ``value`` fits the setting's annotation (``float``, ``int``, ``str``, optionally ``| None``;
    booleans are not numbers, and numbers must be finite)."""
    kind = annotation.removesuffix(" | None")
    if kind not in _KINDS or (value is None and annotation.endswith("| None")):
        return
    types, text = _KINDS[kind]
    if isinstance(value, bool) or not isinstance(value, types):
        raise ValueError(f"{name} must be {text}, got {value!r}")
    if kind == "float" and not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")


def _read_file(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ValueError(f"config: cannot read {path}: {exc.strerror or exc}") from None
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise ValueError(f"{path}: YAML config files need PyYAML (pip install pyyaml), or use TOML") from None
        data = yaml.safe_load(raw) or {}
    else:
        import tomllib

        try:
            data = tomllib.loads(raw.decode())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"config: {path} is not valid TOML: {exc}") from None
    return data.get("analyzer", data)


def load(path: str | None = None, **overrides) -> AnalyzerConfig:
    """Defaults, then the file at ``path``, then ``overrides`` (flags); ``None`` overrides are ignored."""
    values = _read_file(path) if path else {}
    known = {f.name for f in fields(AnalyzerConfig)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown settings in {path}: {sorted(unknown)}")
    tables = {}
    for name, cls in (("limits", Limits), ("attacks", AttackConfig)):
        tables[name] = values.pop(name, {}) or {}
        bad = set(tables[name]) - {f.name for f in fields(cls)}
        if bad:
            raise ValueError(f"unknown {name} settings in {path}: {sorted(bad)}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    if not values.get("auth_token") and os.environ.get("OTELML_AUTH_TOKEN"):
        values["auth_token"] = os.environ["OTELML_AUTH_TOKEN"]
    return AnalyzerConfig(
        **values, limits=Limits(**tables["limits"]), attacks=AttackConfig.from_table(tables["attacks"])
    )

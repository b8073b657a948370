"""What every detector shares: a typed, frozen result and a small base class.

A detector is pure: closed windows and the reference in, findings out; no I/O and no clock of its own. Its
configuration is a frozen dataclass, its working state private; ``reset()`` clears the state, and the whole object
pickles, so the analyzer's checkpoints carry detectors across restarts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..references import Reference
from ..windows import ClosedWindow

DRIFT = "drift"
PERFORMANCE = "performance"
INTEGRITY = "integrity"
AVAILABILITY = "availability"
ADVERSARIAL = "adversarial"

INFO, WARNING, CRITICAL = "info", "warning", "critical"


@dataclass(frozen=True)
class Finding:
    """One detector's verdict on one window (and feature, where it applies)."""

    kind: str  # drift, performance, integrity, availability, adversarial
    detector: str
    model: str
    version: str
    feature: str | None
    statistic: str  # what ``value`` is, e.g. "log e-value"
    value: float
    threshold: float
    alarm: bool
    window_start_unix_nano: int
    window_end_unix_nano: int
    e_value: float | None = None
    p_value: float | None = None
    effect: str | None = None  # name of the effect size, e.g. "wasserstein/sd"
    effect_size: float | None = None
    severity: str = INFO
    trace_ids: tuple = ()  # example calls: (trace id, span id) hex pairs from the window's exemplars
    details: dict = field(default_factory=dict)


class Detector:
    """Base class: subclasses set ``name`` and ``kind`` and implement ``update`` and ``reset``."""

    name = "detector"
    kind = DRIFT

    def update(self, window: ClosedWindow, reference: Reference | None) -> list[Finding]:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    @classmethod
    def _unit_test_params(cls) -> dict:
        """Configuration the contract tests use (small thresholds so that they run fast)."""
        return {}

    @classmethod
    def _unit_test_reference(cls, rng) -> Reference | None:
        """The reference the contract tests use, if the detector needs one."""
        return None

    @classmethod
    def _unit_test_window(cls, rng, index: int, changed: bool) -> ClosedWindow:
        """A window from the stationary stream, or (``changed``) from after a step change the detector must find."""
        raise NotImplementedError

    def _evidence(
        self,
        window: ClosedWindow,
        value: float,
        threshold: float,
        alarm: bool,
        effect: str,
        effect_size,
        severity: str,
        details: dict,
        feature=None,
        statistic="log e-value",
        e_value: float | None = None,
    ) -> Finding:
        """A finding of a sequential e-detector: ``value`` is the log statistic, ``threshold`` is ``ln A``;
        ``e_value`` defaults to ``exp(value)``."""
        return self._finding(
            window,
            feature=feature,
            statistic=statistic,
            value=value,
            threshold=threshold,
            alarm=alarm,
            e_value=math.exp(min(value, 700)) if e_value is None else e_value,
            effect=effect,
            effect_size=effect_size,
            severity=severity,
            details=details,
        )

    def _finding(self, window: ClosedWindow, **fields) -> Finding:
        trace_ids = tuple((e.trace_id, e.span_id) for e in window.exemplars if e.trace_id)[:3]
        return Finding(
            kind=self.kind,
            detector=self.name,
            model=window.model,
            version=window.version,
            window_start_unix_nano=window.start_unix_nano,
            window_end_unix_nano=window.end_unix_nano,
            trace_ids=trace_ids,
            **fields,
        )

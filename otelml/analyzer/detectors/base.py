"""What every detector shares: a typed, frozen result and a small base class.

A detector is pure: closed windows and the reference in, findings out; no I/O and no clock of its own. Its
configuration is frozen (a frozen dataclass: its ``config``, or the detector itself), its working state private and
mutable: ordinary attributes of a detector that is not a dataclass, or, in a frozen dataclass detector, a separate
state object made by :func:`state` (nothing ever sets an attribute of a frozen object). ``reset()`` clears the
state, and the whole object goes into the analyzer's checkpoints (``otelml.analyzer.store.codec``: plain data, arrays and the analyzer's own classes),
so detectors carry across restarts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ... import semconv
from ..references import Reference
from ..state.windows import ClosedWindow

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
    p_value: float | None = None  # the window's own test where there is one (chi-square for categories); alarms
    # come from the sequential statistic ``value``, not from it
    effect: str | None = None  # name of the effect size, e.g. "wasserstein/sd"
    effect_size: float | None = None
    severity: str = INFO
    trace_ids: tuple = ()  # example calls: (trace id, span id) hex pairs from the window's exemplars
    details: dict = field(default_factory=dict)

    @classmethod
    def on(cls, judged, **fields) -> Finding:
        """The one constructor of findings, window-fed and span-fed alike: ``judged`` is what was judged, anything
        with ``model``, ``version``, ``start_unix_nano`` and ``end_unix_nano`` (a closed window; for the per-caller
        tests, ``attacks.watch.Queries``: a caller's queries from the first of a suspicious run to the latest)."""
        return cls(
            model=judged.model,
            version=judged.version,
            window_start_unix_nano=judged.start_unix_nano,
            window_end_unix_nano=judged.end_unix_nano,
            **fields,
        )


def log_e_value(value: float) -> float:
    """The e-value of a log statistic, ``exp(value)`` kept finite."""
    return math.exp(min(value, 700))


class Detector:
    """Base class: subclasses set ``name`` and ``kind`` and implement ``update`` and ``reset``; ``example_metric``
    and ``example_order`` choose the example calls of their findings (``examples``)."""

    name = "detector"
    kind = DRIFT
    example_metric: str | None = None  # the histogram whose exemplars best show what the detector saw
    example_match: dict = {}  # attributes the example's stream must have: a value, or None for any value
    example_order = 0  # 1: its largest values first (slow calls), -1: its smallest (low confidence), 0: newest

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
        p_value: float | None = None,
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
            e_value=log_e_value(value) if e_value is None else e_value,
            p_value=p_value,
            effect=effect,
            effect_size=effect_size,
            severity=severity,
            details=details,
        )

    def _finding(self, window: ClosedWindow, **fields) -> Finding:
        feature = fields.get("feature") or next(iter(fields.get("details", {}).get("features", [])), None)
        match = {**self.example_match, **({semconv.FEATURE_NAME: feature} if feature else {})}
        trace_ids = examples(window.exemplars, self.example_metric, match, self.example_order)
        return Finding.on(window, kind=self.kind, detector=self.name, trace_ids=trace_ids, **fields)


def state(factory):
    """The field of a frozen dataclass detector that holds its working state: an object made by ``factory`` for each
    detector, mutable where the detector is not, and not part of its configuration (no ``__init__`` argument, left out
    of its ``repr``, equality and hash)."""
    return field(default_factory=factory, init=False, repr=False, compare=False)


def examples(exemplars, metric: str | None, match: dict, order: int = 0, at_most: int = 3) -> tuple:
    """Up to ``at_most`` distinct (trace id, span id) pairs of a window's exemplars (``(metric, extra attributes,
    exemplar)``): those of ``metric`` whose stream has the attributes ``match`` (a value, or None for any) first, in
    ``order`` of their values, then the rest of ``metric``'s, then the others, newest first (by time, then by place
    in ``exemplars``).

    Example:
        >>> from ..ingest.points import Exemplar
        >>> calls = [("d", (), Exemplar("a" * 32, "1" * 16, 1, 0.02)), ("d", (), Exemplar("b" * 32, "2" * 16, 2, 0.9)),
        ...          ("c", (), Exemplar("a" * 32, "1" * 16, 1, 0.7))]
        >>> [t[0][0] for t in examples(calls, "d", {}, order=1)]
        ['b', 'a']
    """

    def rank(item):
        position, (m, extra, e) = item
        attributes = dict(extra)
        fits = all(k in attributes if v is None else attributes.get(k) == v for k, v in match.items())
        value = e.value if e.value is not None and order else 0.0
        return (not (m == metric and fits), m != metric, -order * value, -e.time_unix_nano, -position)

    chosen: list = []
    for _, (_, _, e) in sorted(enumerate(exemplars), key=rank):
        pair = (e.trace_id, e.span_id)
        if e.trace_id and pair not in chosen:
            chosen.append(pair)
    return tuple(chosen[:at_most])

"""What the analyzer's decoders hand to its state: plain, validated data points, independent of the wire format.

A decoder turns one OTLP export request (protobuf or JSON) into a :class:`Decoded`: the points it accepted and a
count, with reasons, of those it rejected. Points carry their stream identity (:class:`StreamKey`) and their
temporality; turning cumulative points into deltas is the state's job, not the decoder's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ...histogram import ExpHistogram

# Resource attributes that tell replicas apart; other resource attributes are not part of a stream's identity.
IDENTIFYING_RESOURCE_ATTRIBUTES = ("service.name", "service.namespace", "service.instance.id", "host.name")


class StreamKey(NamedTuple):
    """Identity of one time series: resource, scope, metric name and point attributes (sorted key/value pairs)."""

    resource: tuple
    scope: str
    metric: str
    attributes: tuple

    def attribute(self, name: str, default=None):
        for key, value in self.attributes:
            if key == name:
                return value
        return default


@dataclass(frozen=True)
class Exemplar:
    trace_id: str  # 32 lower-case hex digits, or "" when absent
    span_id: str  # 16 lower-case hex digits, or ""
    time_unix_nano: int
    value: float | None


@dataclass(frozen=True, eq=False)
class ExplicitHistogram:
    """An explicit-bucket histogram: ``len(counts) == len(bounds) + 1``; bucket i holds (bounds[i-1], bounds[i]]."""

    bounds: tuple
    counts: np.ndarray
    count: int
    sum: float | None
    min: float | None
    max: float | None


@dataclass(eq=False, slots=True)
class Point:
    """One data point of a stream.

    ``kind`` is ``"exponential"`` (``value`` is an :class:`otelml.histogram.ExpHistogram`), ``"explicit"``
    (:class:`ExplicitHistogram`), ``"sum"`` (an int or float; ``monotonic`` says whether it only grows) or
    ``"gauge"`` (an int or float). ``cumulative`` is False for delta temporality (and for gauges). Treated as
    immutable (not frozen only because frozen dataclasses are seven times slower to create).
    """

    key: StreamKey
    kind: str
    start_unix_nano: int
    time_unix_nano: int
    cumulative: bool
    value: ExpHistogram | ExplicitHistogram | int | float
    monotonic: bool = False
    exemplars: tuple = ()


@dataclass(frozen=True)
class SpanSummary:
    """What the analyzer keeps of a span (more joins with per-caller detection)."""

    resource: tuple
    name: str
    trace_id: str
    span_id: str
    start_unix_nano: int
    end_unix_nano: int
    attributes: dict
    error: bool


@dataclass
class Decoded:
    """The result of decoding one export request."""

    points: list = field(default_factory=list)
    spans: list = field(default_factory=list)
    rejected: int = 0  # data points (or spans) rejected
    errors: list = field(default_factory=list)  # one message per distinct reason, for partial success

    def reject(self, message: str, count: int = 1) -> None:
        self.rejected += count
        if message not in self.errors and len(self.errors) < 20:
            self.errors.append(message)

    @property
    def error_message(self) -> str:
        return "; ".join(self.errors)

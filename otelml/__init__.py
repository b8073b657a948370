"""otelml: OpenTelemetry-native monitoring of machine-learning models in production.

Decorate a predict function, and every call emits a span and aggregated OTLP metrics (latency, confidence, feature
distributions as exponential histograms) to the OpenTelemetry Collector or any OTLP endpoint.

Example:
    >>> import numpy as np, otelml
    >>> rt = otelml.configure(export_metrics=False, create_tracer_provider=False)
    >>> @otelml.monitor(model="iris", version="1", feature_names=["a", "b"])
    ... def predict(x):
    ...     return np.tile([0.1, 0.9], (len(x), 1))
    >>> predict(np.ones((4, 2))).shape
    (4, 2)
    >>> otelml.last_prediction_id() is not None
    True
    >>> otelml.shutdown()
    True
"""

from ._version import __version__
from .sdk.call import Call, last_prediction_id
from .sdk.callers import caller
from .sdk.monitor import MonitoredModel, instrument, monitor
from .sdk.runtime import configure, force_flush, record_outcome, shutdown

__all__ = [
    "Call",
    "MonitoredModel",
    "__version__",
    "caller",
    "configure",
    "force_flush",
    "instrument",
    "last_prediction_id",
    "monitor",
    "record_outcome",
    "shutdown",
]

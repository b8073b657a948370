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

from ._callers import caller
from ._config import configure, force_flush, shutdown
from ._monitor import Call, MonitoredModel, instrument, last_prediction_id, monitor
from ._predictions import record_outcome
from ._version import __version__

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

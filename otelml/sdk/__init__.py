"""The SDK behind ``@otelml.monitor``, in the order a call's data takes (``otelml`` itself is the public facade):

- ``monitor``: the spec a decorator or ``with`` block is made from, and ``instrument`` for estimators;
- ``call``: one call from start to end, and a monitor's binding to its runtime;
- ``features``, ``outputs``: what the model received and returned, read as features and predictions;
- ``callers``, ``hashing``: who called, as a keyed hash, and keyed fingerprints of the inputs;
- ``recorder``: per-model aggregation into histograms and counters between exports;
- ``encode``, ``export``: OTLP protobuf, and the thread that sends it;
- ``outcomes``: recent predictions and late ground truth;
- ``runtime``: configuration, what a monitor records into, and the one default runtime;
- ``health``: counts of what otelml dropped, and the guard that keeps its failures from the model.
"""

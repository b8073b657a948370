"""Monitor a phishing-website classifier with otelml, end to end, on one machine.

The data is river's bundled Phishing set (1,250 web pages, 9 features; it ships inside the river wheel, nothing is
downloaded). A scikit-learn gradient-boosting model is trained on the first 1,000 pages and then serves:

- single requests through a function decorated with ``@otelml.monitor``,
- nightly batches through ``otelml.instrument(model)``,
- late ground truth for every request through ``otelml.record_outcome``.

Telemetry goes to ``OTEL_EXPORTER_OTLP_ENDPOINT`` if it is set (a collector, or ``otelml sink``); otherwise the
example starts a small OTLP receiver on loopback and prints what arrived there, decoded from the wire.

    python examples/phishing_monitor.py
"""

from __future__ import annotations

import os
import sys

import numpy as np
from river import datasets
from sklearn.ensemble import GradientBoostingClassifier

import otelml
from otelml import semconv
from otelml.testing import OTLPSink, attributes


def load_phishing():
    rows = list(datasets.Phishing())
    names = list(rows[0][0])
    x = np.array([[features[n] for n in names] for features, _ in rows], dtype=float)
    y = np.array([label for _, label in rows])
    return names, x, y


def serve(names, x, y, rng):
    model = GradientBoostingClassifier(random_state=0).fit(x[:1000], y[:1000])

    @otelml.monitor(model="phishing-detector", version="1", feature_names=names, classes=model.classes_)
    def check_page(features):
        return model.predict_proba(features.reshape(1, -1))

    # Single requests, each followed (later, in a real service) by its true label.
    for i in rng.integers(1000, len(x), size=400):
        check_page(x[i])
        otelml.record_outcome(y[i], prediction_id=otelml.last_prediction_id())

    # Nightly batches through the instrumented model; outcomes by predicted and true label together.
    batch_model = otelml.instrument(model, model="phishing-detector", version="1", feature_names=names)
    for _ in range(3):
        idx = rng.integers(1000, len(x), size=200)
        predicted = batch_model.predict(x[idx])
        otelml.record_outcome(y[idx], model="phishing-detector", version="1", predicted=predicted)


def report(sink: OTLPSink) -> None:
    spans = sink.spans()
    print(f"spans received: {len(spans)} (e.g. {spans[0].name!r} with {attributes(spans[0].attributes)})")
    print("feature distributions received (exponential histograms, delta):")
    for _, attrs, point in sink.metric_points(semconv.METRIC_FEATURE_VALUE):
        print(
            f"  {attrs[semconv.FEATURE_NAME]:28s} count={point.count:5d} scale={point.scale:3d} "
            f"mean={point.sum / max(point.count, 1):8.3f} exemplar trace={point.exemplars[0].trace_id.hex()[:12]}..."
            if point.exemplars
            else f"  {attrs[semconv.FEATURE_NAME]:28s} count={point.count:5d}"
        )
    conf = sink.metric_points(semconv.METRIC_CONFIDENCE)
    total = sum(p.count for _, _, p in conf)
    print(f"confidence: {total} rows, mean {sum(p.sum for _, _, p in conf) / max(total, 1):.3f}")
    outcomes = sink.metric_points(semconv.METRIC_OUTCOMES)
    right = sum(p.as_int for _, a, p in outcomes if a[semconv.PREDICTION_LABEL] == a[semconv.TRUE_LABEL])
    seen = sum(p.as_int for _, _, p in outcomes)
    print(f"accuracy from the outcome counter alone: {right}/{seen} = {right / max(seen, 1):.3f}")


def main() -> int:
    names, x, y = load_phishing()
    rng = np.random.default_rng(7)
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        otelml.configure(service_name="phishing-service")
        serve(names, x, y, rng)
        ok = otelml.shutdown()
        print(f"sent to {os.environ['OTEL_EXPORTER_OTLP_ENDPOINT']}: {'delivered' if ok else 'NOT delivered'}")
        return 0 if ok else 1
    with OTLPSink() as sink:
        print(f"local OTLP receiver on {sink.grpc_endpoint} (gRPC) and {sink.http_endpoint} (HTTP)")
        otelml.configure(service_name="phishing-service", endpoint=sink.http_endpoint, set_global_tracer_provider=False)
        serve(names, x, y, rng)
        ok = otelml.shutdown()
        report(sink)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

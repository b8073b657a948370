"""The otelml analyzer: a service that receives OTLP, keeps per-model windows and references, and runs detectors.

Nothing here is imported by the SDK side (``otelml.monitor`` and friends).
"""

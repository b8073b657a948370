"""Detectors: small classes that turn closed windows and references into findings.

Every detector is registered here by name; ``tests/test_detectors.py`` runs each through the same contract.
"""

from .accuracy import AccuracyDetector, ClassMetricsDetector
from .availability import AvailabilityDetector, ThroughputDetector
from .base import Detector, Finding
from .categories import CategoryDriftDetector
from .confidence import ConfidenceRule, LowConfidenceDetector, LowMarginDetector
from .drift import DriftConfig, DriftDetector
from .edetector import EDetectorConfig, FeatureEDetector
from .latency import LatencyDetector, SlowCallsDetector
from .rates import ErrorRateDetector
from .sequential import SequentialConfig
from .support import InputRangeDetector

REGISTRY = {
    cls.name: cls
    for cls in (
        DriftDetector,
        CategoryDriftDetector,
        InputRangeDetector,
        ErrorRateDetector,
        LowConfidenceDetector,
        LowMarginDetector,
        AccuracyDetector,
        ClassMetricsDetector,
        LatencyDetector,
        SlowCallsDetector,
        ConfidenceRule,
        AvailabilityDetector,
        ThroughputDetector,
    )
}

__all__ = [
    "REGISTRY",
    "AccuracyDetector",
    "AvailabilityDetector",
    "CategoryDriftDetector",
    "ClassMetricsDetector",
    "ConfidenceRule",
    "ErrorRateDetector",
    "LatencyDetector",
    "LowConfidenceDetector",
    "LowMarginDetector",
    "SequentialConfig",
    "SlowCallsDetector",
    "ThroughputDetector",
    "Detector",
    "DriftConfig",
    "DriftDetector",
    "EDetectorConfig",
    "FeatureEDetector",
    "InputRangeDetector",
    "Finding",
]

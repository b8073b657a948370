"""Detectors: small classes that turn closed windows and references into findings.

Every detector is registered here by name; ``tests/test_detectors.py`` runs each through the same contract.
"""

from .base import Detector, Finding
from .drift import DriftConfig, DriftDetector
from .edetector import EDetectorConfig, FeatureEDetector

REGISTRY = {cls.name: cls for cls in (DriftDetector,)}

__all__ = [
    "REGISTRY",
    "Detector",
    "DriftConfig",
    "DriftDetector",
    "EDetectorConfig",
    "FeatureEDetector",
    "Finding",
]

"""Seeded attack and benign traffic against scikit-learn models on river's Phishing data (issue 6's bench).

    from attacks import QUICK, load
    traffic = load(QUICK)  # cached under bench/.cache after the first run
    for event in traffic.attack(campaign=0, split=5).events():
        event.caller, event.row, event.is_attack, event.campaign, event.index

``traffic.calibration`` and ``traffic.test`` are benign streams of disjoint callers; ``traffic.campaigns`` the
recorded attacks (``campaigns.Campaign``); ``traffic.attack`` weaves one into the test stream.
"""

from .stream import Event, Stream, mix
from .traffic import FULL, QUICK, Plan, Traffic, load

__all__ = ["Event", "Stream", "mix", "FULL", "QUICK", "Plan", "Traffic", "load"]

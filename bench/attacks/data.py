"""River's bundled Phishing data split four ways, and the victim models trained on the first part.

The data set has 1,250 rows of 9 features in [0, 1] (most take the values 0, 0.5 and 1) and many duplicate rows.
Split once with a fixed seed: victim training rows, the benign pool that benign callers replay, the attackers' pool
(starting rows of evasion campaigns, the thief's natural queries) and rows to measure a thief's fidelity on.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from river import datasets
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

SEED = 20_260_106
SPLIT = {"train": 450, "benign": 400, "attacker": 250, "fidelity": 150}  # rows, in this order


def rng(*key: int) -> np.random.Generator:
    """The generator of one key (every part an int): the same key gives the same values in every run."""
    return np.random.default_rng([SEED, *key])


@dataclasses.dataclass(frozen=True)
class Phishing:
    names: tuple
    x: dict  # part -> rows
    y: dict  # part -> true labels (0/1)


@functools.cache
def phishing() -> Phishing:
    pairs = list(datasets.Phishing())
    names = tuple(pairs[0][0])
    x = np.array([[float(features[n]) for n in names] for features, _ in pairs])
    y = np.array([int(label) for _, label in pairs])
    order = rng(0).permutation(len(x))
    parts, start = {}, 0
    for part, size in SPLIT.items():
        parts[part] = order[start : start + size]
        start += size
    return Phishing(names, {p: x[i] for p, i in parts.items()}, {p: y[i] for p, i in parts.items()})


MODELS = {
    "gbt": lambda: GradientBoostingClassifier(random_state=SEED),
    "logreg": lambda: LogisticRegression(max_iter=1000),
}


@functools.cache
def victim(name: str):
    """A victim model trained on the training rows (also the thief's model family)."""
    data = phishing()
    return MODELS[name]().fit(data.x["train"], data.y["train"])

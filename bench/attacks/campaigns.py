"""Attack campaigns against the victims, each recorded as the ordered stream of rows it queried.

Evasion (ART): HopSkipJump as published (50 iterations) and capped at 5 iterations, BoundaryAttack (untargeted,
1,000 iterations), ZooAttack (logistic regression only: on trees its finite differences are zero and it never
moves). Each starts from one row of the attackers' pool. Extraction: ART's KnockoffNets (random strategy) with the
attackers' natural rows, and a synthetic thief querying random points of the feature grid {0, 0.5, 1}^9 (CopycatCNN
style: data not from the problem domain); the thief is the victim's model family, refitted on every prefix of
``CHECKPOINTS`` queries to measure its fidelity (agreement with the victim on the fidelity rows).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
from art.attacks.evasion import BoundaryAttack, HopSkipJump, ZooAttack
from art.attacks.extraction import KnockoffNets
from art.estimators.classification.scikitlearn import ScikitlearnClassifier

from .data import MODELS, phishing, rng, victim
from .recording import Recorder

STORED = 5_000  # query rows kept per campaign (detection needs far fewer; the final result uses them all)
CHECKPOINTS = (10, 20, 30, 40, 50, 75, 100, 150, 200, 300, 400, 500)
EVASION = {  # attack -> (models it runs against, factory(art classifier))
    "hsj": (("gbt", "logreg"), lambda c: HopSkipJump(c, max_iter=50, verbose=False)),
    "hsj5": (("gbt", "logreg"), lambda c: HopSkipJump(c, max_iter=5, verbose=False)),
    "boundary": (("gbt", "logreg"), lambda c: BoundaryAttack(c, targeted=False, max_iter=1000, verbose=False)),
    "zoo": (
        ("logreg",),
        lambda c: ZooAttack(
            c, max_iter=100, binary_search_steps=5, nb_parallel=9, use_resize=False, use_importance=False, verbose=False
        ),
    ),
}
EXTRACTION = ("knockoff", "synthetic")


@dataclasses.dataclass
class Campaign:
    """One attack: ``rows`` it queried (first STORED), the victim's ``labels`` for them, ``calls`` (rows per
    predict call, as the attack batched them), and its outcome when nobody stops it."""

    name: str  # e.g. "hsj/gbt/3"
    kind: str  # "evasion" or "extraction"
    rows: np.ndarray
    labels: np.ndarray
    calls: np.ndarray
    queries: int  # all queries of the unstopped attack
    start: np.ndarray | None = None  # evasion: the original row
    start_label: int = -1  # ... and the victim's label for it
    final_l2: float = float("nan")  # ... L2 distance of ART's adversarial example (nan when it failed)
    fidelity: np.ndarray | None = None  # extraction: fidelity after CHECKPOINTS[i] queries

    def best_adversarial(self, queries: int) -> float:
        """Evasion: L2 distance from the start of the closest misclassified row among the first ``queries``
        (what the attacker holds when blocked then); nan when there is none."""
        rows, labels = self.rows[:queries], self.labels[:queries]
        flipped = rows[labels != self.start_label]
        return float(np.linalg.norm(flipped - self.start, axis=1).min()) if len(flipped) else float("nan")

    def fidelity_at(self, queries: int) -> float:
        """Extraction: the thief's fidelity after ``queries`` (the last checkpoint reached; 0 before the first)."""
        reached = [f for k, f in zip(CHECKPOINTS, self.fidelity) if k <= queries]
        return reached[-1] if reached else 0.0


def evasion(attack: str, model: str, number: int) -> Campaign:
    """Campaign ``number`` of ``attack`` against ``model``, from a fixed distinct row of the attackers' pool."""
    data = phishing()
    starts = np.unique(data.x["attacker"], axis=0)
    start = starts[rng(1, number).permutation(len(starts))[0]]  # the same starting rows for every attack and model
    recorder = Recorder(victim(model), len(data.names), proba=attack == "zoo")
    np.random.seed(rng(2, number, list(EVASION).index(attack), list(MODELS).index(model)).integers(2**31))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adversarial = EVASION[attack][1](recorder.art).generate(start[None])[0]
    start_label = int(victim(model).predict(start[None])[0])
    success = int(victim(model).predict(adversarial[None])[0]) != start_label
    return Campaign(
        f"{attack}/{model}/{number}",
        "evasion",
        recorder.rows[:STORED],
        recorder.labels[:STORED],
        np.array(recorder.calls),
        len(recorder.rows),
        start,
        start_label,
        float(np.linalg.norm(adversarial - start)) if success else float("nan"),
    )


class _Thief(ScikitlearnClassifier):
    """ART's scikit-learn wrapper, minus the deep-learning fit arguments KnockoffNets passes."""

    def fit(self, x, y, **kwargs):
        super().fit(x, y)


def extraction(attack: str, model: str, number: int) -> Campaign:
    data = phishing()
    budget = CHECKPOINTS[-1]
    recorder = Recorder(victim(model), len(data.names))
    generator = rng(3, number, EXTRACTION.index(attack), list(MODELS).index(model))
    if attack == "knockoff":
        pool = data.x["attacker"]
        np.random.seed(generator.integers(2**31))
        thief = KnockoffNets(recorder.art, batch_size_query=1, nb_stolen=len(pool), sampling_strategy="random")
        thief.extract(pool, thieved_classifier=_Thief(MODELS[model]()))
    else:
        grid = generator.integers(0, 3, size=(budget, len(data.names))) / 2.0
        for row in grid:
            recorder.art.predict(row[None])
    rows, labels = recorder.rows, recorder.labels
    truth = victim(model).predict(data.x["fidelity"])
    fidelity = np.array([_fidelity(model, rows[:k], labels[:k], truth) for k in CHECKPOINTS])
    return Campaign(
        f"{attack}/{model}/{number}", "extraction", rows, labels, np.array(recorder.calls), len(rows), fidelity=fidelity
    )


def _fidelity(model: str, rows: np.ndarray, labels: np.ndarray, truth: np.ndarray) -> float:
    k = min(len(rows), len(labels))
    if k == 0:
        return 0.0
    if len(np.unique(labels[:k])) < 2:  # a thief that saw one class answers it everywhere
        return float(np.mean(truth == labels[0]))
    thief = MODELS[model]().fit(rows[:k], labels[:k])
    return float(np.mean(thief.predict(phishing().x["fidelity"]) == truth))

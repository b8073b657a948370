"""A black-box view of a victim that records every query row, in order: that is the attack's query stream."""

from __future__ import annotations

import numpy as np
from art.estimators.classification import BlackBoxClassifier


class Recorder:
    """Wraps ``model.predict`` for ART. ``rows`` are all queried rows, ``labels`` the victim's answers, ``calls``
    the number of rows in each predict call the attack made. ``proba``: answer with class probabilities (ZOO needs
    them) instead of labels."""

    def __init__(self, model, features: int, proba: bool = False):
        self.model, self.proba = model, proba
        self._rows, self._labels, self.calls = [], [], []
        self.art = BlackBoxClassifier(self._predict, (features,), 2, clip_values=(0.0, 1.0))

    def _predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float).reshape(len(x), -1)
        labels = self.model.predict(x)
        self._rows.append(x.copy())
        self._labels.append(labels)
        self.calls.append(len(x))
        return self.model.predict_proba(x) if self.proba else np.eye(2)[labels]

    @property
    def rows(self) -> np.ndarray:
        return np.concatenate(self._rows) if self._rows else np.empty((0, self.art.input_shape[0]))

    @property
    def labels(self) -> np.ndarray:
        return np.concatenate(self._labels) if self._labels else np.empty(0, dtype=int)

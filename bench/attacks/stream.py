"""The events a monitored model sees, in order: who called, with which row, and whether it was an attack."""

from __future__ import annotations

import dataclasses
from typing import Iterator, NamedTuple

import numpy as np


class Event(NamedTuple):
    caller: str
    row: np.ndarray  # raw features
    is_attack: bool
    campaign: int  # index into the traffic's campaigns, -1 for benign
    index: int  # the query's number within its campaign (attack) or its caller (benign)


@dataclasses.dataclass
class Stream:
    """Events as columns (``events()`` gives them one by one)."""

    callers: np.ndarray  # str
    rows: np.ndarray  # (n, features)
    campaign: np.ndarray  # int, -1 benign
    index: np.ndarray  # int

    def __len__(self) -> int:
        return len(self.callers)

    @property
    def is_attack(self) -> np.ndarray:
        return self.campaign >= 0

    def events(self) -> Iterator[Event]:
        for i in range(len(self)):
            yield Event(
                str(self.callers[i]),
                self.rows[i],
                bool(self.campaign[i] >= 0),
                int(self.campaign[i]),
                int(self.index[i]),
            )

    def take(self, selection) -> Stream:
        return Stream(self.callers[selection], self.rows[selection], self.campaign[selection], self.index[selection])


def mix(
    background: Stream, attack: np.ndarray, campaign: int, split: int, share: float, seed: int, skip: int = 0
) -> Stream:
    """``background`` with the attack's query ``rows`` woven in from position ``skip`` on, one attack query per
    1/``share`` events on average (random gaps), spread round-robin over ``split`` attacking callers. The stream
    ends with the last attack query; the background starts over when it runs out."""
    g = np.random.default_rng(seed)
    gaps = g.geometric(share, size=len(attack))  # events from one attack query to the next
    slots = skip + np.cumsum(gaps) - 1  # positions of attack queries in the mixed stream
    n = int(slots[-1]) + 1 if len(attack) else skip
    is_attack = np.zeros(n, dtype=bool)
    is_attack[slots] = True
    k = len(attack)
    background = background.take(np.arange(n - k) % len(background))  # replayed from the start when too short
    callers = np.empty(n, dtype=object)
    callers[~is_attack] = background.callers[: n - k]
    callers[is_attack] = [f"attack{campaign}-{i % split}" for i in range(k)]
    rows = np.empty((n, background.rows.shape[1]))
    rows[~is_attack] = background.rows[: n - k]
    rows[is_attack] = attack[:k]
    index = np.empty(n, dtype=int)
    index[~is_attack] = background.index[: n - k]
    index[is_attack] = np.arange(k)
    return Stream(callers, rows, np.where(is_attack, campaign, -1), index)

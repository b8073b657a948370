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


def woven(background: int, attack: int, share: float, seed: int, skip: int = 0) -> np.ndarray:
    """Where the attack's queries go when woven into a background stream from position ``skip`` on, one attack query
    per 1/``share`` events on average (random gaps): a mask over the mixed stream, which ends with the last attack
    query. ``background`` (its length) only matters when there is no attack."""
    if attack == 0:
        return np.zeros(min(skip, background), dtype=bool)
    slots = skip + np.cumsum(np.random.default_rng(seed).geometric(share, size=attack)) - 1
    mask = np.zeros(int(slots[-1]) + 1, dtype=bool)
    mask[slots] = True
    return mask


def interleave(mask: np.ndarray, background: np.ndarray, attack: np.ndarray) -> np.ndarray:
    """Any column of the mixed stream: ``attack`` values where ``mask``, ``background`` values (replayed from the
    start when too short) elsewhere."""
    out = np.empty((len(mask), *background.shape[1:]), dtype=np.result_type(background, attack))
    out[mask] = attack[: mask.sum()]
    out[~mask] = background[np.arange((~mask).sum()) % len(background)]
    return out


def mix(
    background: Stream, attack: np.ndarray, campaign: int, split: int, share: float, seed: int, skip: int = 0
) -> Stream:
    """``background`` with the attack's query rows woven in (``woven``), spread round-robin over ``split``
    attacking callers named ``attack{campaign}-{j}``."""
    mask = woven(len(background), len(attack), share, seed, skip)
    k = int(mask.sum())
    callers = np.array([f"attack{campaign}-{i % split}" for i in range(k)], dtype=object)
    return Stream(
        interleave(mask, background.callers.astype(object), callers),
        interleave(mask, background.rows, attack),
        interleave(mask, np.full(len(background), -1), np.full(k, campaign)),
        interleave(mask, background.index, np.arange(k)),
    )

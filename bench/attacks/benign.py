"""Benign traffic: many callers replaying rows of the benign pool, in the order their queries arrive.

Callers are of seven kinds (share of callers, queries per caller, what they send):

- browse (62%): lognormal, median 6; random rows of the pool (the pool's own duplicate rows repeat naturally).
- repeat (15%): log-uniform 20-300; again and again one to three rows (polling, retries, caches): legitimate
  repeaters.
- focused (10%): lognormal, median 15; rows among the 10 nearest (distinct) pool rows to a random row: one user's
  similar pages, benign near-duplicates.
- gateway (1%): log-uniform 300-2,000; random rows of the pool (a mail gateway scoring every link it sees), as much
  volume and coverage as a model thief.
- jitter (6%): log-uniform 20-300; one to three rows of the pool again and again, each time with Gaussian noise of
  sd 0.02 added to every feature (the features are in [0, 1]): a person adjusting a form, a sensor with jitter, a
  client retrying with fresh readings. Benign look-alikes of evasion probing.
- float32 (3%): as browse, but the client sends its rows as float32 (every deep-learning stack does); the bench's
  replay converts the rows of callers named ``*-float32-*``.
- paging (3%): lognormal, median 30; distinct rows of the pool in a random order, each asked once: a client walking
  through a list of records.

Each caller is active over a random stretch of the stream's time; queries are ordered by time.
"""

from __future__ import annotations

import numpy as np

from .data import phishing, rng
from .stream import Stream

KINDS = ("browse", "repeat", "focused", "gateway", "jitter", "float32", "paging")
SHARES = (0.62, 0.15, 0.10, 0.01, 0.06, 0.03, 0.03)
JITTER = 0.02  # sd of the noise a jittered re-sender adds to every feature


def _volume(kind: str, g: np.random.Generator) -> int:
    if kind in ("browse", "float32"):
        return max(1, round(6 * np.exp(g.normal())))
    if kind == "focused":
        return max(1, round(15 * np.exp(g.normal())))
    if kind == "paging":
        return max(1, round(30 * np.exp(g.normal())))
    low, high = (20, 300) if kind in ("repeat", "jitter") else (300, 2000)
    return round(np.exp(g.uniform(np.log(low), np.log(high))))


def _rows(kind: str, volume: int, pool: np.ndarray, distinct: np.ndarray, g: np.random.Generator) -> np.ndarray:
    if kind == "jitter":
        chosen = pool[g.choice(len(pool), size=g.integers(1, 4), replace=False)]
        return chosen[g.integers(len(chosen), size=volume)] + g.normal(0, JITTER, size=(volume, pool.shape[1]))
    if kind == "paging":
        return distinct[g.permutation(len(distinct))[: min(volume, len(distinct))]]
    if kind == "repeat":
        chosen = pool[g.choice(len(pool), size=g.integers(1, 4), replace=False)]
    elif kind == "focused":
        center = distinct[g.integers(len(distinct))]
        chosen = distinct[np.argsort(np.linalg.norm(distinct - center, axis=1))[:10]]
    else:
        chosen = pool
    return chosen[g.integers(len(chosen), size=volume)]


def benign(part: int, callers: int) -> Stream:
    """Benign stream ``part`` (0: calibration, 1: test, ...) of ``callers`` callers."""
    pool = phishing().x["benign"]
    distinct = np.unique(pool, axis=0)
    g = rng(10, part)
    kinds = g.choice(len(KINDS), size=callers, p=SHARES)
    names, rows, times, index = [], [], [], []
    for c, kind in enumerate(kinds):
        kind_rows = _rows(KINDS[kind], _volume(KINDS[kind], g), pool, distinct, g)
        volume = len(kind_rows)
        rows.append(kind_rows)
        start = g.uniform()
        span = min(1.0 - start, g.uniform(0.01, 0.5))
        times.append(np.sort(g.uniform(start, start + span, size=volume)))
        names += [f"benign{part}-{KINDS[kind]}-{c}"] * volume
        index.append(np.arange(volume))
    order = np.argsort(np.concatenate(times), kind="stable")
    return Stream(
        np.array(names)[order],
        np.concatenate(rows)[order],
        np.full(len(order), -1),
        np.concatenate(index)[order],
    )

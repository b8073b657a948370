"""Fingerprints of call inputs as the SDK sends them (``otelml.input.fingerprint``), and distances between them.

A fingerprint is a SimHash of the standardized input row and a digest of the exact input; fingerprints at a small
Hamming distance came from inputs at a small angle from each other.

Example:
    >>> a, b = parse_fingerprint("0300000000000000.0a"), parse_fingerprint("0100000000000000.0b")
    >>> a.tolist(), int(distances(a, b[None])[0]), bool(same(a, b[None])[0])
    ([3, 10], 1, False)
"""

from __future__ import annotations

import math

import numpy as np


def parse_fingerprint(text: str) -> np.ndarray | None:
    """``"<simhash hex>.<digest hex>"`` (or the SimHash alone) as 64-bit words, the SimHash's last word padded
    with zero bits, then the digest of the exact input (0 if absent); None if malformed."""
    if not isinstance(text, str) or len(text) > 300:
        return None
    simhash, _, digest = text.partition(".")
    if not simhash or len(simhash) % 2 or len(digest) > 16:
        return None
    try:
        raw = bytes.fromhex(simhash)
        exact = int(digest, 16) if digest else 0
    except ValueError:
        return None
    words = np.frombuffer(raw + bytes(-len(raw) % 8), dtype=np.uint64)
    return np.append(words, np.uint64(exact))


def distances(x: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Hamming distances between the SimHash of ``x`` and of each row of ``others`` (rows x words)."""
    return np.bitwise_count(others[:, :-1] ^ x[:-1]).sum(axis=1, dtype=np.int64)


def same(x: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Which rows of ``others`` are the very input ``x``: the same exact-input digest (the SimHash of one input can
    change while the SDK still learns its standardization), or without digests the same SimHash."""
    if x[-1]:
        return others[:, -1] == x[-1]
    return (others == x).all(axis=1)


def knn(x: np.ndarray, others: np.ndarray, k: int) -> float:
    """Mean distance from ``x`` to its ``k`` nearest rows of ``others``, leaving out the very input ``x`` itself
    (inf if nothing is left)."""
    d = distances(x, others)[~same(x, others)]
    if d.size == 0:
        return math.inf
    k = min(k, d.size)
    return float(np.partition(d, k - 1)[:k].mean())


def walked(x: np.ndarray, own: np.ndarray, latest: np.ndarray) -> np.ndarray:
    """For each count in ``latest``, the share of the nearest (tied) of a caller's earlier distinct queries ``own``
    (oldest first) to ``x`` that are among its ``latest`` last ones. If the caller's queries are exchangeable (drawn
    in any order from one distribution: a browser, a caller re-sending a few rows with noise), the nearest are
    placed at random among them, so the expected share is ``latest / len(own)``; a walk (each query a step from the
    last ones) puts them among the latest far more often."""
    d = distances(x, own)
    nearest = np.flatnonzero(d == d.min())
    return (nearest[:, None] >= own.shape[0] - latest[None, :]).mean(axis=0)

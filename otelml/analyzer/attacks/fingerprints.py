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
    if exact < 0:  # "-1": int() takes a sign
        return None
    words = np.frombuffer(raw + bytes(-len(raw) % 8), dtype=np.uint64)
    return np.append(words, np.uint64(exact))


def parse_many(texts: list) -> list:
    """``parse_fingerprint`` of each text (the same results), the well-formed ones of one length parsed together."""
    out: list = [None] * len(texts)
    groups: dict = {}  # SimHash hex length -> [(position, SimHash, digest)]
    for i, text in enumerate(texts):
        if not isinstance(text, str) or len(text) > 300:
            continue
        simhash, _, digest = text.partition(".")
        if simhash and not len(simhash) % 2 and len(digest) <= 16:
            groups.setdefault(len(simhash), []).append((i, simhash, digest))
    for length, items in groups.items():
        try:
            raw = bytes.fromhex("".join(simhash for _, simhash, _ in items))
            exact = [int(digest, 16) if digest else 0 for _, _, digest in items]
        except ValueError:
            raw, exact = b"", []
        if len(raw) != len(items) * length // 2 or any(e < 0 for e in exact):  # whitespace, a sign: one at a time
            for i, _, _ in items:
                out[i] = parse_fingerprint(texts[i])
            continue
        rows = np.zeros((len(items), -(-length // 16) * 8), dtype=np.uint8)
        rows[:, : length // 2] = np.frombuffer(raw, dtype=np.uint8).reshape(len(items), -1)
        words = np.empty((len(items), rows.shape[1] // 8 + 1), dtype=np.uint64)
        words[:, :-1] = rows.view(np.uint64)
        words[:, -1] = exact
        for row, (i, _, _) in zip(words, items):
            out[i] = row
    return out


def distances(x: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Hamming distances between the SimHash of ``x`` and of each row of ``others`` (rows x words)."""
    return np.bitwise_count(others[:, :-1] ^ x[:-1]).sum(axis=1, dtype=np.int64)


def hamming(x: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Hamming distances between SimHash words ``x`` (without the digest) and each column of ``hashes`` (words x
    columns, each word's row contiguous), as small integers (uint8 up to 255 bits, else uint16)."""
    d = np.bitwise_count(hashes[0] ^ x[0])
    if x.size > 1:
        d = d if 64 * x.size <= 255 else d.astype(np.uint16)
        for word in range(1, x.size):
            d += np.bitwise_count(hashes[word] ^ x[word])
    return d


def same(x: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Which rows of ``others`` are the very input ``x``: the same exact-input digest (the SimHash of one input can
    change while the SDK still learns its standardization), or without digests the same SimHash."""
    if x[-1]:
        return others[:, -1] == x[-1]
    return (others == x).all(axis=1)


def knn(x: np.ndarray, others: np.ndarray, k: int) -> float:
    """Mean distance from ``x`` to its ``k`` nearest rows of ``others``, leaving out the very input ``x`` itself
    (inf if nothing is left)."""
    return mean_smallest(distances(x, others)[~same(x, others)], k)


def walked(x: np.ndarray, own: np.ndarray, latest: np.ndarray) -> np.ndarray:
    """For each count in ``latest``, the share of the nearest (tied) of a caller's earlier distinct queries ``own``
    (oldest first) to ``x`` that are among its ``latest`` last ones. If the caller's queries are exchangeable (drawn
    in any order from one distribution: a browser, a caller re-sending a few rows with noise), the nearest are
    placed at random among them, so the expected share is ``latest / len(own)``; a walk (each query a step from the
    last ones) puts them among the latest far more often."""
    return walked_at(distances(x, own), latest)


def walked_at(d: np.ndarray, latest: np.ndarray) -> np.ndarray:
    """``walked`` from the distances ``d`` of ``x`` to the caller's earlier queries (oldest first)."""
    nearest = np.flatnonzero(d == d.min()).tolist()
    return np.array([sum(i >= d.size - n for i in nearest) / len(nearest) for n in latest.tolist()])


def mean_smallest(d: np.ndarray, k: int) -> float:
    """Mean of the ``k`` smallest of ``d`` (inf if empty): ``knn`` from distances with the very input left out."""
    if d.size == 0:
        return math.inf
    k = min(k, d.size)
    if d.size <= 256:  # sorting a short list costs less than numpy's partition and mean
        return sum(sorted(d.tolist())[:k]) / k
    return float(np.partition(d, k - 1)[:k].mean())

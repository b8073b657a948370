"""Keyed hashes for per-caller attack detection, off unless switched on: a keyed hash of the caller's identity and
a nearness-preserving fingerprint of each input. (Who the caller is: ``otelml.sdk.callers``.)

- Caller: ``@otelml.monitor(caller="user_id")`` (an argument by name), ``caller=callable(*args, **kwargs)``, or
  ``with otelml.caller(user_id):`` around calls. The span gets ``otelml.caller.id``: HMAC-SHA256 of the identity
  under the caller key, first 16 bytes in hex. Never the identity itself.
- Fingerprint: ``@otelml.monitor(fingerprint_bits=64)``. Each input row is standardized (with the mean and sd of the
  first ``WARM_ROWS`` rows the monitor saw, then fixed; those rows get no fingerprint) and projected on
  ``fingerprint_bits`` Gaussian directions drawn from the caller key; the signs are the fingerprint (SimHash,
  Charikar 2002), in hex on ``otelml.input.fingerprint`` (one string, or an array for batches of up to 64 rows, the batch size black-box attack tools use), followed by a
  dot and a 32-bit keyed digest of the exact row. Both are taken of the row's canonical form (``canonical``: every
  value rounded to float32 precision, -0.0 as 0.0, one NaN), so a client sending float32, float64 or integers gets
  the same fingerprints for the same rows. Inputs at a small angle from each other get fingerprints at a small Hamming distance; the digest tells a
  repeated input from a different one too close to change a bit (the many tiny steps of a black-box attack). That
  is all the analyzer needs to see near-duplicate probing.

What a reader of the traces can learn: which calls came from the same caller (not who); which inputs were near each
other or repeated. With the key, also the rough direction of each standardized input (``fingerprint_bits`` signs of
known projections), never its scale or exact values, and whether an input was exactly a guessed row. Keep the key
secret: set ``caller_key`` in ``configure()`` or
``OTELML_CALLER_KEY`` (the same on every replica, so ids and fingerprints compare across them). Without it a random
per-process key is used, and ids and fingerprints only compare within one process.

Example:
    >>> hasher = CallerHasher(b"secret")
    >>> hasher.id("alice") == hasher.id("alice") != hasher.id("bob"), len(hasher.id("alice"))
    (True, 32)
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading

import numpy as np

from .health import logger

WARM_ROWS = 256  # rows that fix a monitor's standardization (they get no fingerprint: while it moves, so do they)
MAX_FINGERPRINT_ROWS = 64  # larger batches (offline scoring, not API probing) carry no fingerprints


def caller_key(configured: bytes | str | None) -> bytes:
    """The key: the setting, else ``OTELML_CALLER_KEY``, else random for this process (and said once)."""
    key = configured or os.environ.get("OTELML_CALLER_KEY")
    if key:
        return key.encode() if isinstance(key, str) else key
    logger.warning(
        "otelml: no caller key (configure(caller_key=...) or OTELML_CALLER_KEY); caller ids and input fingerprints "
        "compare only within this process"
    )
    return os.urandom(32)


class CallerHasher:
    """Keyed hashes of caller identities, cached for the identities seen lately. Thread-safe: the cache is a dict
    whose single reads, writes and ``clear`` are atomic, and two threads that hash the same identity store the same
    id."""

    def __init__(self, key: bytes, cache: int = 10_000):
        self._key = key
        self._cache: dict = {}
        self._limit = cache

    def id(self, identity: str) -> str:
        found = self._cache.get(identity)
        if found is None:
            found = hmac.new(self._key, identity.encode(), hashlib.sha256).hexdigest()[:32]
            if len(self._cache) >= self._limit:
                self._cache.clear()
            self._cache[identity] = found
        return found


def canonical(numeric) -> np.ndarray:
    """The rows in the one form that fingerprints and digests are taken of, so that the same input digests the same
    whether it came as float64, float32 or integers: every value rounded to float32 precision (about 7 significant
    digits; beyond float32's range it becomes an infinity of its sign), -0.0 as 0.0 and every NaN as one NaN. Returned
    as float64 (exactly the float32 values)."""
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = np.asarray(numeric).astype(np.float32) + np.float32(0.0)  # -0.0 + 0.0 is 0.0
    rounded[np.isnan(rounded)] = np.float32("nan")
    return rounded.astype(np.float64)


class Fingerprinter:
    """SimHash fingerprints of standardized input rows, for one monitor (one feature layout). Thread-safe: the
    standardization is learnt under a lock, and fixed once learnt."""

    def __init__(self, key: bytes, names: tuple, bits: int, warm_rows: int = WARM_ROWS):
        if bits <= 0 or bits % 8:
            raise ValueError("fingerprint_bits must be a positive multiple of 8")
        seed = int.from_bytes(
            hmac.new(key, b"otelml fingerprint|" + "|".join(names).encode(), hashlib.sha256).digest()[:8], "big"
        )
        self.names = names
        self._projection = np.random.default_rng(seed).standard_normal((len(names), bits))
        # odd multipliers from the key, one per column: the exact-row digest is a keyed multiply-add of the rows'
        # 64-bit words, mixed (MurmurHash3's finalizer), computed for the whole batch at once
        self._multipliers = np.random.default_rng([seed, 1]).integers(0, 2**64, len(names), dtype=np.uint64) | 1
        self._warm_rows = warm_rows
        self._n = 0
        self._sum = np.zeros(len(names))
        self._sum_sq = np.zeros(len(names))
        self._mean, self._scale = np.zeros(len(names)), np.ones(len(names))
        self._lock = threading.Lock()

    def fingerprints(self, numeric: np.ndarray) -> list[str]:
        """One fingerprint per row: the SimHash in hex, a dot, and a 32-bit keyed digest of the exact row (NaN and
        infinities count as the mean in the SimHash); none (an empty list) for the rows that fix the
        standardization: while it moves, the same input's SimHash moves with it, and a caller re-sending a few rows
        with noise across that time would look like one walking in small steps."""
        numeric = canonical(numeric)
        if self._n < self._warm_rows:
            with self._lock:
                if self._n < self._warm_rows:
                    self._learn(numeric)
                    return []
        z = (numeric - self._mean) / self._scale
        z = np.where(np.isfinite(z), z, 0.0)
        bits = np.packbits(z @ self._projection > 0, axis=1)
        digests = self._digests(numeric).astype(">u4").view(np.uint8).reshape(-1, 4)
        width = 2 * bits.shape[1]
        return [f"{h[:width]}.{h[width:]}" for h in (row.tobytes().hex() for row in np.hstack([bits, digests]))]

    def _digests(self, numeric: np.ndarray) -> np.ndarray:
        """A 32-bit keyed digest of each canonical row (``canonical``: its float32 bytes), for the whole batch."""
        words = np.ascontiguousarray(numeric, dtype=np.float32).view(np.uint32).astype(np.uint64)
        h = (words * self._multipliers).sum(axis=1, dtype=np.uint64)
        for shift, factor in ((33, 0xFF51AFD7ED558CCD), (33, 0xC4CEB9FE1A85EC53)):
            h ^= h >> np.uint64(shift)
            h *= np.uint64(factor)
        h ^= h >> np.uint64(33)
        return (h >> np.uint64(32)).astype(np.uint32)

    def _learn(self, numeric: np.ndarray) -> None:
        finite = np.where(np.isfinite(numeric), numeric, 0.0)
        n = self._n + numeric.shape[0]
        self._sum += finite.sum(axis=0)
        self._sum_sq += (finite**2).sum(axis=0)
        self._mean = self._sum / n
        variance = np.maximum(self._sum_sq / n - self._mean**2, 0.0)
        self._scale = np.where(variance > 0, np.sqrt(variance), 1.0)
        self._n = n  # last: a thread that sees the standardization fixed sees its final mean and scale


class FingerprintSlot:
    """The fingerprinter of one monitor under one runtime: made for the feature names of the first call with
    fingerprints, made anew when the names change. Thread-safe: the fingerprinter is replaced under a lock."""

    def __init__(self, key_of, bits: int):
        self._key_of = key_of  # the caller key, made on first use
        self._bits = bits
        self._printer: Fingerprinter | None = None
        self._lock = threading.Lock()

    def fingerprints(self, names: tuple, numeric: np.ndarray) -> list[str]:
        if not numeric.shape[1]:
            return []
        printer = self._printer
        if printer is None or printer.names != names:
            with self._lock:
                printer = self._printer
                if printer is None or printer.names != names:
                    printer = self._printer = Fingerprinter(self._key_of(), names, self._bits)
        return printer.fingerprints(numeric)

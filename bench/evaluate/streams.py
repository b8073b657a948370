"""The seeded streams and references every table draws from, and windows built as the SDK and the analyzer build them.

A generator is keyed by (table, role, seed, ...) (``rng_for``): the same key gives the same values in every run and
in every table."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from otelml import histogram
from otelml.analyzer.detectors.drift import DriftConfig
from otelml.analyzer.detectors.synthetic import window
from otelml.analyzer.references import from_data

SEED = 20_251_122
ROWS = 200  # rows per window
FEATURES = 20
REF_ROWS = 100_000
A = round(math.exp(DriftConfig().log_threshold))  # 43,200: one false alarm per 30 days of 60-s windows
PRE = 20  # no-drift windows before a change
CHUNK = 250  # windows of a stream generated per numpy call
REPLICAS, EXPORTS = 3, 6  # replicas of the model, SDK exports (10 s) per 60-s window
BLOCK_ROWS = 512  # the SDK buffers calls of up to BLOCK_ROWS // 2 rows into blocks of this many rows
CHANGES = (  # label, mean shift (sd), sd ratio
    ("+0.05 sd", 0.05, 1.0),
    ("+0.1 sd", 0.1, 1.0),
    ("+0.2 sd", 0.2, 1.0),
    ("+0.5 sd", 0.5, 1.0),
    ("+1 sd", 1.0, 1.0),
    ("sd x1.25", 0.0, 1.25),
    ("sd x1.5", 0.0, 1.5),
)
REFERENCE, STREAM, LAYOUT = 1, 2, 3  # what a generator draws: reference rows, live rows, how rows are split


def rng_for(table: int, role: int, seed: int, a: int = 0, b: int = 0) -> np.random.Generator:
    """The generator of one (table, role, seed, ...) key: the same key gives the same values in every run and in
    every table. Keys always have five parts: numpy's SeedSequence maps [1, 2] and [1, 2, 0] to the same state."""
    return np.random.default_rng([SEED, table, role, seed, a, b])


def null_chunks(seed: int, windows: int, features: int = FEATURES):
    """Table 1's no-drift stream ``seed``, CHUNK windows (windows x ROWS x features) at a time; window i never depends
    on the length asked for."""
    rng = rng_for(1, STREAM, seed)
    for start in range(0, windows, CHUNK):
        yield rng.standard_normal((CHUNK, ROWS, features))[: windows - start]


def names(features: int) -> list:
    return [f"x{i}" for i in range(features)]  # the names synthetic.window gives to columns


def make_reference(table: int, seed: int, features: int = FEATURES, rows: int = REF_ROWS):
    """The reference of a stream: otelml's Reference (SDK histograms) and the raw rows the peers get."""
    raw = rng_for(table, REFERENCE, seed).standard_normal((rows, features))
    return from_data("m", "1", names(features), raw, "evaluation"), raw


def changed(rng, windows: int, features: int, shift: float, ratio: float, k: int) -> np.ndarray:
    x = rng.standard_normal((windows, ROWS, features))
    x[:, :, :k] = x[:, :, :k] * ratio + shift
    return x


def changed_chunks(rng, horizon: int, features: int, shift: float, ratio: float, k: int, chunk: int = 25):
    """Post-change windows, generated a few at a time (most detections come early)."""
    for start in range(0, horizon, chunk):
        yield from changed(rng, min(chunk, horizon - start), features, shift, ratio, k)


def model_stream(seed: int, c: int, k: int, horizon: int):
    """Table 2's stream of ``seed`` with change ``c`` on ``k`` of the features: the PRE windows before the change, and
    the ``horizon`` windows after it, generated as they are read."""
    _, shift, ratio = CHANGES[c]
    rng = rng_for(2, STREAM, seed, c, k)
    pre = rng.standard_normal((PRE, ROWS, FEATURES))
    return pre, changed_chunks(rng, horizon, FEATURES, shift, ratio, k)


def single_stream(seed: int, c: int, horizon: int):
    """Table 3's one-feature stream of ``seed`` with change ``c``: PRE windows before it, ``horizon`` after."""
    _, shift, ratio = CHANGES[c]
    rng = rng_for(3, STREAM, seed, c)
    pre = rng.standard_normal((PRE, ROWS, 1))
    return pre, changed(rng, horizon, 1, shift, ratio, 1)


def sdk_parts(calls: list) -> list:
    """The histograms' row sets of one SDK export: calls of more than BLOCK_ROWS/2 rows are aggregated alone,
    smaller ones are buffered into blocks of at most BLOCK_ROWS rows (``otelml.sdk.recorder``)."""
    parts, block, size = [], [], 0
    for call in calls:
        if len(call) > BLOCK_ROWS // 2:
            parts.append(call)
            continue
        if size + len(call) > BLOCK_ROWS:
            parts.append(np.concatenate(block))
            block, size = [], 0
        block.append(call)
        size += len(call)
    if block:
        parts.append(np.concatenate(block))
    return parts


def merged_window(index: int, calls: list, rng: np.random.Generator):
    """A closed window as the analyzer builds it from 3 replicas x 6 exports: each call goes to a random
    (replica, export) slot, every slot's parts become histograms, and the analyzer merges them per feature."""
    slots = rng.integers(0, REPLICAS * EXPORTS, len(calls))
    part_windows = []
    for slot in np.unique(slots):
        for part in sdk_parts([c for c, s in zip(calls, slots) if s == slot]):
            part_windows.append(window(index, features=part))
    merged = {key: histogram.merge_all([w.histograms[key] for w in part_windows]) for key in part_windows[0].histograms}
    return dataclasses.replace(part_windows[0], histograms=merged)


def split_calls(rows: np.ndarray, sizes: np.ndarray) -> list:
    """Rows cut into consecutive calls of the given sizes (the last call takes what is left)."""
    bounds = np.cumsum(sizes)
    return [call for call in np.split(rows, bounds[bounds < len(rows)]) if len(call)]


def outcome_window(index: int, wrong: np.ndarray):
    """A window of labelled predictions, from a 0/1 array of wrong ones."""
    n = len(wrong)
    return window(index, outcomes={("a", "a"): int(n - wrong.sum()), ("a", "b"): int(wrong.sum())})

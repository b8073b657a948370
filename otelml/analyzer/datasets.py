"""Read reference data for ``otelml reference build``: CSV always; ``.npy`` with numpy; Parquet where pandas and a
Parquet engine are installed. Columns are read with the SDK's own input code, so names and numeric conversion match
what ``@otelml.monitor`` records.

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "ref.csv")
    >>> _ = open(path, "w").write("age,income,country\\n30,1.5,de\\n40,,fr\\n")
    >>> names, x, skipped = load([path])
    >>> names, x.shape, skipped
    (('age', 'income'), (2, 2), ['country'])
"""

from __future__ import annotations

import csv

import numpy as np

from ..sdk.features import to_features


def _read_csv(path: str) -> dict:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise ValueError(f"{path}: empty file or no header row")
        rows = [row for row in reader if row]
    if any(len(row) != len(header) for row in rows):
        raise ValueError(f"{path}: rows with a different number of fields than the header")
    columns = list(zip(*rows)) if rows else [() for _ in header]
    return {name: [value if value.strip() else "nan" for value in column] for name, column in zip(header, columns)}


def _read_one(path: str):
    if path.endswith(".npy"):
        array = np.load(path, allow_pickle=False)
        return to_features(array if array.ndim == 2 else array.reshape(-1, 1))
    if path.endswith(".parquet"):
        try:
            import pandas as pd

            frame = pd.read_parquet(path)
        except ImportError as exc:
            raise ValueError(f"{path}: reading Parquet needs pandas and pyarrow ({exc})") from None
        return to_features(frame)
    return to_features(_read_csv(path))


def load(paths) -> tuple[tuple, np.ndarray, list]:
    """``(feature names, rows x features float matrix, skipped non-numeric column names)`` over all files."""
    names, parts, skipped = None, [], []
    for path in paths:
        file_names, numeric, categorical = _read_one(path)
        if names is None:
            names, skipped = file_names, sorted(categorical)
        elif file_names != names:
            raise ValueError(f"{path}: columns {list(file_names)} differ from the first file's {list(names)}")
        parts.append(numeric)
    if names is None:
        raise ValueError("no data files given")
    return names, np.vstack(parts), skipped

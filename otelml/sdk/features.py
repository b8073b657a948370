"""Turn whatever a predict function receives into feature names, a float matrix and categorical columns.

Accepted: numpy arrays (1-D is one row, 2-D is a batch), pandas DataFrames (names from columns) and Series (one row,
names from the index), dicts (one row of scalars, or columns of equal-length sequences), lists of dicts (a batch),
lists of numbers (one row) and lists of lists (a batch), and plain scalars. Without names from the input or from
``feature_names=``, columns are named ``x0``, ``x1``, ... as scikit-learn does. pandas is never imported here.

Example:
    >>> names, numeric, categorical = to_features([{"a": 1.0, "b": "x"}, {"a": 2.0, "b": "y"}])
    >>> names, numeric.tolist(), {k: v.tolist() for k, v in categorical.items()}
    (('a',), [[1.0], [2.0]], {'b': ['x', 'y']})
"""

from __future__ import annotations

from functools import lru_cache
from operator import itemgetter

import numpy as np

_EMPTY_CATEGORICAL: dict = {}
MAX_NAME_LENGTH = 128  # longer feature names and labels are cut to this many characters


class InputError(ValueError):
    """The input cannot be read as features; the message says why."""


@lru_cache(maxsize=64)
def default_names(width: int) -> tuple[str, ...]:
    return tuple(f"x{i}" for i in range(width))


def to_features(x, feature_names=None):
    """Return ``(names, numeric, categorical)``.

    ``names`` name the columns of ``numeric`` (a 2-D float64 array, rows by features); ``categorical`` maps the
    names of non-numeric columns to 1-D object arrays. Raises :class:`InputError` for input it cannot read.
    """
    if isinstance(x, np.ndarray):
        return _from_array(x, feature_names)
    kind = type(x).__name__
    if kind == "DataFrame" and hasattr(x, "columns"):
        return _from_dataframe(x, feature_names)
    if kind == "Series" and hasattr(x, "index"):
        return _from_array(x.to_numpy().reshape(1, -1), feature_names or tuple(str(i) for i in x.index))
    if isinstance(x, dict):
        return _from_dict(x)
    if isinstance(x, (list, tuple)):
        if x and isinstance(x[0], dict):
            return _from_dicts(x)
        return _from_array(_as_array(x), feature_names)
    if isinstance(x, (int, float, np.number, bool)):
        return _from_array(np.array([[x]], dtype=np.float64), feature_names)
    raise InputError(f"cannot read features from a {kind}")


def _as_array(x):
    try:
        return np.asarray(x)
    except ValueError as exc:  # ragged nested lists
        raise InputError(f"rows of different lengths: {exc}") from None


def _from_array(x: np.ndarray, feature_names):
    if x.ndim == 1:
        x = x.reshape(1, -1)
    elif x.ndim == 0:
        x = x.reshape(1, 1)
    elif x.ndim != 2:
        raise InputError(f"expected one row (1-D) or a batch (2-D), got an array of shape {x.shape}")
    names = _names(feature_names, x.shape[1])
    if x.dtype.kind in "fiub":
        return names, x.astype(np.float64, copy=False), _EMPTY_CATEGORICAL
    return _split_mixed(names, [x[:, i] for i in range(x.shape[1])])


def _names(feature_names, width: int) -> tuple[str, ...]:
    if feature_names is None:
        return default_names(width)
    names = tuple(feature_names)
    if len(names) != width:
        raise InputError(f"{width} features in the input but {len(names)} feature names")
    return names


def _split_mixed(names, columns):
    """Numeric columns into one float matrix; the rest are categorical (counted by value)."""
    numeric_names, numeric, categorical = [], [], {}
    for name, column in zip(names, columns):
        values = np.asarray(column)
        if values.dtype.kind in "fiub":
            numeric_names.append(name)
            numeric.append(values.astype(np.float64, copy=False))
            continue
        try:
            numeric.append(values.astype(np.float64))
            numeric_names.append(name)
        except (TypeError, ValueError):
            categorical[name] = values.astype(object)
    rows = len(columns[0]) if columns else 0
    matrix = np.column_stack(numeric) if numeric else np.zeros((rows, 0))
    return tuple(numeric_names), matrix, categorical


def _from_dataframe(df, feature_names):
    names = _names(feature_names, df.shape[1]) if feature_names is not None else tuple(str(c) for c in df.columns)
    if all(dtype.kind in "fiub" for dtype in df.dtypes):
        return names, df.to_numpy(dtype=np.float64), _EMPTY_CATEGORICAL
    return _split_mixed(names, [df.iloc[:, i].to_numpy() for i in range(df.shape[1])])


def _from_dict(row: dict):
    names = tuple(str(k) for k in row)
    values = list(row.values())
    if values and all(isinstance(v, (list, tuple, np.ndarray)) for v in values):
        lengths = {len(v) for v in values}
        if len(lengths) != 1:
            raise InputError(f"columns of different lengths: {sorted(lengths)}")
        return _split_mixed(names, values)
    return _split_mixed(names, [[v] for v in values])


def _from_dicts(rows):
    keys = tuple(rows[0])
    names = tuple(str(k) for k in keys)
    try:
        table = list(map(itemgetter(*keys), rows)) if len(keys) > 1 else [(r[keys[0]],) for r in rows]
    except (KeyError, TypeError):
        table = [tuple(r.get(k, np.nan) for k in keys) if isinstance(r, dict) else None for r in rows]
        if any(t is None for t in table):
            raise InputError("a batch of dicts holds something that is not a dict") from None
    try:
        matrix = np.array(table, dtype=np.float64)
    except (TypeError, ValueError):
        columns = list(zip(*table))
        return _split_mixed(names, columns)
    return names, matrix.reshape(len(rows), len(keys)), _EMPTY_CATEGORICAL


class CapPlan:
    """How to cut one feature layout to the cap: at most ``max_features`` columns (numeric first), names of at most
    ``MAX_NAME_LENGTH`` characters. Worked out once per layout; applying it to a call is slicing and a dict."""

    __slots__ = (
        "names",
        "categorical_names",
        "max_features",
        "kept_names",
        "kept_columns",
        "kept_categorical",
        "dropped_categorical",
    )

    def __init__(self, names: tuple, categorical_names: tuple, max_features: int):
        self.names, self.categorical_names, self.max_features = names, categorical_names, max_features
        if any(len(n) > MAX_NAME_LENGTH for n in names) or any(len(n) > MAX_NAME_LENGTH for n in categorical_names):
            names = tuple(n[:MAX_NAME_LENGTH] for n in names)
            cut = {}  # cut name -> the last original of that cut name, in the order the cut names first came
            for n in categorical_names:
                cut[n[:MAX_NAME_LENGTH]] = n
        else:
            cut = {n: n for n in categorical_names}
        self.kept_columns = min(len(names), max_features)
        self.kept_names = names[: self.kept_columns]
        room = max_features - self.kept_columns
        self.kept_categorical = tuple(cut.items())[:room]
        self.dropped_categorical = tuple(cut.values())[room:]

    def fits(self, names: tuple, categorical: dict, max_features: int) -> bool:
        """Whether this plan is the one for a call with these names and limit."""
        return (
            max_features == self.max_features
            and (names is self.names or names == self.names)
            and tuple(categorical) == self.categorical_names
        )

    def apply(self, numeric, categorical: dict):
        """``(names, numeric, categorical, dropped_values)`` of one call."""
        dropped = 0
        if numeric.shape[1] > self.kept_columns:
            dropped = numeric[:, self.kept_columns :].size
            numeric = numeric[:, : self.kept_columns]
        if categorical:
            dropped += sum(categorical[original].size for original in self.dropped_categorical)
            categorical = {cut: categorical[original] for cut, original in self.kept_categorical}
        return self.kept_names, numeric, categorical, dropped


class FeatureReader:
    """Reads one monitor's inputs as features within the feature cap, for every call of that monitor.

    Remembers across calls the last layout that needed no capping and the plan of the last one that did, so neither
    check nor plan is redone while the layout stays the same. Thread-safe: each of the two is one immutable value,
    read without a lock and replaced whole (two threads that race to replace it put equal values).
    """

    def __init__(self, feature_names=None):
        self.feature_names = None if feature_names is None else tuple(str(n) for n in feature_names)
        self._checked = None  # names known to need no capping (the same tuple again and again on the hot path)
        self._plan: CapPlan | None = None

    def read(self, x, max_features: int):
        """``(names, numeric, categorical, dropped_values)``; raises :class:`InputError` for unreadable input."""
        names, numeric, categorical = to_features(x, self.feature_names)
        if names is self._checked:
            return names, numeric, categorical, 0
        plan = self._plan
        if plan is None or not plan.fits(names, categorical, max_features):
            if len(names) + len(categorical) <= max_features and not any(len(n) > MAX_NAME_LENGTH for n in names):
                self._checked = names
                return names, numeric, categorical, 0
            plan = self._plan = CapPlan(names, tuple(categorical), max_features)
        return plan.apply(numeric, categorical)

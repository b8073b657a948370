"""Reading features from every accepted input type, and predictions from every output type."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otelml.sdk.features import InputError, to_features
from otelml.sdk.outputs import OutputError, read_outputs, read_row


def test_numpy_rows_and_batches():
    names, x, cat = to_features(np.array([1, 2, 3]))
    assert names == ("x0", "x1", "x2") and x.shape == (1, 3) and x.dtype == np.float64 and not cat
    names, x, _ = to_features(np.ones((5, 2)), feature_names=["a", "b"])
    assert names == ("a", "b") and x.shape == (5, 2)
    assert to_features(np.float64(2.5))[1].tolist() == [[2.5]]


def test_dataframes_take_names_from_columns_and_split_categorical():
    df = pd.DataFrame({"age": [30, 40], "country": ["de", "fr"], "score": [0.5, np.nan]})
    names, x, cat = to_features(df)
    assert names == ("age", "score")
    assert x[:, 0].tolist() == [30.0, 40.0] and np.isnan(x[1, 1])
    assert cat["country"].tolist() == ["de", "fr"]
    names, x, _ = to_features(df.iloc[0][["age", "score"]])  # a Series is one row
    assert names == ("age", "score") and x.shape == (1, 2)


def test_dicts_lists_of_dicts_and_lists():
    assert to_features({"a": 1, "b": 2.5})[1].tolist() == [[1.0, 2.5]]
    names, x, _ = to_features({"a": [1, 2, 3], "b": [4, 5, 6]})
    assert names == ("a", "b") and x.shape == (3, 2)
    names, x, _ = to_features([{"a": 1, "b": 2}, {"a": 3, "b": 4}])
    assert x.tolist() == [[1, 2], [3, 4]]
    names, x, _ = to_features([{"a": 1, "b": 2}, {"a": 3}])  # a missing key is NaN
    assert np.isnan(x[1, 1])
    assert to_features([1, 2, 3])[1].shape == (1, 3)
    assert to_features([[1, 2], [3, 4]])[1].shape == (2, 2)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((2, 2, 2)), "shape"),
        ([[1, 2], [3]], "different lengths"),
        ({"a": [1, 2], "b": [1]}, "different lengths"),
        (object(), "cannot read features"),
        ([{"a": 1}, 5], "not a dict"),
    ],
)
def test_unreadable_inputs_say_why(bad, message):
    with pytest.raises(InputError, match=message):
        to_features(bad)


def test_feature_name_count_must_match():
    with pytest.raises(InputError, match="3 features in the input but 2 feature names"):
        to_features(np.ones((1, 3)), feature_names=["a", "b"])


def test_output_kinds():
    out = read_outputs(np.array([[0.9, 0.1], [0.2, 0.8]]), "auto", "classification", ["ham", "spam"])
    assert out.label_counts() == [("ham", 1), ("spam", 1)]
    assert out.confidence.tolist() == [0.9, 0.8]
    out = read_outputs(np.array(["a", "b", "a"]), "auto", "classification", None)
    assert sorted(out.label_counts()) == [("a", 2), ("b", 1)]
    out = read_outputs(np.array([0.2, 0.9]), "auto", "classification", None)  # P(positive class)
    assert out.label_index.tolist() == [0, 1] and out.confidence.tolist() == [0.8, 0.9]
    out = read_outputs(np.array([-2.5, 3.5]), "auto", "classification", None)  # decision scores
    assert out.label_index.tolist() == [0, 1] and out.confidence is None and out.values.tolist() == [-2.5, 3.5]
    out = read_outputs(np.array([1.5, 2.5]), "auto", "regression", None)
    assert out.values.tolist() == [1.5, 2.5] and out.label_index is None
    out = read_outputs(np.array([[3.0, -1.0, 0.5]]), "scores", "classification", None)
    assert out.label_index.tolist() == [0]


def test_unreadable_outputs_say_why():
    with pytest.raises(OutputError, match="shape"):
        read_outputs(np.zeros((2, 2, 2)), "auto", "classification", None)
    with pytest.raises(OutputError, match="numeric"):
        read_outputs(np.array(["x"]), "proba", "classification", None)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**32 - 1), st.sampled_from(["proba", "scores", "labels", "values"]))
def test_the_one_row_fast_path_agrees_with_the_array_path(classes, seed, kind):
    rng = np.random.default_rng(seed)
    y = rng.dirichlet(np.ones(classes + 1), size=1) if kind == "proba" else rng.normal(size=(1, classes))
    if kind in ("labels", "values"):
        y = y[:, 0]
    names = [f"c{i}" for i in range(y.shape[-1])] if kind in ("proba", "scores") else None
    fast = read_row(y, kind, names)
    slow = read_outputs(y, kind, "classification", None if names is None else np.array(names)).first_row()
    assert fast[0] == slow[0]
    for a, b in zip(fast[1:], slow[1:]):
        assert (a is None and b is None) or a == pytest.approx(b)

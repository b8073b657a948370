"""All traffic of the attack bench, generated once per plan and cached (``bench/.cache``, git-ignored)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from . import campaigns
from .benign import benign
from .campaigns import Campaign
from .data import SEED, phishing
from .stream import Stream, mix

CACHE = pathlib.Path(__file__).resolve().parent.parent / ".cache"
VERSION = 2  # bump when generation changes: the cache key includes it


@dataclasses.dataclass(frozen=True)
class Plan:
    calibration_callers: int  # benign callers to calibrate thresholds on
    test_callers: int  # other benign callers to measure false positives on
    evasion_starts: int  # starting rows per (evasion attack, model)
    extraction_runs: int  # runs per (extraction attack, model)


FULL = Plan(3_000, 3_000, 10, 5)
QUICK = Plan(600, 600, 3, 2)


@dataclasses.dataclass
class Traffic:
    names: tuple  # feature names
    calibration: Stream
    test: Stream
    campaigns: list  # of Campaign

    def attack(self, campaign: int, split: int = 1, share: float = 0.02, limit: int = 2_000, skip: int = 0) -> Stream:
        """The test stream with the first ``limit`` queries of one campaign woven in from position ``skip``, the
        attack ``share`` of the traffic from then on, spread over ``split`` callers."""
        rows = self.campaigns[campaign].rows[:limit]
        return mix(self.test, rows, campaign, split, share, seed=SEED + campaign, skip=skip)


def _specs(plan: Plan) -> list:
    evasion = [
        (campaigns.evasion, attack, model, n)
        for attack, (models, _) in campaigns.EVASION.items()
        for model in models
        for n in range(plan.evasion_starts)
    ]
    extraction = [
        (campaigns.extraction, attack, model, n)
        for attack in campaigns.EXTRACTION
        for model in ("gbt", "logreg")
        for n in range(plan.extraction_runs)
    ]
    return evasion + extraction


def _run(spec) -> Campaign:
    function, *arguments = spec
    return function(*arguments)


def generate(plan: Plan, workers: int = 2) -> Traffic:
    with ProcessPoolExecutor(workers) as pool:
        runs = list(pool.map(_run, _specs(plan)))
    return Traffic(phishing().names, benign(0, plan.calibration_callers), benign(1, plan.test_callers), runs)


def load(plan: Plan, cache: pathlib.Path | None = CACHE, workers: int = 2) -> Traffic:
    """The plan's traffic, from the cache when it is there (else generated and saved)."""
    key = hashlib.sha256(json.dumps([VERSION, SEED, dataclasses.astuple(plan)]).encode()).hexdigest()[:12]
    path = cache / f"attack-traffic-{key}.npz" if cache else None
    if path and path.exists():
        return _read(path)
    traffic = generate(plan, workers)
    if path:
        cache.mkdir(parents=True, exist_ok=True)
        _write(traffic, path)
    return traffic


def _write(traffic: Traffic, path: pathlib.Path) -> None:
    arrays, meta = {}, {"names": traffic.names, "campaigns": []}
    for part in ("calibration", "test"):
        for field, value in dataclasses.asdict(getattr(traffic, part)).items():
            arrays[f"{part}.{field}"] = value.astype(str) if field == "callers" else value
    for i, run in enumerate(traffic.campaigns):
        scalars = {}
        for field in dataclasses.fields(Campaign):
            value = getattr(run, field.name)
            if isinstance(value, np.ndarray):
                arrays[f"{i}.{field.name}"] = value
            else:
                scalars[field.name] = value
        meta["campaigns"].append(scalars)
    np.savez_compressed(path, meta=json.dumps(meta), **arrays)


def _read(path: pathlib.Path) -> Traffic:
    with np.load(path) as saved:
        meta = json.loads(str(saved["meta"]))
        parts = {
            part: Stream(*(saved[f"{part}.{f.name}"] for f in dataclasses.fields(Stream)))
            for part in ("calibration", "test")
        }
        runs = []
        for i, scalars in enumerate(meta["campaigns"]):
            arrays = {f.name: saved[f"{i}.{f.name}"] for f in dataclasses.fields(Campaign) if f"{i}.{f.name}" in saved}
            runs.append(Campaign(**scalars, **arrays))
    return Traffic(tuple(meta["names"]), parts["calibration"], parts["test"], runs)

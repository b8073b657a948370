"""Detector study for issue 6: which per-caller design catches black-box probing and model extraction from the
SDK's span attributes (caller id, SimHash input fingerprint) at Blacklight's operating point.

    python bench/attack_study.py            # full run (10 starting rows per attack and model, 3,000 + 3,000 callers)
    python bench/attack_study.py --quick    # 3 starting rows, 600 + 600 callers (under a minute with a warm cache)

Traffic comes from ``bench/attacks`` (ART campaigns against scikit-learn models on river's Phishing data, benign
callers replaying held-out rows; cached in ``bench/.cache``). Rows are fingerprinted with the SDK's own
``otelml.sdk.hashing.Fingerprinter`` (64 and 128 bits), standardized with the first 1,000 benign rows as the SDK does;
every attack query is assumed to be its own call (the SDK fingerprints calls of up to 16 rows only).

Each design (``bench/attacks/detectors.py``) gives a score per query; its threshold is the lowest that keeps both
the share of alarmed queries and the share of alarmed callers at or below ``--target`` on the calibration callers.
It is then measured on the other (test) callers and on the campaigns: per-caller designs see each campaign's queries
alone (split round-robin over 1, 5 or 20 callers); the global design sees them woven into the test stream, the
attack ``SHARE`` of the traffic, after WARM benign queries. "Queries to alert" counts every attack query of the
campaign (all its callers) up to and including the first alarmed one; the attacker is stopped there and keeps the
closest misclassified row it was answered on ("L2 at alert", against ART's unhindered result).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import numpy as np
from attacks import FULL, QUICK, load
from attacks.detectors import CallerKnn, CallerNovelty, CallerPrada, CallerVolume, GlobalLsh
from attacks.stream import interleave, woven

from otelml.sdk.hashing import Fingerprinter

KEY = b"attack bench caller key"
WARM = 20_000  # benign test queries the global design sees before an attack starts
SHARE = 0.02  # the attack's share of traffic once it runs (global design)
LIMIT = 2_000  # attack queries looked at per campaign
GLOBAL_LIMIT = 600  # ... by the global design (woven into benign traffic, 30,000 events)
SPLITS = (1, 5, 20)
PROBING = ("hsj", "hsj5", "boundary")  # the goal: every one of these detected


@dataclasses.dataclass(frozen=True)
class Design:
    name: str
    make: object  # () -> detector
    scope: str  # "caller" or "global"
    bits: int
    digest: bool  # repeats by exact row digest instead of by fingerprint
    allow: tuple = ()  # benign caller kinds the operator allowlists (left out of calibration and test)


def designs(bits_options=(64, 128)) -> list:
    out = []
    for bits in bits_options:
        for digest in (False, True):
            tag = f"{bits}b{'+digest' if digest else ''}"
            out += [
                Design(f"(a) knn k=5 {tag}", partial(CallerKnn, k=5, buffer=100), "caller", bits, digest),
                Design(
                    f"(b) global r={bits // 32} {tag}",
                    partial(GlobalLsh, bits, bands=bits // 16, radius=bits // 32, window=10_000),
                    "global",
                    bits,
                    digest,
                ),
            ]
        out += [
            Design(f"(c1) volume {bits}b", partial(CallerVolume), "caller", bits, False),
            Design(
                f"(c1) volume {bits}b, gateways allowed", partial(CallerVolume), "caller", bits, False, ("gateway",)
            ),
            Design(f"(c2) prada {bits}b", partial(CallerPrada), "caller", bits, False),
            Design(f"(c3) novelty {bits}b", partial(CallerNovelty, bits, bits // 8), "global", bits, False),
        ]
    return out


# --- fingerprints ---------------------------------------------------------------------------------------------------
class Prints:
    """Fingerprints (the SimHash part of what the SDK sends, hex) and exact row digests of every stream and campaign,
    for one bit width; the designs choose whether to use the digests."""

    def __init__(self, traffic, bits: int):
        fingerprinter = Fingerprinter(KEY, traffic.names, bits)
        fingerprinter.fingerprints(traffic.calibration.rows[:1000])  # the SDK's warm-up: mean and sd fixed after
        self.of = lambda rows: (
            np.array([f.partition(".")[0] for f in fingerprinter.fingerprints(rows)], dtype=object),
            digests(rows),
        )
        self.calibration = self.of(traffic.calibration.rows)
        self.test = self.of(traffic.test.rows)
        self.campaigns = [self.of(c.rows[:LIMIT]) for c in traffic.campaigns]


def digests(rows: np.ndarray) -> np.ndarray:
    return np.array([hashlib.blake2b(r.tobytes(), key=KEY, digest_size=8).hexdigest() for r in rows], dtype=object)


# --- running designs --------------------------------------------------------------------------------------------------
def run(detector, callers, prints, digest: bool, threshold: float = np.inf) -> np.ndarray:
    """Scores of a stream, stopping after the first score above ``threshold`` (an alarm)."""
    fingerprints, rows = prints
    scores = np.full(len(callers), -np.inf)
    for i, caller in enumerate(callers):
        scores[i] = detector.update(caller, fingerprints[i], rows[i] if digest else None)
        if scores[i] > threshold:
            return scores[: i + 1]
    return scores


def calibrate(scores: np.ndarray, callers: np.ndarray, target: float) -> float:
    """The lowest threshold (alarm: score above it) with alarmed queries and alarmed callers both at most
    ``target`` (as shares); at worst the highest benign score."""
    finite = np.unique(scores[np.isfinite(scores)])
    _, caller_of = np.unique(callers, return_inverse=True)
    worst = np.full(caller_of.max() + 1, -np.inf)
    np.maximum.at(worst, caller_of, scores)
    for threshold in finite:
        if np.mean(scores > threshold) <= target and np.mean(worst > threshold) <= target:
            return float(threshold)
    return np.inf  # no finite score at all


def alarms(scores: np.ndarray, callers: np.ndarray, threshold: float) -> tuple:
    """Alarmed queries per 1,000, share of alarmed callers, and the benign kinds of the alarmed callers."""
    alarmed = scores > threshold
    bad = np.unique(callers[alarmed])
    kinds = sorted({str(c).split("-")[1] for c in bad})
    return 1000 * alarmed.mean(), len(bad) / len(np.unique(callers)), kinds


def campaign_alert(design: Design, detector, threshold, traffic, prints, i: int, split: int) -> int | None:
    """Attack queries until the first alarm on an attacking caller (None: none within LIMIT)."""
    fingerprints, rows = prints.campaigns[i]
    k = len(fingerprints)
    attackers = np.array([f"attack{i}-{j % split}" for j in range(k)], dtype=object)
    if design.scope == "caller":
        scores = run(design.make(), attackers, (fingerprints, rows), design.digest, threshold)
        return len(scores) if scores[-1] > threshold else None
    k = min(k, GLOBAL_LIMIT)
    mask = woven(len(traffic.test), k, SHARE, seed=i, skip=WARM)
    test_fp, test_rows = prints.test
    mixed = [interleave(mask, test_fp, fingerprints), interleave(mask, test_rows, rows)]
    callers = interleave(mask, traffic.test.callers.astype(object), attackers)
    fired = run(detector, callers[WARM:], [m[WARM:] for m in mixed], design.digest, threshold)
    # benign alarms in between do not stop the attack: go on until an attacking caller is alarmed
    position = WARM
    while fired[-1] > threshold and not mask[position + len(fired) - 1]:
        position += len(fired)
        fired = run(detector, callers[position:], [m[position:] for m in mixed], design.digest, threshold)
    end = position + len(fired)
    return int(mask[:end].sum()) if fired[-1] > threshold else None


def study(design: Design, traffic, target: float) -> dict:
    started = time.perf_counter()
    prints = Prints(traffic, design.bits)
    benign = {}
    for part in ("calibration", "test"):
        callers = getattr(traffic, part).callers
        keep = np.array([str(c).split("-")[1] not in design.allow for c in callers])
        benign[part] = callers[keep], [p[keep] for p in getattr(prints, part)]
    calibration = run(design.make(), *benign["calibration"], design.digest)
    threshold = calibrate(calibration, benign["calibration"][0], target)
    test = run(design.make(), *benign["test"], design.digest)
    per_1000, callers, kinds = alarms(test, benign["test"][0], threshold)
    warm = None
    if design.scope == "global":
        warm = design.make()
        run(warm, traffic.test.callers[:WARM], [p[:WARM] for p in prints.test], design.digest)
    alerts = {}
    for i in range(len(traffic.campaigns)):
        for split in SPLITS if traffic.campaigns[i].kind == "evasion" else (1,):
            detector = copy.deepcopy(warm) if warm is not None else None
            alerts[i, split] = campaign_alert(design, detector, threshold, traffic, prints, i, split)
    return {
        "design": design.name,
        "threshold": threshold,
        "fp_per_1000": per_1000,
        "fp_callers": callers,
        "fp_kinds": kinds,
        "alerts": alerts,
        "seconds": time.perf_counter() - started,
    }


# --- report -----------------------------------------------------------------------------------------------------------
def summary(result: dict, traffic) -> dict:
    runs = traffic.campaigns

    def queries(attacks, split=1):
        chosen = [i for i, c in enumerate(runs) if c.name.split("/")[0] in attacks]
        return chosen, [result["alerts"][i, split] for i in chosen]

    out = {"design": result["design"], "thr": result["threshold"], "fp/1k": result["fp_per_1000"]}
    out["fp callers"] = result["fp_callers"]
    for split in SPLITS:
        chosen, found = queries(PROBING, split)
        hits = [q for q in found if q is not None]
        out[f"x{split} det"] = f"{len(hits)}/{len(found)}"
        out[f"x{split} med"] = np.median(hits) if hits else np.nan
        if split == 1:
            out["x1 p90"] = np.percentile(hits, 90) if hits else np.nan
            at_alert = [runs[i].best_adversarial(q) for i, q in zip(chosen, found) if q is not None]
            out["adv@alert"] = np.mean(np.isfinite(at_alert)) if at_alert else np.nan
            out["L2@alert"] = np.nanmedian(at_alert) if np.isfinite(at_alert).any() else np.nan
            out["L2 free"] = np.nanmedian([runs[i].final_l2 for i in chosen])
            out["L2<=.5@alert"] = np.mean(np.nan_to_num(at_alert, nan=np.inf) <= 0.5) if at_alert else np.nan
            out["L2<=.5 free"] = np.mean(np.nan_to_num([runs[i].final_l2 for i in chosen], nan=np.inf) <= 0.5)
    chosen, found = queries(("zoo",))
    out["zoo det"] = f"{sum(q is not None for q in found)}/{len(found)}"
    for attack in ("knockoff", "synthetic"):
        chosen, found = queries((attack,))
        hits = [(q, runs[i].fidelity_at(q)) for i, q in zip(chosen, found) if q is not None]
        out[f"{attack} det"] = f"{len(hits)}/{len(found)}"
        out[f"{attack} q"] = np.median([q for q, _ in hits]) if hits else np.nan
        out[f"{attack} fid"] = np.median([f for _, f in hits]) if hits else np.nan
    return out


def table(rows: list) -> str:
    columns = list(rows[0])

    def cell(value):
        if isinstance(value, float):
            return "-" if np.isnan(value) else f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
        return str(value)

    cells = [[cell(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(r[j]) for r in cells)) for j, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def traffic_summary(traffic) -> str:
    lines = []
    for part in ("calibration", "test"):
        stream = getattr(traffic, part)
        lines.append(f"benign {part}: {len(stream):,} queries from {len(np.unique(stream.callers)):,} callers")
    by_attack = {}
    for c in traffic.campaigns:
        by_attack.setdefault(c.name.rsplit("/", 1)[0], []).append(c)
    for name, runs in by_attack.items():
        queries = np.median([c.queries for c in runs])
        if runs[0].kind == "evasion":
            success = np.mean([np.isfinite(c.final_l2) for c in runs])
            batched = np.mean([c.calls[c.calls > 16].sum() / c.calls.sum() for c in runs])  # no fingerprint
            lines.append(
                f"{name}: {len(runs)} campaigns, median {queries:,.0f} queries, success {success:.0%} unhindered, "
                f"median L2 {np.nanmedian([c.final_l2 for c in runs]):.3f}; {batched:.0%} of queries in calls >16 rows"
            )
        else:
            fid = np.median([c.fidelity for c in runs], axis=0)
            lines.append(
                f"{name}: {len(runs)} runs, fidelity after 50/100/200 queries {fid[4]:.3f}/{fid[6]:.3f}/{fid[8]:.3f}"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small plan, to check that it runs")
    parser.add_argument("--target", type=float, default=0.001, help="benign alarm share allowed (queries, callers)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    traffic = load(QUICK if args.quick else FULL, workers=args.workers)
    print(f"traffic ready in {time.perf_counter() - started:.1f} s")
    print(traffic_summary(traffic))
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(study, designs(), [traffic] * len(designs()), [args.target] * len(designs())))
    print()
    print(table([summary(r, traffic) for r in results]))
    print()
    for r in results:
        print(f"{r['design']}: benign callers alarmed are {r['fp_kinds'] or 'none'}; {r['seconds']:.1f} s")
    print(f"\nbench took {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

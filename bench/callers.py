"""CPU cost of per-caller attack detection: microseconds of CPU per query of ``CallerWatch.observe_spans``, in process.

One model, 300 or 3,000 callers, 64- or 128-bit fingerprints. The traffic is seeded and the same for every run:
ordinary callers asking rows of a mixture of clusters (a fifth of them re-asking a few favourite rows), one caller
walking in small steps (an evasion prober) and, in the second half, twenty accounts asking about one point (a
split campaign), each query one span with a SimHash fingerprint and an exact-input digest, 64 spans per export
request. The watch is
first warmed (its reservoir and recent arrays full), then the CPU time (``time.process_time``, not wall time: the
machine is shared) of the measured requests is divided by their queries.

With ``--against REF`` (default ``main``), the package at that git revision (``git archive``, into a temporary
directory) runs the same traffic in its own process, alternating with this checkout's, and the table shows both and
their ratio, and the findings of each (by detector). Those are a sanity check, not a comparison: split-probing
alarms come in runs while a campaign's region is denser now than in the reservoir, and how long that lasts depends
on which fingerprints the reservoir happened to keep (random draws that differ between versions); compare
detections with ``tests/test_attacks.py`` and ``bench/attack_eval.py``.

    python bench/callers.py                 # all cases, three rounds each, against main
    python bench/callers.py --quick         # fewer queries, one round
    python bench/callers.py --against none  # this checkout only
    python bench/callers.py --profile       # cProfile of this checkout on one case (300 callers, 128 bits)
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
FEATURES = 9
SPANS_PER_REQUEST = 64


def traffic(callers: int, bits: int, queries: int, seed: int = 0) -> list:
    """``queries`` calls as (caller, fingerprint hex): SimHash of the row and a digest of its exact values."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2, size=(6, FEATURES))
    projection = rng.standard_normal((FEATURES, bits))
    favourites = centres[rng.integers(0, 6, 30)] + rng.normal(size=(30, FEATURES))

    def ordinary(who: int) -> np.ndarray:
        if who % 5 == 0:
            return favourites[who % 28 + int(rng.integers(0, 3))]
        return centres[rng.integers(0, 6)] + rng.normal(size=FEATURES)

    start, target = centres[0] + rng.normal(size=FEATURES), centres[1] + rng.normal(size=FEATURES)
    point = centres[2] + rng.normal(size=FEATURES)
    calls, walked = [], 0
    for q in range(queries):
        u = rng.random()
        if u < 0.02:  # the walker
            walked += 1
            row = start + (target - start) * (walked % 200) / 200 + rng.normal(size=FEATURES) * 0.05
            caller = "walker"
        elif u < 0.07 and q > queries // 2:  # the split campaign, in the second half
            row, caller = point + rng.normal(size=FEATURES) * 0.05, f"sybil-{q % 20}"
        else:
            who = int(rng.integers(0, callers))
            row, caller = ordinary(who), f"caller-{who}"
        calls.append((caller, row))
    rows = np.array([r for _, r in calls]).astype(np.float32)
    signs = np.packbits(rows.astype(np.float64) @ projection > 0, axis=1)
    digests = (rows.view(np.uint32).astype(np.uint64) * np.arange(1, 2 * FEATURES, 2, dtype=np.uint64)).sum(axis=1)
    digests = (digests ^ (digests >> np.uint64(29))) & np.uint64(0xFFFFFFFF)
    return [(c, f"{s.tobytes().hex()}.{int(d):08x}") for (c, _), s, d in zip(calls, signs, digests)]


def requests(calls: list, bits: int) -> list:
    """The calls as export requests of ``SPANS_PER_REQUEST`` decoded spans each."""
    from otelml import semconv
    from otelml.analyzer.ingest.points import SpanSummary

    spans = []
    for i, (caller, fingerprint) in enumerate(calls):
        attributes = {
            semconv.MODEL_NAME: "m",
            semconv.MODEL_VERSION: "1",
            semconv.CALLER_ID: caller,
            semconv.INPUT_FINGERPRINT: fingerprint,
        }
        spans.append(SpanSummary((), "predict m", f"{i:032x}", f"{i:016x}", i, i + 1, attributes, False))
    return [spans[i : i + SPANS_PER_REQUEST] for i in range(0, len(spans), SPANS_PER_REQUEST)]


def worker(callers: int, bits: int, warm: int, measure: int) -> dict:
    """Warm a watch, then the CPU microseconds per measured query and the findings by detector."""
    import otelml
    from otelml.analyzer.attacks import CallerWatch

    batches = requests(traffic(callers, bits, warm + measure), bits)
    split = warm // SPANS_PER_REQUEST
    watch = CallerWatch()
    for batch in batches[:split]:
        watch.observe_spans(batch)
    measured = sum(len(b) for b in batches[split:])
    started = time.process_time()
    for batch in batches[split:]:
        watch.observe_spans(batch)
    cpu = time.process_time() - started
    findings: dict = {}
    for found in watch.pending.values():
        for f in found:
            key = f"{f.detector}: {'benign' if f.details['caller'].startswith('caller-') else 'attack'}"
            findings[key] = findings.get(key, 0) + 1
    return {"us": 1e6 * cpu / measured, "findings": findings, "package": str(pathlib.Path(otelml.__file__).parent)}


def run(path: str, callers: int, bits: int, warm: int, measure: int) -> dict:
    env = dict(os.environ, PYTHONPATH=path)
    command = [sys.executable, __file__, "--worker", str(callers), str(bits), str(warm), str(measure)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, cwd=path)
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def profile(callers: int, bits: int, warm: int, measure: int) -> None:
    import cProfile
    import pstats

    from otelml.analyzer.attacks import CallerWatch

    batches = requests(traffic(callers, bits, warm + measure), bits)
    split = warm // SPANS_PER_REQUEST
    watch = CallerWatch()
    for batch in batches[:split]:
        watch.observe_spans(batch)
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for batch in batches[split:]:
        watch.observe_spans(batch)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer queries, one round")
    parser.add_argument("--against", default="main", help="git revision to compare with ('none': no comparison)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--worker", nargs=4, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    warm, measure = (3_200, 1_600) if args.quick else (6_400, 6_400)
    if args.profile:
        profile(300, 128, warm, measure)
        return
    rounds = args.rounds or (1 if args.quick else 3)
    began = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        sides = {"new": str(ROOT)}
        if args.against != "none":
            archive = subprocess.run(["git", "archive", args.against, "otelml"], cwd=ROOT, capture_output=True)
            if archive.returncode:
                sys.exit(archive.stderr.decode())
            subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
            sides = {"old": tmp, "new": str(ROOT)}
        print(
            f"CPU us per query of CallerWatch.observe_spans ({warm} queries warm, {measure} measured, {rounds} rounds,"
        )
        print(f"min over rounds; old = {args.against}, new = {ROOT})")
        header = f"{'callers':>8} {'bits':>5} " + " ".join(f"{s + ' us':>9}" for s in sides)
        print(header + (f" {'old/new':>8}" if len(sides) == 2 else ""))
        findings = []
        for callers in (300, 3000):
            for bits in (64, 128):
                best: dict = {}
                for r in range(rounds):
                    order = list(sides) if r % 2 == 0 else list(sides)[::-1]
                    for side in order:
                        result = run(sides[side], callers, bits, warm, measure)
                        best[side] = min(best.get(side, 1e18), result["us"])
                        findings.append((callers, bits, side, result["findings"]))
                line = f"{callers:>8} {bits:>5} " + " ".join(f"{best[s]:>9.1f}" for s in sides)
                if len(sides) == 2:
                    line += f" {best['old'] / best['new']:>8.1f}"
                print(line, flush=True)
        print("\nfindings over the whole run (detector: caller kind -> count), last round of each side:")
        last = {(c, b, s): f for c, b, s, f in findings}
        for (callers, bits, side), found in last.items():
            print(f"{callers:>8} {bits:>5} {side:>4}  {json.dumps(found, sort_keys=True)}")
    print(f"\nbench took {time.process_time() - began:.0f} s of CPU in this process (the workers' not counted)")


if __name__ == "__main__":
    main()

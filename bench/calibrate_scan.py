"""Calibrate the mean-shift scan: how often its statistic crosses each level on windows with no shift.

Runs ``otelml.analyzer.detectors.scan.MeanShiftScan`` itself on many independent streams at once, each window a
Gaussian sum of ``ROWS`` PIT scores (variance 1/12 each; sums of uniform scores have lighter tails, so Gaussian sums
err on the side of more crossings). Counts alarms, with a restart after each (an alarm at window ``t`` hides crossings
until the look-back has passed), per level ``h``, and fits ``ln(rate per window) + h = K0 + K1 ln h``: the constants
of ``scan.log_arl``. With ``--reference-windows M`` every stream also gets a reference of ``M`` windows' rows whose
sampling error shifts all its windows (drawn anew per stream), the case the scan's two-sample variance covers on
average.

    python bench/calibrate_scan.py                       # about 10 minutes: 1e8 stream-windows
    python bench/calibrate_scan.py --windows 2e6 --reference-windows 500
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from otelml.analyzer.detectors import scan

ROWS = 200
LEVELS = np.arange(6.0, 16.01, 0.5)
FIT_FROM = 8.0


def crossings(streams: int, windows: int, reference_windows: float, seed: int) -> np.ndarray:
    """Alarms per level of ``streams`` scans over ``windows`` windows each."""
    rng = np.random.default_rng(seed)
    m = np.full(streams, reference_windows * ROWS)
    sd = np.sqrt(ROWS / 12)
    shift = rng.normal(0.0, np.sqrt(1 / 12 / m)) * ROWS if np.isfinite(reference_windows) else np.zeros(streams)
    runner = scan.MeanShiftScan(m)
    last = np.full((LEVELS.size, streams), -(10**9))
    alarms = np.zeros(LEVELS.size, dtype=np.int64)
    counts = np.full(streams, float(ROWS))
    for t in range(windows):
        runner.update(rng.standard_normal(streams) * sd + shift, counts)
        g = runner.statistics()
        fired = (g[None, :] >= LEVELS[:, None]) & (t >= last + runner.lookback)
        alarms += fired.sum(axis=1)
        last[fired] = t
    return alarms


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=float, default=1e8, help="stream-windows in all")
    parser.add_argument("--streams", type=int, default=10_000, help="streams run side by side")
    parser.add_argument("--reference-windows", type=float, default=float("inf"))
    parser.add_argument("--seed", type=int, default=20_251_122)
    args = parser.parse_args(argv)
    per_stream = int(args.windows // max(args.streams, 1))
    if args.streams < 1 or per_stream < 2 * scan.LOOKBACK:
        parser.error(f"--streams must be at least 1 and --windows at least {2 * scan.LOOKBACK} per stream")
    if not args.reference_windows > 0:
        parser.error("--reference-windows must be positive")
    started = time.perf_counter()
    alarms = crossings(args.streams, per_stream, args.reference_windows, args.seed)
    total = per_stream * args.streams
    kappa = np.log(np.maximum(alarms, 1) / total) + LEVELS
    fit = (LEVELS >= FIT_FROM) & (alarms >= 20)  # enough alarms to estimate a rate
    print(f"look-back {scan.LOOKBACK} windows, {total:.3g} stream-windows, reference {args.reference_windows} windows")
    if fit.sum() >= 2:
        k1, k0 = np.polyfit(np.log(LEVELS[fit]), kappa[fit], 1)
        fitted = np.exp(k0 + k1 * np.log(LEVELS))
        print(f"fit from h = {FIT_FROM:g}: K0 = {k0:.3f}, K1 = {k1:.3f} (in use: K0 = {scan.K0}, K1 = {scan.K1})")
    else:
        fitted = np.full(LEVELS.size, np.nan)
        print(f"too few levels from h = {FIT_FROM:g} with 20 alarms or more to fit: run more windows")
    print("     h   alarms  rate x e^h   fit   in use")
    for h, a, k, f in zip(LEVELS, alarms, kappa, fitted):
        print(f"  {h:4.1f} {a:8d} {np.exp(k):10.3f} {f:6.3f} {np.exp(h - scan.log_arl(h)):8.3f}")
    print(f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Fuzz a real analyzer process: seeded mutations of real SDK requests over OTLP/gRPC and OTLP/HTTP (protobuf, JSON,
gzip), with health, RSS and a canary model checked every --check-every requests, then kill -9 and a restart.

    .venv/bin/python bench/fuzz.py --requests 1000000 --seed 1          # the long run
    .venv/bin/python bench/fuzz.py --requests 2000                      # a quick one
    .venv/bin/python bench/fuzz.py --seed 1 --start 12345 --requests 1  # replay one saved problem

Prints progress after each check and a final table (requests/s, answers by class and by mutation family, max RSS,
restart time). Failures (5xx other than 503/429, gRPC INTERNAL/UNKNOWN) and wedges (resets, time-outs) are saved
with their bodies under --out/problems. Exit status 0 when the run passed. See bench/fuzzing.py for the machinery.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fuzzing  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=int, default=0, help="index of the first request (to replay one)")
    parser.add_argument("--check-every", type=int, default=20_000, help="requests between checks")
    parser.add_argument("--processes", type=int, default=2, help="sender processes (0: threads of this one)")
    parser.add_argument("--threads", type=int, default=6, help="sender threads per process")
    parser.add_argument("--family", action="append", choices=sorted(fuzzing.FAMILIES), help="only these (repeat)")
    parser.add_argument("--window", type=float, default=5.0, help="the analyzer's window, seconds (the test: 1)")
    parser.add_argument("--seconds", type=float, help="stop sending after this long (after a whole batch)")
    parser.add_argument("--out", help="output directory (state, logs, problems); default: a new temporary one")
    args = parser.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="otelml-fuzz-"))
    print(f"output in {out}", flush=True)

    def progress(report):
        counts = report.tally.counts
        print(
            f"{time.strftime('%H:%M:%S')} {report.tally.requests:>9,} requests {report.rate:7.1f}/s "
            + " ".join(f"{k}={counts.get(k, 0):,}" for k in fuzzing.CLASSES)
            + f" rss={report.max_rss_mb:.0f}MB health<={report.max_health_s:.2f}s"
            + (f" CHECK ERRORS: {len(report.check_errors)}" if report.check_errors else ""),
            flush=True,
        )

    report = fuzzing.run(
        out,
        seed=args.seed,
        requests=args.requests,
        start=args.start,
        check_every=args.check_every,
        processes=args.processes,
        threads=args.threads,
        families=args.family,
        window=args.window,
        seconds=args.seconds,
        progress=progress,
    )
    print()
    print(fuzzing.table(report))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())

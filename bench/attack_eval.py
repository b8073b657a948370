"""Attack detection through the real SDK and analyzer, on ART campaigns against Phishing models.

Every query of the bench's traffic (``attacks``: benign callers replaying held-out Phishing rows (among them jittered re-senders, float32 clients and paging clients), ART HopSkipJump,
Boundary and ZOO evasion, KnockoffNets and a synthetic extraction thief) is a call of a real ``@otelml.monitor``
predict function with ``caller=`` and ``fingerprint_bits=128``, batched as the attack batched it; the spans go over
OTLP/HTTP to ``otelml analyzer`` running as its own process, whose alerts arrive at a local OTLP receiver (the
SIEM). The benign gateways (a mail gateway scoring every link it sees: as much volume as a thief) are listed as
``trusted`` in the analyzer's config, as their operator would. Campaigns run one after another, each woven into
the benign stream at ``--share`` of the traffic (10%) from its start, its queries spread round-robin over 1, 5 or 20
accounts (a batch of the attack split over as many accounts).

An alert's own span id is the query at which the analyzer's test crossed its threshold; "queries until the alert"
counts the campaign's queries up to that one. (Blocking would happen when the record arrives, one window later.)

Reports, after Blacklight's metrics: benign callers alerted and benign incidents per 1,000 benign queries; campaigns
detected; median and 90th percentile of attack queries until the first alert; what the attacker holds when blocked
there (an adversarial example at all, its L2 distance) against the unhindered attack; extraction queries until the
alert and the thief's fidelity then.

    python bench/attack_eval.py              # all campaigns (bench/attacks FULL traffic), about 8 minutes
    python bench/attack_eval.py --quick      # a third of them, about 3 minutes
    python bench/attack_eval.py --share 0.02 # campaigns at 2% of the traffic (five times the benign calls)
    python bench/attack_eval.py --fresh 0.3  # 30% of benign calls with an input never seen before
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time
import warnings

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
warnings.filterwarnings("ignore", message="PyTorch not found")

from attacks import FULL, QUICK, load  # noqa: E402
from attacks.data import victim  # noqa: E402

import otelml  # noqa: E402
from otelml import semconv  # noqa: E402
from otelml.sdk.hashing import CallerHasher  # noqa: E402
from otelml.testing import OTLPSink, attributes, free_port, launch_analyzer  # noqa: E402

KEY = "attack evaluation key"
BITS = 128
SHARE = 0.1  # the campaign's share of the traffic while it runs
LIMIT = 400  # attack queries sent per campaign (the goals look at 50, 200 and 300)
WARM = 40_000  # benign calls before the first campaign (the volume tests wait for 1,000 callers)
FLUSH_EVERY = 400  # calls between force_flush (backpressure: the span queue never overflows)
PROBING = ("hsj", "hsj5", "boundary")


def start_analyzer(state_dir: str, alerts: str, trusted: list):
    """The analyzer process with one-second windows, alerts to ``alerts``, the ``trusted`` callers in its config."""
    config = pathlib.Path(state_dir) / "analyzer.toml"
    config.write_text("[attacks]\ntrusted = [" + ", ".join(f'"{t}"' for t in trusted) + "]\n")
    ports = [free_port() for _ in range(3)]
    flags = ["--config", str(config), "--window", "1", "--lateness", "0"]
    flags += ["--alerts-endpoint", alerts, "--alerts-protocol", "http/protobuf"]
    log = open(pathlib.Path(state_dir) / "analyzer.log", "wb")  # a file: a pipe nobody reads would fill up
    return launch_analyzer(ports, state_dir, *flags, output=log), ports[1]


def schedule(traffic, chosen: list, split: int, seed: int, share: float = SHARE, fresh: float = 0.0) -> list:
    """Calls in order: (caller, rows, campaign or -1). Benign calls are one row each; the benign stream is replayed
    with renamed callers when it runs out, so no benign caller grows past its own volume. A ``fresh`` share of
    benign calls change one feature of their row to another value it takes in the data: inputs never seen before,
    as real traffic brings them (the replayed rows soon have all been seen)."""
    rng = np.random.default_rng(seed)
    benign, position, loop = traffic.test, 0, 0
    values = [np.unique(column) for column in benign.rows.T]

    def refresh(row):
        if rng.random() >= fresh:
            return row
        row, j = row.copy(), rng.integers(row.shape[1])
        row[0, j] = rng.choice(values[j][values[j] != row[0, j]])
        return row

    def benign_calls(n):
        nonlocal position, loop
        out = []
        for _ in range(n):
            if position == len(benign):
                position, loop = 0, loop + 1
            out.append((f"{benign.callers[position]}~{loop}", refresh(benign.rows[position][None]), -1))
            position += 1
        return out

    calls = benign_calls(WARM)
    for c in chosen:
        run = traffic.campaigns[c]
        sent, account = 0, 0
        for size in run.calls:
            size = int(min(size, LIMIT - sent))
            if size <= 0:
                break
            calls += benign_calls(int(rng.poisson(size * (1 - share) / share)))
            for part in np.array_split(np.arange(sent, sent + size), min(size, split)):  # a batch over accounts
                calls.append((f"attack{c}-{account % split}", run.rows[part], c))
                account += 1
            sent += size
    return calls + benign_calls(2_000)


def replay(calls: list, names: tuple) -> tuple:
    """Send the calls through the SDK into a fresh analyzer; returns (span id of each call, alert records)."""
    model = victim("gbt")
    with OTLPSink() as siem, tempfile.TemporaryDirectory() as state:
        hasher = CallerHasher(KEY.encode())
        gateways = sorted({hasher.id(caller) for caller, _, _ in calls if "-gateway-" in caller})
        proc, port = start_analyzer(state, siem.http_endpoint, gateways)
        otelml.configure(
            endpoint=f"http://127.0.0.1:{port}",
            caller_key=KEY,
            service_name="attack-eval",
            set_global_tracer_provider=False,
            export_interval_s=3600,
        )
        predict = otelml.monitor(
            model="phishing", version="1", feature_names=names, caller="caller", fingerprint_bits=BITS
        )(lambda rows, caller: model.predict_proba(rows))
        span_ids = []
        try:
            for i, (caller, rows, _) in enumerate(calls):
                predict(rows.astype(np.float32) if "-float32-" in caller else rows, caller=caller)
                span_ids.append(otelml.last_prediction_id())
                if i % FLUSH_EVERY == FLUSH_EVERY - 1:
                    otelml.force_flush()
            otelml.force_flush()
            time.sleep(1.2)
            predict(calls[0][1], caller="closing")  # a call in the next window closes the last one
            otelml.force_flush()
            records = settle(siem)
        finally:
            otelml.shutdown()
            proc.terminate()
            proc.wait(10)
    return span_ids, records


def settle(siem, quiet_s: float = 3.0, limit_s: float = 60.0) -> list:
    """Alert records once none has arrived for ``quiet_s``."""
    deadline, last, seen = time.monotonic() + limit_s, time.monotonic(), 0
    while time.monotonic() < deadline and time.monotonic() - last < quiet_s:
        time.sleep(0.2)
        records = [
            r for q in siem.requests["logs"] for rl in q.resource_logs for sl in rl.scope_logs for r in sl.log_records
        ]
        if len(records) != seen:
            seen, last = len(records), time.monotonic()
    return records


def first_alerts(calls: list, span_ids: list, records: list) -> dict:
    """Caller name -> (call index of its first adversarial alert, detector)."""
    hasher = CallerHasher(KEY.encode())
    names = {hasher.id(caller): caller for caller, _, _ in calls}
    where = {span: i for i, span in enumerate(span_ids)}
    found: dict = {}
    for record in records:
        a = attributes(record.attributes)
        if a.get(semconv.ALERT_KIND) != "adversarial" or a.get(semconv.ALERT_STATE) != semconv.ALERT_STATE_FIRING:
            continue
        caller, at = names.get(a.get(semconv.CALLER_ID)), where.get(record.span_id.hex())
        if caller is not None and at is not None and (caller not in found or at < found[caller][0]):
            found[caller] = (at, a[semconv.ALERT_DETECTOR])
    return found


def measure(traffic, calls: list, alerts: dict, split: int) -> dict:
    """Per campaign: attack queries until its first alert (None if none) and the detector; benign false positives."""
    per_campaign: dict = {}
    sent: dict = {}
    for i, (caller, rows, c) in enumerate(calls):
        if c < 0:
            continue
        sent[c] = sent.get(c, 0) + len(rows)
        hit = alerts.get(caller)
        if hit is not None and hit[0] == i and c not in per_campaign:
            per_campaign[c] = (sent[c], hit[1])
    benign_callers = {caller for caller, _, c in calls if c < 0}
    benign_queries = sum(len(rows) for _, rows, c in calls if c < 0)
    flagged = [caller for caller in alerts if caller in benign_callers]
    kinds: dict = {}  # benign caller kind -> [callers, alerted, {detector: callers}]
    for caller in benign_callers:
        kinds.setdefault(kind_of(caller), [0, 0, {}])[0] += 1
    for caller in flagged:
        kinds[kind_of(caller)][1] += 1
        detectors = kinds[kind_of(caller)][2]
        detectors[alerts[caller][1]] = detectors.get(alerts[caller][1], 0) + 1
    return {
        "kinds": kinds,
        "campaigns": {c: per_campaign.get(c) for c in {c for _, _, c in calls if c >= 0}},
        "benign callers": len(benign_callers),
        "benign queries": benign_queries,
        "benign alerted": len(flagged),
        "benign detectors": sorted({alerts[c][1] for c in flagged}),
        "split": split,
    }


def kind_of(caller: str) -> str:
    """The kind of a benign caller (``benign1-jitter-17~0``: jitter)."""
    return caller.split("-")[1]


def report(traffic, results: list, share: float) -> None:
    runs = traffic.campaigns
    print("\nBenign traffic (each run: the bench's held-out callers, replayed under new names when they run out)")
    for r in results:
        print(
            f"  split {r['split']:>2}: {r['benign alerted']} of {r['benign callers']:,} benign callers alerted "
            f"({r['benign alerted'] / r['benign callers']:.3%}), {r['benign alerted'] / r['benign queries'] * 1e3:.3f} "
            f"per 1,000 benign queries; detectors {r['benign detectors'] or '-'}"
        )
        for kind, (n, a, detectors) in sorted(r["kinds"].items()):
            by = f" ({', '.join(f'{d} {c}' for d, c in sorted(detectors.items()))})" if detectors else ""
            print(f"           {kind:<8} {a} of {n:,} alerted ({a / n:.2%}){by}")
    print(f"\nEvasion ({', '.join(PROBING)}): attack queries until the first alert, campaign at {share:.0%} of traffic")
    print("  split  detected  median  p90   by")
    for r in results:
        hits = [(runs[c].name, v) for c, v in r["campaigns"].items() if runs[c].name.split("/")[0] in PROBING]
        found = [v[0] for _, v in hits if v is not None]
        by = sorted({v[1] for _, v in hits if v is not None})
        med = f"{np.median(found):6.0f}" if found else "     -"
        p90 = f"{np.percentile(found, 90):5.0f}" if found else "    -"
        print(f"  {r['split']:>5}  {len(found):>3}/{len(hits):<4} {med} {p90}   {', '.join(by)}")
    single = next(r for r in results if r["split"] == 1)
    held = [
        (runs[c].best_adversarial(v[0]), runs[c].final_l2)
        for c, v in single["campaigns"].items()
        if v is not None and runs[c].name.split("/")[0] in PROBING
    ]
    if held:
        at_alert, free = np.array(held).T
        print(
            f"\nBlocked at the alert (one account): {np.isfinite(at_alert).mean():.0%} hold any adversarial example, "
            f"median L2 {np.nanmedian(at_alert):.3f}, {np.mean(np.nan_to_num(at_alert, nan=np.inf) <= 0.5):.0%} "
            f"within L2 0.5; unhindered: median L2 {np.nanmedian(free):.3f}, "
            f"{np.mean(np.nan_to_num(free, nan=np.inf) <= 0.5):.0%} within L2 0.5"
        )
    print("\nOther campaigns (one account): queries until the first alert")
    for kind in ("zoo", "knockoff", "synthetic"):
        rows = [(c, v) for c, v in single["campaigns"].items() if runs[c].name.startswith(kind)]
        found = [
            (v[0], v[1], runs[c].fidelity_at(v[0]) if runs[c].kind == "extraction" else None) for c, v in rows if v
        ]
        text = f"  {kind:<10} {len(found)}/{len(rows)} detected"
        if found:
            text += f", median {np.median([f[0] for f in found]):.0f} queries, by {sorted({f[1] for f in found})}"
            if found[0][2] is not None:
                text += f", thief fidelity then {np.median([f[2] for f in found]):.2f}"
        print(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--share", type=float, default=SHARE, help=f"a campaign's share of traffic (default {SHARE})")
    parser.add_argument("--fresh", type=float, default=0.0, help="share of benign calls with a never-seen input")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    traffic = load(QUICK if args.quick else FULL)
    probing = [c for c, run in enumerate(traffic.campaigns) if run.name.split("/")[0] in PROBING]
    results = []
    for split in (1, 5, 20):
        chosen = range(len(traffic.campaigns)) if split == 1 else probing
        calls = schedule(traffic, list(chosen), split, seed=split, share=args.share, fresh=args.fresh)
        t = time.perf_counter()
        span_ids, records = replay(calls, traffic.names)
        results.append(measure(traffic, calls, first_alerts(calls, span_ids, records), split))
        print(f"split {split}: {len(calls):,} calls through the SDK and analyzer in {time.perf_counter() - t:.0f} s")
    report(traffic, results, args.share)
    print(f"\ntotal time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

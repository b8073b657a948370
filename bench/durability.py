"""kill -9 in the middle of open windows: every acknowledged point counted exactly once after the restarts.

    python bench/durability.py                 # 20 kills at random points (seed 1)
    python bench/durability.py --kills 5 --seed 7

A real analyzer process runs with day-long windows, no idle closing and a day between checkpoints, so after the
checkpoint it writes at start-up, what it acknowledges lives only in its journal (and in memory). Two senders, the
OpenTelemetry OTLP/HTTP and OTLP/gRPC metric exporters, send requests back to back; each request carries the rows of
a model of its own (``h-00042``: one request, one model, so the count of every request can be read back on its own)
and the same rows for a model both senders share. At random (seeded) moments the analyzer is killed with SIGKILL,
whatever it is doing; once the senders' requests in flight have failed it is started again on the same state
directory, and sending goes on. At the end one request per sender, timestamped just past the current window, closes
every window, and ``/api/models`` is read:

- an acknowledged request whose model is missing or short is *lost*; one counted more than once is *double-counted*;
- an unacknowledged request (in flight at a kill) may be counted once or not at all, never twice;
- the shared model holds exactly the rows and points of the requests counted, all in closed windows.

Senders are paused while the analyzer is down, and each export attempt is made by the exporter only while the
analyzer that received it is alive: the exporters' own retries of a request whose answer a kill took away would
count it twice, which is OTLP's at-least-once delivery, not a durability fault, and not what this measures.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpExporter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Metric,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otelml import semconv
from otelml.testing import free_port, launch_analyzer

WINDOW_S = 86400.0
SHARED = "shared"
CLOSER = "closer"
# Windows a day long that close only when the data moves past them (lateness 0, never by silence), a day between
# checkpoints, no live references; points a day ahead are allowed so that the final request can close the windows.
CONFIG = f"""\
window = {WINDOW_S}
lateness = 0.0
idle_timeout = {WINDOW_S}
checkpoint_interval = {WINDOW_S}
warmup = 100000000

[limits]
max_models = 1000000
max_future_s = {2 * WINDOW_S}
"""
_RESTORED = re.compile(r"analyzer state restored: \d+ model versions, (\d+) requests replayed")


class Gate:
    """Lets senders in while the analyzer is up; ``close`` waits until every request in flight has come back."""

    def __init__(self):
        self._cond = threading.Condition()
        self._open = False
        self._stopped = False
        self._inside = 0

    def enter(self) -> bool:
        with self._cond:
            self._cond.wait_for(lambda: self._open or self._stopped)
            if self._stopped:
                return False
            self._inside += 1
            return True

    def leave(self) -> None:
        with self._cond:
            self._inside -= 1
            self._cond.notify_all()

    def open(self) -> None:
        with self._cond:
            self._open = True
            self._cond.notify_all()

    def close(self, timeout_s: float = 120.0) -> None:
        with self._cond:
            self._open = False
            if not self._cond.wait_for(lambda: self._inside == 0, timeout_s):
                raise RuntimeError(f"a sender's export did not come back within {timeout_s} s")

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()


def rows_data(resource: Resource, points: list, start_ns: int, end_ns: int) -> MetricsData:
    """One OTLP request: a delta ``otelml.model.rows`` point over ``(start_ns, end_ns]`` per ``(model, rows)``."""
    data_points = [
        NumberDataPoint({semconv.MODEL_NAME: model, semconv.MODEL_VERSION: "1"}, start_ns, end_ns, rows)
        for model, rows in points
    ]
    metric = Metric(semconv.METRIC_ROWS, None, None, Sum(data_points, AggregationTemporality.DELTA, True))
    scope = ScopeMetrics(InstrumentationScope("durability-bench"), [metric], "")
    return MetricsData([ResourceMetrics(resource, [scope], "")])


class Sender(threading.Thread):
    """Sends requests back to back through a real OTLP exporter; ``sent`` is ``[(model, rows, acknowledged)]``."""

    def __init__(self, name: str, exporter, gate: Gate, seed: int):
        super().__init__(name=f"sender-{name}", daemon=True)
        self.prefix = name
        self.exporter = exporter
        self.gate = gate
        self.resource = Resource({"service.name": "durability", "service.instance.id": name})
        self.rng = random.Random(seed)
        self.sent: list = []
        self.last_ns = time.time_ns()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while self.gate.enter():
                try:
                    self.send_one()
                finally:
                    self.gate.leave()
                time.sleep(0.01)  # leave the machine some room: a kill lands mid-request or between requests
        except BaseException as exc:  # reported by the bench, never swallowed
            self.error = exc

    def send_one(self) -> None:
        model, rows = f"{self.prefix}-{len(self.sent):05d}", self.rng.randint(1, 1000)
        now = max(time.time_ns(), self.last_ns + 1)
        data = rows_data(self.resource, [(model, rows), (SHARED, rows)], self.last_ns, now)
        self.last_ns = now
        self.sent.append((model, rows, self.exporter.export(data) == MetricExportResult.SUCCESS))


def get_json(port: int, path: str):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=120) as response:
        return json.loads(response.read())


@dataclass
class Report:
    sent: int = 0
    acknowledged: int = 0
    unacknowledged: int = 0
    unacknowledged_counted: int = 0
    lost: list = field(default_factory=list)  # (model, rows sent, rows counted) of acknowledged requests
    double_counted: list = field(default_factory=list)  # (model, rows sent, rows counted), any request
    acknowledged_points: int = 0  # rows of acknowledged requests
    lost_points: int = 0
    double_counted_points: int = 0
    shared: dict = field(default_factory=dict)  # what the shared model should hold and holds
    not_closed: list = field(default_factory=list)  # models with windows still open at the end
    restart_s: list = field(default_factory=list)
    replayed: list = field(default_factory=list)  # journal requests replayed at each restart
    health: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            not self.lost
            and not self.double_counted
            and not self.not_closed
            and self.shared["expected"] == self.shared["counted"]
            and self.health.get("journal_set_aside") == 0
            and self.health.get("points", {}).get("rejected", 0) == 0
        )

    def text(self) -> str:
        restarts = sorted(self.restart_s)
        lines = [
            f"requests sent {self.sent}: acknowledged {self.acknowledged} ({self.acknowledged_points} rows), "
            f"unacknowledged {self.unacknowledged} (of which counted once: {self.unacknowledged_counted})",
            f"acknowledged rows lost: {self.lost_points} in {len(self.lost)} requests {self.lost[:5]}",
            f"rows double-counted: {self.double_counted_points} in {len(self.double_counted)} requests "
            f"{self.double_counted[:5]}",
            f"shared model (rows, points): expected {self.shared.get('expected')}, "
            f"counted {self.shared.get('counted')}; windows left open: {self.not_closed[:5]}",
            f"journal rows set aside: {self.health.get('journal_set_aside')}, "
            f"points rejected: {self.health.get('points', {}).get('rejected', 0)}",
        ]
        if restarts:
            lines.append(
                f"restarts {len(restarts)}: ready after median {statistics.median(restarts):.2f} s, "
                f"max {restarts[-1]:.2f} s; requests replayed from the journal per restart: {self.replayed}"
            )
        return "\n".join(lines)


class Analyzer:
    """The analyzer process, started and killed on one state directory, each run's log kept."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.ports = [free_port() for _ in range(3)]
        self.config = workdir / "analyzer.toml"
        self.config.write_text(CONFIG)
        self.state_dir = str(workdir / "state")
        self.proc = None
        self.runs = 0

    def start(self) -> tuple:
        """Start it; ``(seconds until ready, requests replayed from the journal)``."""
        self.runs += 1
        log_path = self.workdir / f"analyzer-{self.runs}.log"
        started = time.monotonic()
        with open(log_path, "w") as log:
            self.proc = launch_analyzer(self.ports, self.state_dir, "--config", str(self.config), output=log)
        took = time.monotonic() - started
        found = _RESTORED.search(log_path.read_text(errors="replace"))
        return took, int(found.group(1)) if found else None

    def errors(self) -> str:
        """The tracebacks in this run's logs, for a report that says why the analyzer failed."""
        found = []
        for run in range(1, self.runs + 1):
            text = (self.workdir / f"analyzer-{run}.log").read_text(errors="replace")
            found += [f"analyzer run {run}: " + part[:3000] for part in text.split("Traceback")[1:]]
        return "\n".join(found[:3])

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(60)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


def close_windows(analyzer: Analyzer, senders: list) -> None:
    """One request per sender (its resource, so its watermark moves) timestamped just past the current window: every
    window with data closes."""
    window_ns = int(WINDOW_S * 1e9)
    past = ((time.time_ns() - 1) // window_ns + 1) * window_ns + 1
    exporter = HttpExporter(endpoint=f"http://127.0.0.1:{analyzer.ports[1]}/v1/metrics", timeout=120)
    try:
        for sender in senders:
            result = exporter.export(rows_data(sender.resource, [(CLOSER, 1)], past - 1, past))
            if result != MetricExportResult.SUCCESS:
                raise RuntimeError("the request that closes the windows was not acknowledged")
    finally:
        exporter.shutdown()


def tally(senders: list, models: list, report: Report) -> None:
    counted = {m["model"]: m for m in models}
    shared_rows = shared_points = 0
    for sender in senders:
        for model, rows, acknowledged in sender.sent:
            report.sent += 1
            found = counted.get(model)
            got, points = (found["rows"], found["points"]) if found else (0, 0)
            if acknowledged:
                report.acknowledged += 1
                report.acknowledged_points += rows
                if got < rows:
                    report.lost.append((model, rows, got))
                    report.lost_points += rows - got
            else:
                report.unacknowledged += 1
                report.unacknowledged_counted += got == rows
            if got > rows or points > 1 or got not in (0, rows):
                report.double_counted.append((model, rows, got))
                report.double_counted_points += max(got - rows, 0)
            if found and found["open_windows"]:
                report.not_closed.append(model)
            shared_rows += got
            shared_points += points
    shared = counted.get(SHARED, {"rows": 0, "points": 0, "open_windows": []})
    report.shared = {"expected": (shared_rows, shared_points), "counted": (shared["rows"], shared["points"])}
    if shared["open_windows"]:
        report.not_closed.append(SHARED)


def run(workdir: Path, kills: int, seed: int, between_s: tuple = (0.3, 1.5), echo=None) -> Report:
    """``kills`` kill -9s, each after a random (seeded) stretch of ``between_s`` seconds of sending."""
    rng = random.Random(seed)
    analyzer = Analyzer(workdir)
    gate = Gate()
    report = Report()
    senders = []
    try:
        analyzer.start()
        senders = [
            Sender("h", HttpExporter(endpoint=f"http://127.0.0.1:{analyzer.ports[1]}/v1/metrics", timeout=2), gate, 1),
            Sender("g", GrpcExporter(endpoint=f"127.0.0.1:{analyzer.ports[0]}", insecure=True, timeout=2), gate, 2),
        ]
        for sender in senders:
            sender.start()
        gate.open()
        for kill in range(kills):
            time.sleep(rng.uniform(*between_s))
            analyzer.kill()
            gate.close()  # the exports in flight fail; none is retried against the next process
            took, replayed = analyzer.start()
            report.restart_s.append(took)
            report.replayed.append(replayed)
            if echo:
                echo(f"kill {kill + 1}/{kills}: up again after {took:.2f} s, {replayed} journal requests replayed")
            gate.open()
        time.sleep(rng.uniform(*between_s))
        gate.close()
        gate.stop()
        for sender in senders:
            sender.join(60)
            if sender.error is not None:
                raise RuntimeError(f"{sender.name} failed") from sender.error
        try:
            close_windows(analyzer, senders)
            tally(senders, get_json(analyzer.ports[2], "/api/models")["models"], report)
            report.health = get_json(analyzer.ports[2], "/api/health")
        except Exception as exc:
            raise RuntimeError(f"the analyzer failed at the end: {exc}\n{analyzer.errors()}") from exc
    finally:
        gate.stop()
        for sender in senders:
            sender.exporter.shutdown()
        analyzer.stop()
    return report


def main(argv=None) -> int:
    import logging
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)  # the exporters' retries at every kill
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="otelml-durability-") as tmp:
        report = run(Path(tmp), args.kills, args.seed, echo=lambda line: print(line, flush=True))
    print(report.text())
    print(f"{'PASS' if report.ok else 'FAIL'}: bench took {time.monotonic() - started:.0f} s")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

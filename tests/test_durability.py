"""kill -9 in the middle of open windows (bench/durability.py, a few kills): acknowledged points that sit only in
the analyzer's journal survive every kill, counted exactly once.

The analyzer runs with day-long windows and a day between checkpoints, so nothing closes and nothing is checkpointed
after start-up: what it acknowledged since its last start is in the journal and nowhere else on disk. The real
OTLP/HTTP and OTLP/gRPC exporters send requests of known counts (one model per request, so each is read back on its
own), the analyzer is killed with SIGKILL at random (seeded) moments and restarted on the same state directory, and
at the end a request past the window closes every window and ``/api/models`` must hold each acknowledged request's
rows once: none lost, none counted twice.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import durability  # noqa: E402


def test_kill_9_mid_window_loses_and_doubles_no_acknowledged_point(tmp_path):
    report = durability.run(tmp_path, kills=3, seed=11, between_s=(0.3, 1.2))
    summary = report.text()
    assert report.acknowledged >= 30, summary  # enough traffic between the kills to mean something
    assert report.lost == [] and report.lost_points == 0, summary
    assert report.double_counted == [] and report.double_counted_points == 0, summary
    # every restart found acknowledged requests in the journal alone: recovery depended on it
    assert all(replayed and replayed > 0 for replayed in report.replayed), summary
    assert report.shared["counted"] == report.shared["expected"], summary  # the shared window: the same sums
    assert report.not_closed == [], summary  # every window closed: the counts read are closed windows' counts
    assert report.health["journal_set_aside"] == 0 and report.health["points"].get("rejected", 0) == 0, summary
    assert report.ok, summary

"""``otelml demo`` passes as a test: every injected problem raises its alert, over the real OTLP path."""

import subprocess
import sys


def test_the_demo_runs_end_to_end_and_every_injected_problem_alerts(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "otelml.cli", "demo", "--http", "127.0.0.1:0", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "status page: http://127.0.0.1:" in out
    assert "drift alert (input drift)" in out and "https" in out  # the covariate drift names its features
    assert "performance alert (low confidence)" in out  # the evasion campaign collapses confidence
    assert "integrity alert (integrity)" in out  # the swapped model
    assert "adversarial alert (evasion probing)" in out and "queries" in out  # mallory, named by her hashed id
    assert "adversarial alert (extraction)" in out  # trudy, asking about pages nobody else sends
    seen = out.rsplit("alert kinds seen: ", 1)[1].splitlines()[0]
    assert all(kind in seen for kind in ("'adversarial'", "'drift'", "'integrity'", "'performance'")), seen

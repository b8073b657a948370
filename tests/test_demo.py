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
    assert "(mallory)" in out and "(trudy)" in out  # the demo names the hashed callers its headers speak of
    seen = out.rsplit("alert kinds seen: ", 1)[1].splitlines()[0]
    assert all(kind in seen for kind in ("'adversarial'", "'drift'", "'integrity'", "'performance'")), seen


def test_the_demo_names_the_callers_its_alerts_carry_by_hashed_id():
    """The alert carries the keyed hash only; the demo, which holds the key and its callers' names, prints the name
    next to it on its own console. Ids it does not know (trace ids, other callers) are left as they are."""
    from otelml import demo
    from otelml.sdk.hashing import CallerHasher

    mallory = CallerHasher(demo.CALLER_KEY.encode()).id("mallory")
    stranger = CallerHasher(b"another key").id("mallory")
    body = f"adversarial alert (evasion probing): caller {mallory}: 70 queries, first trace {'ab' * 16}"
    named = demo.name_callers(body, demo.caller_names())
    assert f"caller {mallory} (mallory): 70 queries" in named and f"trace {'ab' * 16}" in named
    assert demo.name_callers(f"caller {stranger}", demo.caller_names()) == f"caller {stranger}"
    assert "trudy" in demo.caller_names().values() and "user-199" in demo.caller_names().values()

"""The evaluation harness runs in its quick mode and prints every table with numbers; the results asserted are that
the analyzer process, fed through the SDK, alarms in the same windows as the in-process detector the tables use, and
that a short rerun of the scan's calibration agrees with the constants in use."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def section(output: str, title: str) -> str:
    """The text of one table: from its title line to the next blank line."""
    start = output.index(title)
    end = output.find("\n\n", start)
    return output[start : end if end >= 0 else len(output)]


def test_quick_evaluation_prints_every_table_with_numbers():
    result = subprocess.run(
        [sys.executable, "bench/evaluate.py", "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout

    false_alarms = section(out, "1. False drift alarms")
    assert re.search(
        r"otelml DriftDetector, A=43,200.*\s\d+\s+\d+\.\d\d\s+\d+\.\d\d\s+0\.23\s+(ok|MISSED)$", false_alarms, re.M
    ), false_alarms
    for peer in ("ADWIN", "KSWIN", "KS per window"):
        assert re.search(rf"^\s+{peer}.*\d+\.\d\d", false_alarms, re.M), false_alarms

    delays = section(out, "2. Detection delay")
    with_adwins = r"^\s+(\+[\d.]+ sd|sd x[\d.]+)\s+[13] of 20\s+(> )?[\d,]+\s+\d+%.*(\s+(> )?[\d,]+ \(\d+%\)){2}$"
    assert len(re.findall(with_adwins, delays, re.M)) == 14, delays

    peers = section(out, "3. Peers")
    for method in ("otelml", "River ADWIN", "River KSWIN", "KS per window"):
        assert re.search(rf"^\s+{method}.*\d+\.\d\d(\s+(> )?[\d,]+ \(\d+%\)){{7}}$", peers, re.M), peers
    assert "Alibi Detect" in peers

    real = section(out, "4. Drift shipped inside PyPI packages")
    assert re.search(r"River SEA .*otelml drift", real) and re.search(r"River RandomRBF .*ADWIN", real), real

    accuracy = section(out, "5. Accuracy drop")
    assert (
        len(re.findall(r"^\s+(otelml AccuracyDetector|ADWIN on 0/1 errors)\s+\d+\s+(> )?[\d,]+", accuracy, re.M)) == 4
    ), accuracy

    speed = section(out, "6. Speed")
    assert re.search(r"later windows, median of \d+\s+\d+\.\d\s+(ok|MISSED)", speed), speed

    end_to_end = section(out, "7. End to end")
    assert "exports that missed their window: 0" in end_to_end, end_to_end
    same = re.findall(r"^\s+seed \d+: .*\s(yes|NO)$", end_to_end, re.M)
    assert same == ["yes", "yes"], end_to_end  # the analyzer process alarms where the in-process detector does

    goals = section(out, "Goals")
    assert len(re.findall(r"\s(ok|MISSED)$", goals, re.M)) == 7, goals


def test_the_scan_calibration_reruns_and_agrees_with_the_constants_in_use():
    """A short rerun of bench/calibrate_scan.py (2e6 stream-windows): the crossing rates it measures where it sees
    hundreds of crossings lie within 30% of what the scan's constants say."""
    result = subprocess.run(
        [sys.executable, "bench/calibrate_scan.py", "--windows", "2e6", "--streams", "2000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"^\s+([\d.]+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", result.stdout, re.M)
    checked = [
        (float(h), float(measured) / float(in_use)) for h, alarms, measured, _, in_use in rows if int(alarms) >= 100
    ]
    assert len(checked) >= 6, result.stdout
    assert all(0.7 <= ratio <= 1.3 for _, ratio in checked), checked


def test_the_scan_calibration_refuses_runs_too_small_to_mean_anything():
    for args, message in [
        (["--windows", "10", "--streams", "100"], "at least 256 per stream"),
        (["--windows", "2e5", "--streams", "100", "--reference-windows", "-5"], "--reference-windows must be positive"),
    ]:
        result = subprocess.run(
            [sys.executable, "bench/calibrate_scan.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2 and message in result.stderr, result.stderr

"""The realistic drift evaluation (bench/realistic.py) runs in a tiny configuration and prints its tables, its
changes move a feature's mean as asked without new values, and its false-alarm measure does catch detectors that
alarm too often (so the harness can fail)."""

import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

pytest.importorskip("river")
from realistic import detectors, measure, populations, report, streams  # noqa: E402


def section(output: str, title: str) -> str:
    start = output.index(title)
    end = output.find("\n\n", start)
    return output[start : end if end >= 0 else len(output)]


def test_tiny_run_prints_every_table(capsys):
    names = ["constant in ref, ref 500", "continuous, ref 500", "phishing, ref 500"]
    argv = [arg for name in names for arg in ("--only", name)]
    assert (
        report.main([*argv, "--references", "1", "--windows", "20", "--seeds", "5", "--horizon", "4", "--jobs", "1"])
        == 0
    )
    out = capsys.readouterr().out
    false_alarms = section(out, "1. False drift alarms")
    for name in names:
        assert re.search(
            rf"^\s+{re.escape(name)}\s+\d+\s+\S+\s+200\s+20\s+\d+(\s+\d+\.\d\d){{5}}\s+(ok|MISSED)$", false_alarms, re.M
        ), false_alarms
    for table in ("2a.", "2b.", "2c.", "2d."):
        assert table in out
    one = section(out, "2a. Delay in rows, +0.5 sd, 1 feature")
    assert len(re.findall(r"^\s+\S.*\s5\s+1(\s+\S+ \(\d+%\)){4}\s+\d+%\s+\d+$", one, re.M)) == 3, one
    by_kind = section(out, "3. +0.5 sd, 1 feature, by the kind of feature moved")
    assert re.search(r"^\s+continuous, ref 500\s+continuous\s+5\s.*(ok|MISSED)$", by_kind, re.M), by_kind
    assert re.search(r"^\s+phishing, ref 500\s+few-valued\s+5\s.*(ok|MISSED)$", by_kind, re.M), by_kind
    goals = section(out, "Goals")
    assert len(re.findall(r"(ok|MISSED)$", goals, re.M)) == 3, goals


def test_unknown_stream_is_refused():
    with pytest.raises(SystemExit):
        report.main(["--only", "no such stream"])


def test_tilt_moves_the_mean_without_new_values():
    values, probs = streams.zero_inflated(0.95, "poisson", 1.0)
    population = populations.Independent([(values, probs)])
    sd = population.info()[0].sd
    change = populations.Change("+0.5 sd", "mean", 0.5, 1, "any")
    moved = population.changed(change, [0])
    new_values, new_probs = moved.columns[0]
    assert np.array_equal(new_values, values)  # the same support: no value appears that the population lacked
    assert new_probs @ values == pytest.approx(probs @ values + 0.5 * sd, rel=1e-9)
    assert new_probs[0] < probs[0]  # fewer zeros


def test_tilt_on_real_rows_keeps_the_rows():
    stream = streams.by_name("phishing, ref 500")
    change = measure.CHANGES[1]  # +0.5 sd on 3 features
    moved, chosen = stream.changed(change, seed=0)
    base = stream.population.info()
    after = moved.info()
    for j in chosen:
        assert (after[j].mean - base[j].mean) / base[j].sd == pytest.approx(0.5, abs=1e-5)
    rows = moved.sample(np.random.default_rng(0), 1_000)
    assert set(map(tuple, rows)) <= set(map(tuple, stream.population.rows))


def test_null_rate_catches_detectors_that_alarm_too_often():
    stream = streams.by_name("continuous, ref 5,000")
    lowered = measure.null_rate(detectors.otelml(detectors.lowered(8)), stream, windows=600, seed=0)
    assert lowered > 20  # ln A lowered by 8 nats: A about 14 windows
    codes = streams.Stream("20 codes", "test", lambda: populations.Independent((streams.CODES * 4)[:20]), 500)
    loose = measure.null_rate(detectors.adwin_model(0.05, bonferroni=False), codes, windows=600, seed=0)
    strict = measure.null_rate(detectors.adwin_model(0.002), codes, windows=600, seed=0)
    assert loose > 10 and strict < loose  # ADWIN(0.05) on each of 20 features, against ADWIN(0.002/20)


def test_delay_is_measured_in_rows_from_the_change():
    stream = streams.by_name("continuous, ref 500")
    change = populations.Change("+3 sd", "mean", 3.0, 1, "any")
    result = measure.delays(detectors.DEFAULT, stream, change, seed=0, horizon=5)
    assert result["delay"]["otelml"] == 200  # found in the first window after the change, at its end
    assert 1 <= result["delay"]["ADWIN(0.002/F)"] <= 200  # value by value: inside the first window
    assert result["before"] == dict.fromkeys(detectors.DEFAULT, 0)

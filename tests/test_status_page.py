"""The status page, loaded in headless Chromium (Debian's chromium package): what a person sees renders."""

import os
import shutil
import subprocess

import numpy as np
import pytest

import otelml

from .conftest import in_one_second_windows, reference_build

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium_dom(url: str) -> str:
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing in CI: make test installs Debian's chromium package")
        pytest.skip("needs Debian's chromium package (apt-get install chromium)")
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=2000", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_the_status_page_shows_models_detectors_alerts_and_plots(tmp_path, server):
    data = tmp_path / "train.npy"
    np.save(data, np.random.default_rng(0).normal(size=(20_000, 3)))
    reference_build(str(tmp_path / "state"), data, "scorer", "4")
    analyzer = server(window=1, lateness=0)
    try:
        otelml.configure(
            endpoint=f"http://127.0.0.1:{analyzer.http.port}", create_tracer_provider=False, export_interval_s=3600
        )
        predict = otelml.monitor(model="scorer", version="4")(lambda x: np.tile([0.1, 0.9], (len(x), 1)))
        rng = np.random.default_rng(1)
        rows = [rng.normal(size=(300, 3)) + np.array([2.0 if second >= 2 else 0.0, 0, 0]) for second in range(4)]
        # The closing call is a whole drifted window: the analyzer's clock closes it whenever the page loads, and a
        # window of one row would leave the drift detector's latest finding "ok" (too little evidence) on a slow day.
        in_one_second_windows([lambda x=x: predict(x) for x in rows], lambda: predict(rows[-1]))
        assert otelml.shutdown()
        dom = chromium_dom(f"http://127.0.0.1:{analyzer.api.port}/")
    finally:
        analyzer.stop()
    assert "<h1>otelml analyzer</h1>" in dom
    assert ">scorer</a>" in dom and "pinned" in dom  # the models table with its reference
    assert 'class="alarm">input drift' in dom  # the drifted detector, marked
    assert "<h2>Open alerts</h2>" in dom and "x0" in dom  # the open drift alert names the feature
    assert dom.count("<svg") >= 4 and dom.count("<polyline") >= 6  # feature plots, confidence, latency
    assert "Latency percentiles" in dom and ">p95<" in dom

